/**
 * The multi-process mutual-exclusion check, once per adapter: 4 processes x 8 tasks hammer 3 keys with
 * a random mix of lock operations for `PGLOCK_STRESS_SECONDS` (default 4 here; `pnpm test:stress` runs
 * 20) and the checker must find no violation, and the server no leftover lock. A sabotaged run shows
 * that the same pipeline does report violations when exclusion is missing.
 */
import { describe, expect, inject, it } from 'vitest'
import { runCoordinator } from '../src/launch.js'
import { ADAPTERS, OPERATION_KINDS, type StressConfig } from '../src/messages.js'
import { formatSummary } from '../src/summary.js'
import type {} from './provided-context.js'

const DEFAULT_SECONDS = 4

function stressSeconds(): number {
  const text = process.env.PGLOCK_STRESS_SECONDS
  if (text === undefined || text === '') return DEFAULT_SECONDS
  const seconds = Number(text)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`PGLOCK_STRESS_SECONDS must be a positive number of seconds, not '${text}'`)
  }
  return seconds
}

const seconds = stressSeconds()
/** Room for starting 5 TypeScript processes on a busy 2-core machine, and for the checks. */
const timeout = seconds * 1000 + 120_000

const base: Omit<StressConfig, 'adapter' | 'databaseUrl'> = {
  processes: 4,
  tasks: 8,
  keys: 3,
  seconds,
  sabotage: false,
}

describe('multi-process mutual exclusion', () => {
  for (const adapter of ADAPTERS) {
    it(`${adapter}: ${base.processes} processes x ${base.tasks} tasks for ${seconds} s: no violation, no leak`, {
      timeout,
    }, async ({ signal }) => {
      const summary = await runCoordinator(
        { ...base, adapter, databaseUrl: inject('pglockDatabaseUrl') },
        signal,
      )
      console.log(formatSummary(summary))

      expect(summary.errors).toEqual([])
      expect(summary.violationSamples).toEqual([])
      expect(summary.violations).toBe(0)
      expect(summary.leakSamples).toEqual([])
      expect(summary.leaks).toBe(0)
      expect(summary.backendsLeft).toBe(0)
      // The run exercised everything it claims to: every kind of operation, both modes, both scopes,
      // and the lock was contended (waits timed out, tries found it busy, aborts landed mid-wait).
      for (const kind of OPERATION_KINDS) expect(summary.operations[kind], kind).toBeGreaterThan(0)
      expect(summary.sections.exclusive).toBeGreaterThan(0)
      expect(summary.sections.shared).toBeGreaterThan(0)
      expect(summary.sections.transaction).toBeGreaterThan(0)
      expect(summary.outcomes.busy).toBeGreaterThan(0)
      expect(summary.outcomes.timeout).toBeGreaterThan(0)
      expect(summary.outcomes.aborted).toBeGreaterThan(0)
      // The counters, summed, equal the committed exclusive sections (the checker's verdict per key).
      const counted = summary.counters.reduce((n, c) => n + c.value, 0)
      expect(counted).toBe(summary.counters.reduce((n, c) => n + c.exclusive, 0))
      expect(counted).toBeGreaterThan(0)
    })
  }

  it('reports violations when exclusive sections skip the lock (sabotage)', { timeout }, async ({
    signal,
  }) => {
    const summary = await runCoordinator(
      { ...base, adapter: 'pg', databaseUrl: inject('pglockDatabaseUrl'), seconds: 1, sabotage: true },
      signal,
    )
    console.log(formatSummary(summary))
    expect(summary.errors).toEqual([])
    expect(summary.violationsByType.overlap).toBeGreaterThan(0)
    // Lost updates: the counters fall short of the exclusive sections.
    expect(summary.violationsByType.counter).toBeGreaterThan(0)
    expect(summary.violations).toBe(summary.violationsByType.overlap + summary.violationsByType.counter)
  })
})
