/**
 * One worker of the demo. Think of it as one instance of your service: its own process, its own
 * pg.Pool, its own pglock locker. main.ts starts three of them and tells them what to do over IPC.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { pgAdapter } from '@pglock/adapter-pg'
import { createLocker, LockerClosedError, type LockHandle } from '@pglock/core'
import pg from 'pg'
import { COUNTER_LOCK, type Command, JOB_LOCK, LEADER_LOCK, type Report } from './messages.js'

/** How long the nightly report takes. The job lock is held meanwhile, so late starters skip it. */
const JOB_MS = 300
/** Scheduled jobs fire on every instance at about the same time, never exactly together. */
const SCHEDULER_JITTER_MS = 20
/** The pause between reading the counter and writing it back, where concurrent updates get lost. */
const THINK_MS = 2

const name = process.argv[2] ?? 'worker'
const send = process.send?.bind(process)
if (send === undefined) throw new Error('worker.ts is started by main.ts (it needs an IPC channel)')
/** Sends a report to main.ts; resolves once it is written to the IPC channel. */
const report = (message: Report): Promise<void> => new Promise((resolve) => send(message, () => resolve()))

const pool = new pg.Pool({
  connectionString: process.env.DEMO_DATABASE_URL,
  max: 4,
  application_name: `pglock-demo-${name}`, // lets main.ts tell the workers apart in pg_locks
})
// An idle pooled connection that dies emits 'error' on the pool; unhandled, that would crash the worker.
pool.on('error', () => {})
const locker = createLocker(pgAdapter(pool))

let shuttingDown = false
let leadership: LockHandle | undefined

/** Phase 1: every worker is told "tick"; exactly one of them runs the job. */
async function runTick(tick: number): Promise<void> {
  await sleep(Math.random() * SCHEDULER_JITTER_MS)
  // tryWithLock never waits: if another worker holds the job lock, it returns { acquired: false }.
  const result = await locker.tryWithLock(JOB_LOCK, async () => {
    report({ type: 'job-started', tick })
    await pool.query('insert into job_runs (tick, worker) values ($1, $2)', [tick, name])
    await sleep(JOB_MS) // "generating the report"
  })
  report({ type: 'tick-done', tick, ran: result.acquired })
}

/**
 * Phase 2: a deliberately non-atomic read-modify-write (no `set value = value + 1`). Two workers
 * doing this at once read the same value and one update is lost, unless a lock serialises them.
 */
async function increment(): Promise<void> {
  const { rows } = await pool.query<{ value: number }>('select value from counter where id = 1')
  const value = rows[0]?.value ?? 0
  await sleep(THINK_MS)
  await pool.query('update counter set value = $1 where id = 1', [value + 1])
}

async function count(increments: number, useLock: boolean): Promise<void> {
  for (let i = 0; i < increments; i++) {
    // withLock waits for the lock, runs the function, and always releases, even when it throws.
    if (useLock) await locker.withLock(COUNTER_LOCK, increment)
    else await increment()
  }
  report({ type: 'count-done', increments })
}

/** Phase 3: whoever holds the leader lock is the leader, for as long as its process lives. */
async function campaign(): Promise<void> {
  try {
    // No timeoutMs: wait as long as it takes, i.e. until the leader releases the lock or dies.
    leadership = await locker.acquire(LEADER_LOCK)
  } catch (error) {
    // locker.close() ends pending waits with LockerClosedError: expected when shutting down.
    if (shuttingDown && error instanceof LockerClosedError) {
      report({ type: 'stopped-waiting', reason: error.name })
      return
    }
    throw error
  }
  report({ type: 'leader' })
}

async function shutdown(): Promise<void> {
  shuttingDown = true
  // A leader steps down explicitly; close() would release the lock as well.
  await leadership?.release()
  // close() releases every lock this locker holds (the leader lock, if any) and ends its waits.
  await locker.close()
  await pool.end()
  await report({ type: 'closed' })
  // Closing the IPC channel leaves nothing to do: the process exits on its own.
  process.disconnect()
}

async function handle(command: Command): Promise<void> {
  switch (command.type) {
    case 'tick':
      return runTick(command.tick)
    case 'count':
      return count(command.increments, command.useLock)
    case 'campaign':
      return campaign()
    case 'shutdown':
      return shutdown()
  }
}

process.on('message', (command: Command) => {
  handle(command).catch((error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
    void report({ type: 'failed', message }).finally(() => process.exit(1))
  })
})

// If main.ts dies, nobody is left to stop this worker: stop with it.
process.on('disconnect', () => {
  if (!shuttingDown) process.exit(1)
})

// Open a connection before reporting ready, so that the first tick does not include the login.
await pool.query('select 1')
report({ type: 'ready' })
