/**
 * The checker must be able to fail: fabricated record sets with overlapping holders, lost updates and
 * broken timestamps must be reported, and clean ones must not. A random comparison against a
 * brute-force pairwise check covers the sweep's bookkeeping.
 */
import { describe, expect, it } from 'vitest'
import { type CheckedSection, checkSections } from '../src/checker.js'

let task = 0
function section(
  key: number,
  mode: 'exclusive' | 'shared',
  enter: number,
  exit: number,
  committed = true,
): CheckedSection {
  return {
    process: 0,
    task: task++,
    kind: 'acquire',
    key,
    shared: mode === 'shared',
    enter: BigInt(enter),
    exit: BigInt(exit),
    committed,
  }
}

/** Counters that match the committed exclusive sections, so only the overlap check can object. */
function matchingCounters(sections: readonly CheckedSection[]): Map<number, number> {
  const counters = new Map<number, number>()
  for (const s of sections) {
    counters.set(s.key, (counters.get(s.key) ?? 0) + (!s.shared && s.committed ? 1 : 0))
  }
  return counters
}

function check(sections: readonly CheckedSection[], counters = matchingCounters(sections)) {
  return checkSections(sections, counters)
}

describe('checker', () => {
  it('accepts serial exclusive sections, touching ones included, and overlaps on different keys', () => {
    const sections = [
      section(0, 'exclusive', 0, 10),
      section(0, 'exclusive', 10, 20), // enters at the nanosecond the previous one exited
      section(0, 'shared', 25, 30),
      section(1, 'exclusive', 5, 15), // overlaps key 0's sections: a different lock
    ]
    expect(check(sections)).toEqual({ violations: [], sharedOverlaps: 0 })
  })

  it('reports two exclusive holders of one key that overlap', () => {
    const { violations } = check([section(0, 'exclusive', 0, 10), section(0, 'exclusive', 9, 20)])
    expect(violations).toHaveLength(1)
    expect(violations[0]?.type).toBe('overlap')
  })

  it('reports a shared holder overlapping an exclusive one, in either order', () => {
    expect(check([section(0, 'exclusive', 0, 10), section(0, 'shared', 5, 20)]).violations).toHaveLength(1)
    expect(check([section(0, 'shared', 0, 10), section(0, 'exclusive', 5, 20)]).violations).toHaveLength(1)
  })

  it('lets shared holders overlap each other, and counts it', () => {
    const result = check([
      section(0, 'shared', 0, 10),
      section(0, 'shared', 5, 20),
      section(0, 'shared', 6, 7),
    ])
    expect(result).toEqual({ violations: [], sharedOverlaps: 2 })
  })

  it('finds every section inside a long exclusive one, not just the next', () => {
    const long = section(0, 'exclusive', 0, 100)
    const sections = [
      long,
      section(0, 'exclusive', 10, 20),
      section(0, 'shared', 30, 40),
      section(0, 'shared', 99, 120),
    ]
    const { violations } = check(sections)
    expect(violations).toHaveLength(3)
    expect(violations.every((v) => v.type === 'overlap')).toBe(true)
  })

  it('finds an exclusive section that overlaps a shared one behind a shorter exclusive one', () => {
    // Sorted by enter: shared 0..50, exclusive 1..2 (overlaps the shared), exclusive 10..20 (too).
    const { violations } = check([
      section(0, 'shared', 0, 50),
      section(0, 'exclusive', 1, 2),
      section(0, 'exclusive', 10, 20),
    ])
    expect(violations).toHaveLength(2)
  })

  it('reports lost updates: a counter short of the committed exclusive sections', () => {
    const sections = [
      section(0, 'exclusive', 0, 10),
      section(0, 'exclusive', 10, 20),
      section(0, 'shared', 20, 30),
    ]
    const { violations } = check(sections, new Map([[0, 1]]))
    expect(violations).toEqual([
      { type: 'counter', message: 'key 0: counter is 1 after 2 committed exclusive sections' },
    ])
  })

  it('does not count exclusive sections whose transaction did not commit', () => {
    const sections = [section(0, 'exclusive', 0, 10), section(0, 'exclusive', 10, 20, false)]
    expect(check(sections, new Map([[0, 1]])).violations).toEqual([])
    expect(check(sections, new Map([[0, 2]])).violations.map((v) => v.type)).toEqual(['counter'])
  })

  it('reports a missing counter row and a counter with no sections', () => {
    const { violations } = check([section(0, 'exclusive', 0, 10)], new Map([[1, 3]]))
    expect(violations.map((v) => v.message)).toEqual([
      'key 0: counter is missing after 1 committed exclusive sections',
      'key 1: counter is 3 after 0 committed exclusive sections',
    ])
  })

  it('reports sections whose exit is not after their enter (broken timestamps)', () => {
    const sections = [section(0, 'exclusive', 10, 10), section(0, 'shared', 20, 5)]
    const { violations } = check(sections, new Map([[0, 0]]))
    expect(violations.map((v) => v.type)).toEqual(['interval', 'interval'])
  })

  it('agrees with a brute-force pairwise check on random record sets', () => {
    for (let trial = 0; trial < 500; trial++) {
      const sections = Array.from({ length: 1 + Math.floor(Math.random() * 12) }, () => {
        const enter = Math.floor(Math.random() * 100)
        const mode = Math.random() < 0.4 ? 'shared' : 'exclusive'
        return section(Math.floor(Math.random() * 2), mode, enter, enter + 1 + Math.floor(Math.random() * 30))
      })
      // Sections that overlap at least one conflicting section that entered no later (ties: earlier in
      // the list, as the checker's stable sort keeps them) — each is what the checker reports once.
      const ordered = [...sections].sort((a, b) => Number(a.enter - b.enter))
      const expected = ordered.filter((b, j) =>
        ordered
          .slice(0, j)
          .some((a) => a.key === b.key && (!a.shared || !b.shared) && a.enter < b.exit && b.enter < a.exit),
      ).length
      const overlaps = check(sections).violations.filter((v) => v.type === 'overlap').length
      expect(
        overlaps,
        JSON.stringify(sections, (_, v) => (typeof v === 'bigint' ? Number(v) : v)),
      ).toBe(expected)
    }
  })
})
