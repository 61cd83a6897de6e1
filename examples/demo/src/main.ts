/**
 * The pglock demo (`pnpm demo`): a throw-away PostgreSQL and three worker processes (worker.ts) that
 *
 *   1. share a scheduled job with `tryWithLock`: each tick, exactly one of them runs it;
 *   2. serialise read-modify-write updates of one counter with `withLock`: the final count is exact;
 *   3. elect a leader with `acquire`: when the leader is killed with SIGKILL, another takes over.
 *
 * This process only starts things, hands out commands, checks the results in the database and prints
 * the timeline; the locking happens in the workers. Exits 0 when every check passed, 1 otherwise.
 */
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { startTestDatabase, type TestDatabase } from '@pglock/conformance/database'
import pg from 'pg'
import { COUNTER_LOCK, JOB_LOCK, LEADER_LOCK, type Report } from './messages.js'
import { heading, log, now } from './timeline.js'
import { type Received, type Worker, Workers } from './workers.js'

const WORKERS = 3
const TICKS = 5
const INCREMENTS = 50
const TAKEOVER_LIMIT_MS = 1000

let db: TestDatabase | undefined
let admin: pg.Client | undefined
let workers: Workers | undefined
let interrupted = false

class CheckFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message)
}

async function demo(): Promise<void> {
  heading('Setup')
  log('main', 'starting an embedded PostgreSQL')
  db = await startTestDatabase()
  log('main', `PostgreSQL ${db.version} is up on ${new URL(db.url).host}`)
  admin = new pg.Client({ connectionString: db.url, application_name: 'pglock-demo-main' })
  admin.on('error', () => {}) // a failure shows up on the next query anyway
  await admin.connect()
  await admin.query(`
    create table job_runs (tick int not null, worker text not null);
    create table counter (id int primary key, value int not null);
    insert into counter values (1, 0);
  `)
  log('main', `forking ${WORKERS} workers`)
  workers = await Workers.start(WORKERS, db.url, printReport)

  await scheduledJob(workers)
  await sharedCounter(workers)
  const leader = await leaderElection(workers)

  heading('Shutdown')
  // The waiting workers first, so the leader lock is not handed on once more on the way out.
  const followers = workers.running.filter((worker) => worker !== leader)
  for (const worker of [...followers, leader]) await stop(worker)
  // A server this demo did not start (PGLOCK_TEST_DATABASE_URL) stays: leave it as we found it.
  if (db.source !== 'embedded') await admin.query('drop table job_runs, counter')
  await admin.end()
  admin = undefined
  await db.stop()
  if (db.source === 'embedded') await checkServerGone(db)
}

async function scheduledJob(workers: Workers): Promise<void> {
  heading(`Phase 1: a scheduled job; each tick every worker calls tryWithLock('${JOB_LOCK}')`)
  for (let tick = 1; tick <= TICKS; tick++) {
    workers.broadcast({ type: 'tick', tick })
    const results = await workers.collect('tick-done', WORKERS)
    const ran = results.filter((r) => r.report.ran).map((r) => r.from.name)
    check(ran.length === 1, `tick ${tick}: ${ran.length} workers ran the job (${ran.join(', ')}), not 1`)
  }
  // The workers' own word is not enough: count the runs they recorded in the database.
  const { rows } = await admin!.query<{ tick: number; runs: number; workers: string }>(
    `select tick, count(*)::int as runs, string_agg(worker, '+') as workers
       from job_runs group by tick order by tick`,
  )
  const runs = rows.map((row) => `${row.tick}: ${row.workers}`).join(', ')
  check(
    rows.length === TICKS && rows.every((row) => row.runs === 1),
    `job_runs should hold exactly one run for each of the ${TICKS} ticks, but holds: ${runs}`,
  )
  log('main', `job_runs: each of the ${TICKS} ticks ran exactly once (${runs})`)
}

async function sharedCounter(workers: Workers): Promise<void> {
  const total = WORKERS * INCREMENTS
  heading(`Phase 2: ${WORKERS} workers x ${INCREMENTS} read-modify-write increments of one counter`)

  log('main', 'round 1: without a lock')
  const unlocked = await countTo(workers, false)
  log('main', `without a lock: counter = ${unlocked} after ${total} increments (${total - unlocked} lost)`)

  log('main', `round 2: each increment inside withLock('${COUNTER_LOCK}')`)
  const locked = await countTo(workers, true)
  check(locked === total, `with withLock the counter should be ${total}, but it is ${locked}`)
  log('main', `with withLock: counter = ${locked} after ${total} increments, exact`)
}

async function countTo(workers: Workers, useLock: boolean): Promise<number> {
  await admin!.query('update counter set value = 0 where id = 1')
  workers.broadcast({ type: 'count', increments: INCREMENTS, useLock })
  await workers.collect('count-done', WORKERS)
  const { rows } = await admin!.query<{ value: number }>('select value from counter where id = 1')
  return rows[0]?.value ?? Number.NaN
}

/** Returns the leader at the end (the one that took over). */
async function leaderElection(workers: Workers): Promise<Worker> {
  heading(`Phase 3: leader election with acquire('${LEADER_LOCK}'); the leader gets SIGKILL`)
  workers.broadcast({ type: 'campaign' })
  const { from: leader } = await workers.next('leader')
  await waitForWaiters(WORKERS - 1)
  log('main', `pg_locks: ${await describeLeaderLock()}`)

  log('main', `SIGKILL ${leader.name} (pid ${leader.pid}): no release, no goodbye`)
  const killedAt = now()
  leader.kill()
  // PostgreSQL ends the dead process's session when its socket closes, and with it the session's locks.
  const successor = await workers.next('leader', 5_000)
  const takeoverMs = successor.at - killedAt
  log('main', `takeover: ${successor.from.name} took over ${takeoverMs.toFixed(1)} ms after the kill`)
  check(
    takeoverMs < TAKEOVER_LIMIT_MS,
    `the takeover took ${takeoverMs.toFixed(1)} ms, more than ${TAKEOVER_LIMIT_MS} ms`,
  )
  const { signal } = await leader.exited
  check(signal === 'SIGKILL', `${leader.name} should have died of SIGKILL, not ${signal}`)
  log('main', `pg_locks: ${await describeLeaderLock()}`)
  return successor.from
}

/** Polls pg_locks until `count` workers wait for the leader lock on the server. */
async function waitForWaiters(count: number): Promise<void> {
  for (const deadline = now() + 10_000; now() < deadline; ) {
    const { rows } = await admin!.query<{ waiting: number }>(
      `select count(*)::int as waiting from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and not l.granted and a.application_name like 'pglock-demo-%'`,
    )
    if (rows[0]?.waiting === count) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new CheckFailed(`${count} workers should be waiting for ${LEADER_LOCK} in pg_locks`)
}

/** What the server says about the demo's advisory locks: who holds one, who waits. */
async function describeLeaderLock(): Promise<string> {
  const { rows } = await admin!.query<{ worker: string; granted: boolean }>(
    `select substr(a.application_name, length('pglock-demo-') + 1) as worker, l.granted
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and a.application_name like 'pglock-demo-%'
      order by a.application_name`,
  )
  const holders = rows.filter((row) => row.granted).map((row) => row.worker)
  const waiters = rows.filter((row) => !row.granted).map((row) => row.worker)
  check(holders.length === 1, `exactly one session should hold ${LEADER_LOCK}, not ${holders.length}`)
  return `${LEADER_LOCK} held by ${holders.join(', ')}; waiting: ${waiters.join(', ') || 'nobody'}`
}

async function stop(worker: Worker): Promise<void> {
  worker.shutdown()
  await workers!.next('closed', 10_000)
  // Nothing may keep a closed worker alive: no open connection, no pending timer.
  const exitedInTime = await Promise.race([
    worker.exited.then(() => true),
    new Promise<false>((resolve) => setTimeout(resolve, 5_000, false)),
  ])
  check(exitedInTime, `${worker.name} did not exit within 5 s of closing its locker and pool`)
  const { code } = await worker.exited
  check(code === 0, `${worker.name} should exit with code 0, not ${code}`)
}

/** The server must be gone and, for the embedded one, its data directory with it. */
async function checkServerGone(db: TestDatabase): Promise<void> {
  const probe = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 2_000 })
  probe.on('error', () => {})
  const reachable = await probe.connect().then(
    () => true,
    () => false,
  )
  if (reachable) await probe.end()
  check(!reachable, 'PostgreSQL still accepts connections after stop()')
  // startTestDatabase names its data directory `pglock-pg-<pid of this process>-<random>`.
  const left = (await readdir(tmpdir())).filter((name) => name.startsWith(`pglock-pg-${process.pid}-`))
  check(left.length === 0, `the data directory is still there: ${left.join(', ')}`)
  log('main', 'PostgreSQL stopped; no server process and no data directory left')
}

/** The worker side of the timeline. */
function printReport({ from, report, at }: Received): void {
  const text = describeReport(from, report)
  if (text !== undefined) log(from.name, text, at)
}

function describeReport(from: Worker, report: Report): string | undefined {
  switch (report.type) {
    case 'ready':
      return `ready (pid ${from.pid})`
    case 'job-started':
      return `runs the nightly report for tick ${report.tick}`
    case 'tick-done':
      return report.ran ? undefined : `skipped tick ${report.tick}: another worker holds the job lock`
    case 'count-done':
      return `done with its ${report.increments} increments`
    case 'leader':
      return `holds ${LEADER_LOCK}: it is the leader now`
    case 'stopped-waiting':
      return `stopped waiting for ${LEADER_LOCK} (${report.reason} from locker.close())`
    case 'closed':
      return 'released its locks, closed its locker and pool'
    case 'failed':
      return `FAILED: ${report.message}`
  }
}

// ---- running it, and cleaning up whatever happens ------------------------------------------------

let cleaning: Promise<void> | undefined
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    workers?.killAll()
    await admin?.end().catch(() => {})
    await db?.stop()
  })()
  return cleaning
}

process.on('SIGINT', () => {
  if (interrupted) return
  interrupted = true
  log('main', 'interrupted: stopping the workers and PostgreSQL')
  void cleanUp().finally(() => process.exit(130))
})
// The last line of defence: no worker outlives this process, however it ends.
process.on('exit', () => workers?.killAll())

let exitCode = 0
try {
  await demo()
  log('main', `all checks passed in ${(now() / 1000).toFixed(1)} s`)
} catch (error) {
  exitCode = interrupted ? 130 : 1
  if (!interrupted) {
    const message = error instanceof CheckFailed ? error.message : String((error as Error)?.stack ?? error)
    console.error(`\nDEMO FAILED: ${message}`)
  }
} finally {
  await cleanUp().catch((error: unknown) => {
    console.error(`cleanup failed: ${String(error)}`)
    exitCode = 1
  })
}
process.exit(exitCode)
