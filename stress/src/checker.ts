/**
 * The mutual-exclusion checker: given every recorded critical section and the final counters, reports
 * each violation of what the locks promise. Pure (no I/O), so the self-test can feed it fabricated
 * records that must fail.
 */

/** The part of a recorded section the checker looks at (see `Section` in messages.ts). */
export interface CheckedSection {
  readonly process: number
  readonly task: number
  readonly kind: string
  readonly key: number
  readonly shared: boolean
  readonly enter: bigint
  readonly exit: bigint
  readonly committed: boolean
}

/** A broken promise, with enough context to find it in the records. */
export interface Violation {
  readonly type: 'overlap' | 'counter' | 'interval'
  readonly message: string
}

/** The checker's verdict. */
export interface CheckResult {
  readonly violations: readonly Violation[]
  /** Shared sections that overlapped an earlier shared one on their key (not a violation: evidence). */
  readonly sharedOverlaps: number
}

/**
 * Checks, per key: no two exclusive sections overlap, no shared section overlaps an exclusive one, and
 * the counter equals the number of committed exclusive sections (a lost update shows as a shortfall).
 *
 * Overlap is strict: sections a and b overlap when `a.enter < b.exit && b.enter < a.exit`, so a
 * successor that enters at the very nanosecond its predecessor recorded its exit is not a violation.
 * Every conflicting pair is found: sorted by `enter`, and every section being non-empty, a section
 * overlaps an earlier one exactly when its `enter` is below that one's `exit`, so it conflicts with
 * some earlier section exactly when its `enter` is below the latest `exit` among the earlier sections
 * of a conflicting mode. Each section is reported at most once (against that latest one).
 */
export function checkSections(
  sections: readonly CheckedSection[],
  counters: ReadonlyMap<number, number>,
): CheckResult {
  const violations: Violation[] = []
  let sharedOverlaps = 0
  const byKey = new Map<number, CheckedSection[]>()
  for (const section of sections) {
    // Real sections span at least a round trip to the server; an empty one means broken timestamps.
    if (section.exit <= section.enter) {
      violations.push({ type: 'interval', message: `exit not after enter: ${describe(section)}` })
      continue
    }
    const list = byKey.get(section.key)
    if (list === undefined) byKey.set(section.key, [section])
    else list.push(section)
  }

  for (const list of byKey.values()) {
    list.sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0))
    // The earlier sections with the latest exit: among all, among exclusive ones, among shared ones.
    let latest: CheckedSection | undefined
    let latestExclusive: CheckedSection | undefined
    let latestShared: CheckedSection | undefined
    for (const section of list) {
      // An exclusive section conflicts with every earlier section, a shared one with exclusive ones.
      const rival = section.shared ? latestExclusive : latest
      if (rival !== undefined && section.enter < rival.exit) {
        violations.push({ type: 'overlap', message: `${describe(rival)} overlaps ${describe(section)}` })
      }
      if (section.shared && latestShared !== undefined && section.enter < latestShared.exit) sharedOverlaps++
      if (latest === undefined || section.exit > latest.exit) latest = section
      if (section.shared) {
        if (latestShared === undefined || section.exit > latestShared.exit) latestShared = section
      } else if (latestExclusive === undefined || section.exit > latestExclusive.exit) {
        latestExclusive = section
      }
    }
  }

  const keys = new Set([...byKey.keys(), ...counters.keys()])
  for (const key of [...keys].sort((a, b) => a - b)) {
    const expected = (byKey.get(key) ?? []).filter((s) => !s.shared && s.committed).length
    const value = counters.get(key)
    if (value !== expected) {
      violations.push({
        type: 'counter',
        message: `key ${key}: counter is ${value ?? 'missing'} after ${expected} committed exclusive sections`,
      })
    }
  }
  return { violations, sharedOverlaps }
}

function describe(s: CheckedSection): string {
  const mode = s.shared ? 'shared' : 'exclusive'
  return `[key ${s.key} ${mode} ${s.kind} by process ${s.process} task ${s.task}, ${s.enter}..${s.exit} ns]`
}
