/**
 * Hand-offs inside one process: when a lock is released while other acquires of the same locker wait
 * on the server for that key, the next holder's grant is handled before the releaser goes on.
 *
 * The server answers the unlock first and the next holder's grant a moment later (its backend has to
 * wake up). A releaser that resumed at once would run its own next steps (often another acquire of the
 * same key) before the event loop even reads that grant, and every later hand-off would wait for it.
 * So `release()` resolves once one of the locker's waits on the key has been answered (and the turns
 * in which its holder sent its own next statement have passed), or after {@link FALLBACK_MS} when the
 * lock went elsewhere (another process's waiter was first in line). Each key keeps a score: a wait
 * here answered while a release was held back earns {@link HIT_CREDIT}, a release held back in vain
 * costs {@link MISS_COST}; below zero, releases of the key resolve at once for {@link QUIET_MS}. So a
 * key whose hand-offs mostly go to other processes costs its releasers one fallback per quiet period,
 * while a late grant now and then does not switch off what in-process hand-offs gain.
 *
 * Only exclusive releases are held back: a shared release often grants nobody (other shared holders
 * remain).
 */

/** The longest a release is held back for a grant that does not come. */
const FALLBACK_MS = 1
/** What a release held back until a wait here was answered earns its key. */
const HIT_CREDIT = 1
/** What a release held back in vain costs its key. */
const MISS_COST = 4
/** The most credit a key can save up. */
const MAX_CREDIT = 8
/** How long releases of a key gone quiet resolve at once. */
const QUIET_MS = 100
/** Keys tracked beyond which those nobody waits for any more are swept out. */
const SWEEP_AT = 1_024

interface KeyWaits {
  /** Blocking waits on the key in flight on the server. */
  waiting: number
  /** Releases held back until one of those waits is answered. */
  released: (() => void)[]
  /** When the first of `released` was held back (performance.now()). */
  since: number
  /** Earned by hand-offs that came here, spent by those that went elsewhere. */
  credit: number
  /** Until when releases of this key are not held back (performance.now()). */
  quietUntil: number
}

export class HandOffs {
  readonly #keys = new Map<string, KeyWaits>()
  #timer: ReturnType<typeof setTimeout> | undefined

  /** A blocking wait on `id` is about to go to the server. */
  waitStarted(id: string): void {
    const entry = this.#keys.get(id)
    if (entry !== undefined) {
      entry.waiting++
      return
    }
    if (this.#keys.size >= SWEEP_AT) this.#sweep()
    this.#keys.set(id, { waiting: 1, released: [], since: 0, credit: 0, quietUntil: 0 })
  }

  /** Keys tracked: those with waits in flight here, or gone quiet a moment ago. */
  get size(): number {
    return this.#keys.size
  }

  /** A blocking wait on `id` ended (granted or not): held-back releases of `id` go on. */
  waitEnded(id: string): void {
    const entry = this.#keys.get(id)
    if (entry === undefined) return
    entry.waiting--
    if (entry.released.length > 0) {
      entry.credit = Math.min(entry.credit + HIT_CREDIT, MAX_CREDIT)
      const released = entry.released
      entry.released = []
      // Two turns: drivers that send in a later phase of this turn (postgres.js sends at setImmediate)
      // send the new holder's next statement (usually its unlock) before the releasers resume.
      setImmediate(resumeNextTurn, released)
    }
    // A key nobody here waits for is forgotten, unless it is quiet (then it goes once that is over).
    if (entry.waiting === 0 && forgettable(entry, performance.now())) this.#keys.delete(id)
  }

  /**
   * An exclusive lock on `id` was released on the server. Returns what the release should wait for
   * before it resolves, if anything.
   */
  afterRelease(id: string): Promise<void> | undefined {
    const entry = this.#keys.get(id)
    if (entry === undefined || entry.waiting === 0) return undefined
    const now = performance.now()
    if (entry.quietUntil > now) return undefined
    return new Promise<void>((resolve) => {
      if (entry.released.length === 0) entry.since = now
      entry.released.push(resolve)
      this.#timer ??= setTimeout(this.#onTimer, FALLBACK_MS)
    })
  }

  /** Lets every held-back release go on (the locker is closing). */
  releaseAll(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (const entry of this.#keys.values()) resume(entry.released.splice(0))
  }

  /** Releases held back for {@link FALLBACK_MS} go on. */
  readonly #onTimer = (): void => {
    this.#timer = undefined
    const now = performance.now()
    let pending = false
    for (const entry of this.#keys.values()) {
      if (entry.released.length === 0) continue
      if (now - entry.since >= FALLBACK_MS) {
        entry.credit -= MISS_COST
        if (entry.credit < 0) {
          entry.credit = 0
          entry.quietUntil = now + QUIET_MS
        }
        resume(entry.released.splice(0))
      } else {
        pending = true
      }
    }
    if (pending) this.#timer = setTimeout(this.#onTimer, FALLBACK_MS)
  }

  /** Forgets the keys nobody here waits for whose quiet period is over. */
  #sweep(): void {
    const now = performance.now()
    for (const [id, entry] of this.#keys) if (forgettable(entry, now)) this.#keys.delete(id)
  }
}

/** Nobody here waits for the key, no release is held back for it, and it is not quiet (at `now`). */
function forgettable(entry: KeyWaits, now: number): boolean {
  return entry.waiting === 0 && entry.released.length === 0 && entry.quietUntil <= now
}

function resume(released: readonly (() => void)[]): void {
  for (const resolve of released) resolve()
}

function resumeNextTurn(released: readonly (() => void)[]): void {
  setImmediate(resume, released)
}
