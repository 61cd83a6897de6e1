/**
 * `pnpm bench`: pglock on every adapter against the raw drivers doing the same round trips, the
 * advisory-lock package and a polling lock, on a throw-away PostgreSQL. Prints medians and ratios,
 * writes bench/results/latest.{json,md,svg} (quick runs: quick.*), and with --publish copies the chart
 * and the table to docs/.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestDatabase, type TestDatabase } from '@pglock/conformance/database'
import pg from 'pg'
import { ADMIN_MARKER, APP_NAME_PREFIX, type BenchCase, type RunContext, type Sample } from './cases.js'
import { contentionCases } from './contention.js'
import { heldCases } from './held-locks.js'
import { machineInfo } from './machine.js'
import { type BenchOptions, parseOptions, USAGE } from './options.js'
import { type ReportContext, renderMarkdown, renderText } from './render.js'
import { type CaseResult, summarise } from './summary.js'
import { renderSvg } from './svg.js'
import { uncontendedCases } from './uncontended.js'
import { benchAdvisoryLocks, benchSessions, describe, waitUntil, withDeadline } from './util.js'

/**
 * Server settings. 10,000 session locks held on one connection need 10,000 slots of the shared lock
 * table, which has max_locks_per_transaction × (max_connections + max_prepared_transactions) of them
 * (plus a few for background processes): 2048 × 300 = 614,400 here, far above the ~11,000 the bench
 * can hold at once. 300 connections leave room for 64 waiters on a pool of 66, plus postgres.js lock
 * connections of the same number. pg_stat_statements counts the statements each case sends.
 */
const SERVER_SETTINGS = {
  max_connections: 300,
  max_locks_per_transaction: 2048,
  shared_preload_libraries: 'pg_stat_statements',
} as const
/** Lock table slots beyond the heap case's locks: the other cases and the server's own. */
const LOCK_SLOTS_MARGIN = 2_000

/** Bound on one round of one case, on top of each case's own guards. */
const CASE_DEADLINE_MS = 300_000

const REPO_DIR = new URL('../../', import.meta.url)
const RESULTS_DIR = new URL('bench/results/', REPO_DIR)
const DOCS_DIR = new URL('docs/', REPO_DIR)

function selectCases(all: readonly BenchCase[], only: readonly string[]): BenchCase[] {
  if (only.length === 0) return [...all]
  const byId = new Map(all.map((c) => [c.id, c]))
  const wanted = new Set(all.filter((c) => only.some((o) => c.id.includes(o))).map((c) => c.id))
  // A ratio needs its floor in the same round.
  for (const id of [...wanted]) {
    for (let floor = byId.get(id)?.floorId; floor !== undefined; floor = byId.get(floor)?.floorId) {
      wanted.add(floor)
    }
  }
  return all.filter((c) => wanted.has(c.id))
}

function brief(sample: Sample): string {
  switch (sample.kind) {
    case 'uncontended':
      return `${(sample.nsPerOp / 1000).toFixed(1)} µs/op`
    case 'contention':
      return `${Math.round(sample.acquisitionsPerSec)} acquisitions/s, ${Math.round(sample.handoffsPerSec)} hand-offs/s, p99 ${sample.waitP99Ms.toFixed(2)} ms, min/max ${sample.minPerWorker}/${sample.maxPerWorker}`
    case 'held':
      return (
        `${sample.held}/${sample.requested} held${sample.stalled ? ' (stalled)' : ''}, ` +
        `${sample.serverConnections} connections, SELECT 1 ${sample.select1Served ? 'served' : 'blocked'}` +
        (sample.heapBytesPerLock === null ? '' : `, ${Math.round(sample.heapBytesPerLock)} B/lock`)
      )
  }
}

async function checkServer(admin: pg.Client, heapLocks: number, warnings: string[]): Promise<void> {
  const result = await admin.query<{ slots: number }>(
    `${ADMIN_MARKER} SELECT current_setting('max_locks_per_transaction')::int
       * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int) AS slots`,
  )
  const slots = result.rows[0]?.slots ?? 0
  const required = heapLocks + LOCK_SLOTS_MARGIN
  if (slots < required) {
    warnings.push(
      `the server's lock table has about ${slots} slots (max_locks_per_transaction × (max_connections + max_prepared_transactions)); ` +
        `the heap case needs about ${required}: expect "out of shared memory" there`,
    )
  }
}

/**
 * Statement counts per case through pg_stat_statements, when the server has it loaded (the embedded
 * one does; a server from PGLOCK_TEST_DATABASE_URL may not: the counts are then left out).
 */
async function statementCounter(admin: pg.Client, warnings: string[]) {
  try {
    await admin.query(`${ADMIN_MARKER} CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
    await admin.query(`${ADMIN_MARKER} SELECT pg_stat_statements_reset()`)
  } catch (error) {
    warnings.push(`no statement counts: pg_stat_statements is not available (${describe(error)})`)
    return undefined
  }
  return {
    reset: async () => {
      await admin.query(`${ADMIN_MARKER} SELECT pg_stat_statements_reset()`)
    },
    /** Statements since the last reset, except the bench's own. */
    count: async () => {
      const result = await admin.query<{ n: number }>(
        `${ADMIN_MARKER} SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_statements WHERE query NOT LIKE $1`,
        [`%${ADMIN_MARKER}%`],
      )
      return result.rows[0]?.n ?? 0
    },
  }
}

async function run(options: BenchOptions): Promise<number> {
  const { counts } = options
  const cases = selectCases(
    [
      ...uncontendedCases(),
      ...contentionCases(counts.waiters),
      ...heldCases(counts.heldLocks, counts.heapLocks),
    ],
    options.only,
  )
  if (cases.length === 0) {
    process.stderr.write(`no case id contains ${options.only.join(' or ')}\n`)
    return 2
  }
  const warnings: string[] = []
  const started = performance.now()
  process.stderr.write('Starting PostgreSQL...\n')
  const db: TestDatabase = await startTestDatabase({ settings: SERVER_SETTINGS })
  const admin = new pg.Client({ connectionString: db.url, application_name: 'pglock-admin' })
  admin.on('error', () => {})
  let caseErrors = 0
  const onStray = (error: unknown) => {
    caseErrors++
    warnings.push(`unhandled rejection: ${describe(error)}`)
    process.stderr.write(`  unhandled rejection: ${describe(error)}\n`)
  }
  process.on('unhandledRejection', onStray)
  try {
    await admin.connect()
    await checkServer(admin, counts.heapLocks, warnings)
    const statements = await statementCounter(admin, warnings)
    const machine = await machineInfo(admin, db.source)
    const ctx: RunContext = { url: db.url, counts, admin }
    const results: CaseResult[] = cases.map((c) => ({
      id: c.id,
      section: c.section,
      label: c.label,
      short: c.short,
      ...(c.floorId === undefined ? {} : { floorId: c.floorId }),
      ...(c.size === undefined ? {} : { size: c.size }),
      samples: [],
      statements: [],
      wallMs: [],
      errors: [],
    }))

    process.stderr.write(
      `PostgreSQL ${machine.postgres} (${db.source}); ${cases.length} cases × ${counts.rounds} rounds\n`,
    )
    for (let round = 1; round <= counts.rounds; round++) {
      for (const i of roundOrder(cases, round)) {
        const benchCase = cases[i]!
        const result = results[i]!
        const prefix = `[${round}/${counts.rounds}] ${benchCase.id}`
        const caseStart = performance.now()
        try {
          await statements?.reset()
          const sample = await withDeadline(benchCase.run(ctx), CASE_DEADLINE_MS, benchCase.id)
          result.samples.push(sample)
          result.statements.push((await statements?.count()) ?? null)
          process.stderr.write(`${prefix}: ${brief(sample)}\n`)
        } catch (error) {
          caseErrors++
          result.samples.push(null)
          result.statements.push(null)
          result.errors.push({ round, message: describe(error) })
          process.stderr.write(`${prefix}: ERROR ${describe(error)}\n`)
        }
        result.wallMs.push(Math.round(performance.now() - caseStart))
        // Nothing of a case may outlive it: its locks would distort the next one.
        const clean = await waitUntil(
          async () => (await benchAdvisoryLocks(admin, APP_NAME_PREFIX)) === 0,
          5_000,
        )
        // Nor may its sessions: a backend that is still exiting costs the server CPU in the next case's
        // window (the first case after a pool closed showed a p99 several times the others').
        await waitUntil(async () => (await benchSessions(admin, APP_NAME_PREFIX)) === 0, 5_000)
        if (!clean) {
          const left = await benchAdvisoryLocks(admin, APP_NAME_PREFIX)
          warnings.push(
            `round ${round}, ${benchCase.id}: ${left} advisory locks still held 5 s after the case ended`,
          )
        }
      }
    }

    const summary = summarise(results)
    const date = new Date().toISOString().slice(0, 10)
    const report: ReportContext = { machine, rounds: counts.rounds, quick: options.quick, counts }
    const text = renderText(summary, report)
    process.stdout.write(`\n${text}\n`)
    if (warnings.length > 0) {
      process.stdout.write(`\nWarnings:\n${warnings.map((w) => `- ${w}`).join('\n')}\n`)
    }

    const durationMs = performance.now() - started
    const name = options.quick ? 'quick' : 'latest'
    await mkdir(RESULTS_DIR, { recursive: true })
    const json = {
      date: new Date().toISOString(),
      arguments: process.argv.slice(2),
      quick: options.quick,
      only: options.only,
      counts,
      serverSettings: SERVER_SETTINGS,
      machine,
      database: { source: db.source, version: db.version },
      durationMs: Math.round(durationMs),
      warnings,
      summary,
      cases: results,
    }
    const files = {
      json: new URL(`${name}.json`, RESULTS_DIR),
      md: new URL(`${name}.md`, RESULTS_DIR),
      svg: new URL(`${name}.svg`, RESULTS_DIR),
    }
    await writeFile(files.json, `${JSON.stringify(json, null, 2)}\n`)
    await writeFile(files.md, renderMarkdown(summary, report, date))
    await writeFile(files.svg, renderSvg(summary, report, date))
    const shown = (url: URL) => relative(fileURLToPath(REPO_DIR), fileURLToPath(url))
    process.stdout.write(`\nWrote ${shown(files.json)}, ${shown(files.md)}, ${shown(files.svg)}`)
    if (options.publish) {
      await mkdir(DOCS_DIR, { recursive: true })
      await copyFile(files.svg, new URL('bench.svg', DOCS_DIR))
      await copyFile(files.md, new URL('bench.md', DOCS_DIR))
      process.stdout.write('; published docs/bench.svg and docs/bench.md')
    }
    process.stdout.write(` (${(durationMs / 1000).toFixed(0)} s)\n`)
    if (caseErrors > 0) {
      process.stdout.write(`\n${caseErrors} case run(s) threw: see the ERROR lines above.\n`)
    }
    return caseErrors > 0 ? 1 : 0
  } finally {
    process.off('unhandledRejection', onStray)
    await admin.end().catch(() => {})
    await db.stop()
  }
}

let options: BenchOptions | 'help'
try {
  options = parseOptions(process.argv.slice(2))
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`)
  process.exit(2)
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`)
} else {
  // Exit even when a failed case left a socket open: the server is stopped and the report written.
  process.exit(await run(options))
}

/**
 * The order of the cases in a round: as listed, except that each run of consecutive cases compared
 * with the same floor is rotated by one per round, so that no case always runs first after its floor
 * (the first one was seen to pay for the floor's teardown and a cold path: a p99 several times the
 * others', in every round).
 */
function roundOrder(cases: readonly BenchCase[], round: number): number[] {
  const order: number[] = []
  let start = 0
  while (start < cases.length) {
    let end = start + 1
    const floor = cases[start]!.floorId
    while (floor !== undefined && end < cases.length && cases[end]!.floorId === floor) end++
    const run = Array.from({ length: end - start }, (_, k) => start + k)
    const shift = (round - 1) % run.length
    order.push(...run.slice(shift), ...run.slice(0, shift))
    start = end
  }
  return order
}
