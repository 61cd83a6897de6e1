/**
 * Runs the stress check for one adapter (forked by the test, which sends the `StressConfig`):
 * creates the counter rows, forks the worker processes, starts them together, and once every worker
 * has finished its operations (pools still open) asks the server what the run's backends still hold or
 * await. Then it closes the workers, checks that they exit by themselves and that their backends and
 * locks are gone, reads the counters, runs the checker, and reports a summary to the test.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { lockKey } from '@pglock/core'
import pg from 'pg'
import { COUNTER_TABLE } from './app.js'
import { checkSections } from './checker.js'
import {
  type CoordinatorCommand,
  type CoordinatorReport,
  OPERATION_KINDS,
  OUTCOMES,
  type Section,
  type StressConfig,
  type StressSummary,
  type TestCommand,
  type WorkerReport,
  type WorkerSettings,
  type WorkerStats,
} from './messages.js'

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url))
const READY_TIMEOUT_MS = 60_000
/** Beyond the run's own seconds: the last waits and sections finish well within this. */
const QUIESCE_GRACE_MS = 60_000
const EXIT_TIMEOUT_MS = 10_000
const MAX_SAMPLES = 10

class Failure extends Error {}

/** One forked worker and its reports, read in order. */
class WorkerProcess {
  readonly index: number
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly #child: ChildProcess
  readonly #inbox: WorkerReport[] = []
  #wake: (() => void) | undefined
  #failure: Error | undefined
  #exitExpected = false

  constructor(index: number, config: StressConfig, run: string) {
    this.index = index
    // process.execArgv carries tsx, the resolution hook and the source condition to the worker.
    this.#child = fork(WORKER_SCRIPT, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    })
    const { adapter, databaseUrl, keys, tasks, sabotage } = config
    const settings: WorkerSettings = { adapter, databaseUrl, run, index, keys, tasks, sabotage }
    this.#child.on('message', (report: WorkerReport) => {
      if (report.type === 'hello') this.send({ type: 'init', settings })
      else if (report.type === 'failed') this.#fail(new Failure(`worker ${index} failed: ${report.message}`))
      else if (report.type === 'stuck') {
        this.#fail(new Failure(`worker ${index} is stuck; in flight:\n  ${report.inFlight.join('\n  ')}`))
      } else this.#inbox.push(report)
      this.#wake?.()
    })
    this.#child.on('error', (error) => this.#fail(error))
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        if (!this.#exitExpected) this.#fail(new Failure(`worker ${index} exited early (${signal ?? code})`))
        resolve({ code, signal })
      })
    })
  }

  send(command: CoordinatorCommand): void {
    this.#child.send(command)
  }

  /** The next report, which must be of `type`, within `timeoutMs`. */
  async next<T extends WorkerReport['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<WorkerReport, { type: T }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure
      const report = this.#inbox.shift()
      if (report !== undefined) {
        if (report.type !== type)
          throw new Failure(`worker ${this.index}: expected '${type}', got '${report.type}'`)
        return report as Extract<WorkerReport, { type: T }>
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Failure(`worker ${this.index} did not report '${type}' within ${timeoutMs} ms`)
      // Woken by the next report (or failure), or by the deadline.
      const ac = new AbortController()
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#wake = resolve
        }),
        delay(left, undefined, { signal: ac.signal }).catch(() => {}),
      ])
      ac.abort()
      this.#wake = undefined
    }
  }

  /** From now on an exit is part of the plan. */
  expectExit(): void {
    this.#exitExpected = true
  }

  kill(): void {
    this.#exitExpected = true
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL')
  }

  #fail(error: Error): void {
    this.#failure ??= error
    this.#wake?.()
  }
}

interface AdvisoryLockRow {
  readonly pid: number
  readonly classid: string
  readonly objid: string
  readonly objsubid: number
  readonly mode: string
  readonly granted: boolean
  readonly app: string | null
}

async function coordinate(config: StressConfig, admin: pg.Client, workers: WorkerProcess[], run: string) {
  const appPrefix = `pglock-stress-${run}-`
  // pg_locks shows a bigint key as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
  const keyIdentities = new Set(
    Array.from({ length: config.keys }, (_, k) => {
      const key = lockKey(`pglock-stress:${run}:${k}`)
      if (key.kind !== 'bigint') throw new Error('string keys derive bigint keys')
      const u = BigInt.asUintN(64, key.key)
      return `${u >> 32n}/${u & 0xffffffffn}/1`
    }),
  )
  /** Advisory locks, held or awaited, by the run's backends or on the run's keys. */
  const runLocks = async (): Promise<string[]> => {
    const { rows } = await admin.query<AdvisoryLockRow>(
      `SELECT l.pid, l.classid::text AS classid, l.objid::text AS objid, l.objsubid::int AS objsubid,
              l.mode, l.granted, a.application_name AS app
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    )
    return rows
      .filter(
        (r) =>
          r.app?.startsWith(appPrefix) === true || keyIdentities.has(`${r.classid}/${r.objid}/${r.objsubid}`),
      )
      .map(
        (r) =>
          `${r.granted ? 'held' : 'awaited'} ${r.mode} ${r.classid}/${r.objid}/${r.objsubid} by pid ${r.pid} (${r.app})`,
      )
  }
  const backends = async (): Promise<number> => {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(application_name, $1)',
      [appPrefix],
    )
    return rows[0]?.n ?? 0
  }

  await Promise.all(workers.map((w) => w.next('ready', READY_TIMEOUT_MS)))
  await calibrate(admin, run, appPrefix, runLocks)
  const started = performance.now()
  const startupSeconds = started / 1000 // performance.now() counts from this process's start
  for (const w of workers) w.send({ type: 'start', seconds: config.seconds })
  const quiesced = await Promise.all(
    workers.map((w) => w.next('quiesced', config.seconds * 1000 + QUIESCE_GRACE_MS)),
  )
  const quiescedAt = performance.now()
  const seconds = (quiescedAt - started) / 1000

  const leaks = quiesced.flatMap((q) => q.stats.leaks)
  leaks.push(...(await runLocks()))
  for (const w of workers) {
    w.expectExit()
    w.send({ type: 'close' })
  }
  await Promise.all(workers.map((w) => w.next('closed', EXIT_TIMEOUT_MS)))
  for (const w of workers) {
    const exit = await Promise.race([w.exited, delay(EXIT_TIMEOUT_MS, undefined, { ref: false })])
    if (exit === undefined)
      throw new Failure(`worker ${w.index} did not exit within ${EXIT_TIMEOUT_MS} ms of closing`)
    if (exit.code !== 0) throw new Failure(`worker ${w.index} exited with ${exit.signal ?? exit.code}`)
  }
  // The server ends a backend shortly after its client hung up: wait for that, with a deadline.
  let backendsLeft = await backends()
  for (const deadline = Date.now() + EXIT_TIMEOUT_MS; backendsLeft > 0 && Date.now() < deadline; ) {
    await delay(20)
    backendsLeft = await backends()
  }
  leaks.push(...(await runLocks()).map((leak) => `after close: ${leak}`))

  const { rows } = await admin.query<{ key: number; value: number }>(
    `SELECT key, value FROM ${COUNTER_TABLE} WHERE run = $1 ORDER BY key`,
    [run],
  )
  const counters = new Map(rows.map((r) => [r.key, r.value]))
  const sections: Section[] = quiesced.flatMap((q) => q.sections)
  const { violations, sharedOverlaps } = checkSections(sections, counters)
  const stats = mergeStats(quiesced.map((q) => q.stats))

  const summary: StressSummary = {
    adapter: config.adapter,
    processes: config.processes,
    tasks: config.tasks,
    keys: config.keys,
    seconds,
    startupSeconds,
    shutdownSeconds: (performance.now() - quiescedAt) / 1000,
    operations: stats.operations,
    outcomes: stats.outcomes,
    withSignal: stats.withSignal,
    sections: {
      exclusive: sections.filter((s) => !s.shared).length,
      shared: sections.filter((s) => s.shared).length,
      transaction: sections.filter((s) => s.kind.startsWith('tx.')).length,
    },
    sharedOverlaps,
    violations: violations.length,
    violationsByType: {
      overlap: violations.filter((v) => v.type === 'overlap').length,
      counter: violations.filter((v) => v.type === 'counter').length,
      interval: violations.filter((v) => v.type === 'interval').length,
    },
    violationSamples: (['overlap', 'counter', 'interval'] as const).flatMap((type) =>
      violations
        .filter((v) => v.type === type)
        .slice(0, MAX_SAMPLES)
        .map((v) => `${type}: ${v.message}`),
    ),
    leaks: leaks.length,
    leakSamples: leaks.slice(0, MAX_SAMPLES),
    backendsLeft,
    errors: stats.errors,
    counters: [...counters].map(([key, value]) => ({
      key,
      value,
      exclusive: sections.filter((s) => s.key === key && !s.shared && s.committed).length,
    })),
  }
  return summary
}

/**
 * The leak query must find the run's locks when there are some, or its empty answers prove nothing:
 * the admin connection takes a lock on one of the run's keys (found by key: the derivation and the
 * pg_locks mapping agree), then, named like the run's backends, one on an unrelated key (found by name).
 */
async function calibrate(
  admin: pg.Client,
  run: string,
  appPrefix: string,
  runLocks: () => Promise<string[]>,
): Promise<void> {
  const runKey = lockKey(`pglock-stress:${run}:0`)
  const otherKey = lockKey(`pglock-stress:${run}:calibration`)
  if (runKey.kind !== 'bigint' || otherKey.kind !== 'bigint')
    throw new Error('string keys derive bigint keys')
  const probes = [
    { key: runKey.key, name: 'pglock-stress-admin' },
    { key: otherKey.key, name: `${appPrefix}calibration` },
  ]
  for (const { key, name } of probes) {
    await admin.query('SELECT set_config($1, $2, false)', ['application_name', name])
    await admin.query('SELECT pg_advisory_lock($1::bigint)', [String(key)])
    const found = await runLocks()
    const { rows } = await admin.query<{ unlocked: boolean }>(
      'SELECT pg_advisory_unlock($1::bigint) AS unlocked',
      [String(key)],
    )
    if (found.length !== 1 || rows[0]?.unlocked !== true) {
      throw new Failure(
        `the leak query found ${found.length} locks where 1 was held (${name}): ${found.join('; ')}`,
      )
    }
  }
  await admin.query('SELECT set_config($1, $2, false)', ['application_name', 'pglock-stress-admin'])
}

function mergeStats(all: readonly WorkerStats[]): WorkerStats {
  const operations = Object.fromEntries(
    OPERATION_KINDS.map((k) => [k, all.reduce((n, s) => n + s.operations[k], 0)]),
  ) as WorkerStats['operations']
  const outcomes = Object.fromEntries(
    OUTCOMES.map((o) => [o, all.reduce((n, s) => n + s.outcomes[o], 0)]),
  ) as WorkerStats['outcomes']
  return {
    operations,
    outcomes,
    withSignal: all.reduce((n, s) => n + s.withSignal, 0),
    shared: all.reduce((n, s) => n + s.shared, 0),
    errors: all.flatMap((s) => s.errors).slice(0, MAX_SAMPLES),
    leaks: all.flatMap((s) => s.leaks),
  }
}

function report(message: CoordinatorReport): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) throw new Error('coordinator.ts runs as a child of the stress test only')
    process.send(message, () => resolve())
  })
}

async function main(): Promise<void> {
  // Listen first, then say hello: a message sent before the child listens could be lost.
  const command = new Promise<TestCommand>((resolve) => process.once('message', resolve))
  await report({ type: 'hello' })
  const { config } = await command
  const workers: WorkerProcess[] = []
  let finished = false
  // The test went away (it failed or timed out): take the workers down with us.
  process.once('disconnect', () => {
    if (finished) return
    for (const w of workers) w.kill()
    process.exit(1)
  })
  const run = randomBytes(6).toString('hex')
  const admin = new pg.Client({
    connectionString: config.databaseUrl,
    application_name: 'pglock-stress-admin',
  })
  admin.on('error', () => {}) // a failure shows up on the next query anyway
  let connected = false
  try {
    await admin.connect()
    connected = true
    // Shared by every run on the server; each run has its own rows (the table is tiny, and a server
    // given by PGLOCK_TEST_DATABASE_URL keeps only the empty table).
    await admin.query(
      `CREATE TABLE IF NOT EXISTS ${COUNTER_TABLE} (run text, key int, value int NOT NULL, PRIMARY KEY (run, key))`,
    )
    await admin.query(
      `INSERT INTO ${COUNTER_TABLE} (run, key, value) SELECT $1, k, 0 FROM generate_series(0, $2::int - 1) k`,
      [run, config.keys],
    )
    for (let i = 0; i < config.processes; i++) workers.push(new WorkerProcess(i, config, run))
    const summary = await coordinate(config, admin, workers, run)
    await report({ type: 'result', summary })
  } catch (error) {
    for (const w of workers) w.kill()
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
    await report({ type: 'failed', message })
    process.exitCode = 1
  } finally {
    if (connected) {
      await admin.query(`DELETE FROM ${COUNTER_TABLE} WHERE run = $1`, [run]).catch(() => {})
      await admin.end()
    }
    finished = true
    if (process.connected) process.disconnect()
  }
}

await main()
