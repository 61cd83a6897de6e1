/** Prints the demo's timeline: one line per event, stamped with the time since the demo started. */

const start = performance.now()

/** Milliseconds since the demo started (a monotonic clock). */
export function now(): number {
  return performance.now() - start
}

/** `[  1.234s] worker-2  ran the nightly report for tick 3` */
export function log(who: string, text: string, at: number = now()): void {
  const seconds = (at / 1000).toFixed(3).padStart(7)
  console.log(`[${seconds}s] ${who.padEnd(9)} ${text}`)
}

/** A phase title between blank lines. */
export function heading(text: string): void {
  console.log(`\n== ${text}\n`)
}
