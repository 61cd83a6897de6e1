/**
 * One stress worker process (forked by coordinator.ts): `tasks` concurrent tasks that, until the time is
 * up, pick random lock operations on a few keys and, inside each critical section, do a non-atomic
 * read-modify-write of the key's counter (exclusive) or a read (shared), recording when they entered
 * and left. Unexpected errors are counted, not thrown: the coordinator fails the run on any.
 *
 * The coordinator sends the settings (`WorkerSettings`) in answer to the worker's 'hello'. With
 * `sabotage`, exclusive session sections skip the lock, and the checker must object.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { LockTimeoutError } from '@pglock/core'
import { type StressApp, withStressApp } from './app.js'
import {
  type CoordinatorCommand,
  OPERATION_KINDS,
  type OperationKind,
  OUTCOMES,
  type Outcome,
  type Section,
  type WorkerReport,
  type WorkerSettings,
  type WorkerStats,
} from './messages.js'

/** Extra pool connections beyond one per task, so that a task holding a session lock can always get
 * one for its read-modify-write while every other task pins a connection waiting (DESIGN.md 7). */
const POOL_SLACK = 2
/** Longest `timeoutMs` an operation asks for: short enough that many waits time out under contention. */
const MAX_TIMEOUT_MS = 30
/** An abort fires 0 .. this many ms after the operation started (mid-wait, mid-section, or too late). */
const MAX_ABORT_MS = 20
/** The time a section spends between its read and its write, to widen the window a lost update needs. */
const MAX_SECTION_DELAY_MS = 2
/** Report the operations still running this long after the time is up (a hang, not a slow run). */
const STUCK_AFTER_MS = 30_000
const MAX_ERRORS_KEPT = 10

function send(report: WorkerReport, then: () => void = () => {}): void {
  if (process.send === undefined) throw new Error('worker.ts runs as a child of coordinator.ts only')
  process.send(report, () => then())
}

/**
 * Monotonic nanoseconds. `process.hrtime.bigint()` reads CLOCK_MONOTONIC on Linux: one clock for the
 * whole host, unaffected by wall-clock changes, so readings from different processes compare directly.
 * (`performance.timeOrigin + performance.now()` does not: timeOrigin is wall-clock time taken at each
 * process's start, so two processes' values can be off by clock adjustments and rounding.)
 */
const now = (): bigint => process.hrtime.bigint()

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T
const chance = (p: number): boolean => Math.random() < p
const randomInt = (max: number): number => Math.floor(Math.random() * (max + 1))

class Worker<Tx> {
  readonly #app: StressApp<Tx>
  readonly #index: number
  readonly #keyNames: readonly string[]
  readonly #sabotage: boolean
  readonly sections: Section[] = []
  readonly #operations = Object.fromEntries(OPERATION_KINDS.map((k) => [k, 0])) as Record<
    OperationKind,
    number
  >
  readonly #outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>
  #withSignal = 0
  #shared = 0
  readonly #errors: string[] = []
  /** Transactions that still had an advisory lock after a failed or unsuccessful attempt. */
  readonly #leaks: string[] = []
  /** What each task is doing right now, for the 'stuck' report. */
  readonly #inFlight = new Map<number, string>()

  constructor(app: StressApp<Tx>, settings: WorkerSettings, keyNames: readonly string[]) {
    this.#app = app
    this.#index = settings.index
    this.#sabotage = settings.sabotage
    this.#keyNames = keyNames
  }

  get stats(): WorkerStats {
    return {
      operations: this.#operations,
      outcomes: this.#outcomes,
      withSignal: this.#withSignal,
      shared: this.#shared,
      errors: this.#errors,
      leaks: this.#leaks,
    }
  }

  get inFlight(): string[] {
    return [...this.#inFlight.values()]
  }

  async runTask(task: number, deadline: bigint): Promise<void> {
    while (now() < deadline) {
      const kind = pick(OPERATION_KINDS)
      const key = randomInt(this.#keyNames.length - 1)
      const shared = chance(0.3)
      this.#operations[kind]++
      if (shared) this.#shared++
      const abort = chance(0.25) ? new AbortController() : undefined
      // A distinct reason per operation: an aborted wait must reject with exactly this value.
      const reason = new Error(`stress abort (process ${this.#index} task ${task})`)
      const timer = abort && setTimeout(() => abort.abort(reason), randomInt(MAX_ABORT_MS))
      if (abort) this.#withSignal++
      const op: Operation = { task, kind, key, shared, signal: abort?.signal, reason }
      this.#inFlight.set(task, describe(this.#index, op))
      let outcome: Outcome
      try {
        outcome = kind.startsWith('tx.') ? await this.#transactionOp(op) : await this.#sessionOp(op)
      } catch (error) {
        outcome = expectedFailure(error, reason) ?? 'error'
        if (outcome === 'error' && this.#errors.length < MAX_ERRORS_KEPT) {
          const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
          this.#errors.push(`${describe(this.#index, op)}: ${text}`)
        }
      } finally {
        clearTimeout(timer)
        this.#inFlight.delete(task)
      }
      this.#outcomes[outcome]++
    }
  }

  async #sessionOp(op: Operation): Promise<Outcome> {
    const { kind, key, shared, signal } = op
    const name = this.#keyNames[key] as string
    if (this.#sabotage && !shared && kind !== 'tryAcquire') {
      this.sections.push(await this.#criticalSection(op, undefined))
      return 'entered'
    }
    // A rejection (timeout, abort) leaves nothing to check here: a lock it left behind stays with a
    // pooled connection, where the coordinator finds it in pg_locks at the end (and contenders stall).
    const handle =
      kind === 'tryAcquire'
        ? await this.#app.locker.tryAcquire(name, { shared, ...opt({ signal }) })
        : await this.#app.locker.acquire(name, {
            shared,
            ...opt({ signal, timeoutMs: kind === 'acquire+timeout' ? randomInt(MAX_TIMEOUT_MS) : undefined }),
          })
    if (handle === null) return 'busy'
    try {
      this.sections.push(await this.#criticalSection(op, undefined))
      if (!handle.held) throw new Error('the lock was lost during its critical section')
    } finally {
      await handle.release()
    }
    return 'entered'
  }

  async #transactionOp(op: Operation): Promise<Outcome> {
    const { kind, key, shared, signal, reason } = op
    const name = this.#keyNames[key] as string
    let section: Section | undefined
    try {
      const outcome = await this.#app.inTransaction(async (tx): Promise<Outcome> => {
        const locks = this.#app.locker.transaction(tx)
        let attempt: Outcome
        try {
          if (kind === 'tx.tryAcquire') {
            attempt = (await locks.tryAcquire(name, { shared, ...opt({ signal }) })) ? 'entered' : 'busy'
          } else {
            const timeoutMs = kind === 'tx.acquire+timeout' ? randomInt(MAX_TIMEOUT_MS) : undefined
            await locks.acquire(name, { shared, ...opt({ signal, timeoutMs }) })
            attempt = 'entered'
          }
        } catch (error) {
          const failure = expectedFailure(error, reason)
          if (failure === undefined) throw error
          attempt = failure
        }
        if (attempt !== 'entered') {
          // A lock left behind here would stay hidden until the transaction ends, so ask the server now,
          // on the transaction itself (which also proves it still usable), then commit as an app would.
          const held = await this.#app.locksHeld(tx)
          if (held !== 0)
            this.#leaks.push(`${describe(this.#index, op)}: ${attempt}, yet ${held} advisory lock(s) held`)
          return attempt
        }
        // The lock ends with the transaction: the section closes before the driver sends COMMIT.
        section = await this.#criticalSection(op, tx)
        return 'entered'
      })
      if (section !== undefined) this.sections.push({ ...section, committed: true })
      return outcome
    } catch (error) {
      // Held, even though its write was rolled back: it still counts for the overlap check.
      if (section !== undefined) this.sections.push(section)
      throw error
    }
  }

  /**
   * The protected work: a non-atomic read-modify-write of the key's counter (exclusive) or a read
   * (shared), on the app's pool for session locks and inside the transaction for transaction locks.
   * A transaction's section is not committed until the driver's COMMIT has returned.
   */
  async #criticalSection(op: Operation, tx: Tx | undefined): Promise<Section> {
    const enter = now()
    const value = await this.#app.read(op.key, tx)
    // Not synchronisation: the gap between read and write that a second writer would need.
    await delay(randomInt(MAX_SECTION_DELAY_MS))
    if (!op.shared) await this.#app.write(op.key, value + 1, tx)
    return {
      process: this.#index,
      task: op.task,
      kind: op.kind,
      key: op.key,
      shared: op.shared,
      enter,
      exit: now(),
      committed: tx === undefined,
    }
  }
}

interface Operation {
  readonly task: number
  readonly kind: OperationKind
  readonly key: number
  readonly shared: boolean
  readonly signal: AbortSignal | undefined
  /** What `signal` aborts with, when there is a signal. */
  readonly reason: Error
}

function describe(worker: number, op: Operation): string {
  return `process ${worker} task ${op.task}: ${op.kind} key ${op.key}${op.shared ? ' shared' : ''}`
}

/** The rejections an operation may end with: its timeout, or its own abort reason (exactly that value). */
function expectedFailure(error: unknown, reason: Error): 'timeout' | 'aborted' | undefined {
  if (error === reason) return 'aborted'
  if (error instanceof LockTimeoutError) return 'timeout'
  return undefined
}

/** Leaves out options that are undefined (exactOptionalPropertyTypes, and the API's own validation). */
function opt<T extends object>(options: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as never
}

/** Waits for the coordinator's next command (commands come one at a time, each after a report). */
function nextCommand(): Promise<CoordinatorCommand> {
  return new Promise((resolve) => process.once('message', (command: CoordinatorCommand) => resolve(command)))
}

/** The next command, which must be of `type`. */
async function expectCommand<T extends CoordinatorCommand['type']>(
  type: T,
): Promise<Extract<CoordinatorCommand, { type: T }>> {
  const command = await nextCommand()
  if (command.type !== type) throw new Error(`expected '${type}', got '${command.type}'`)
  return command as Extract<CoordinatorCommand, { type: T }>
}

async function main(): Promise<void> {
  // Listen first, then say hello: a message sent before the child listens could be lost.
  const init = expectCommand('init')
  send({ type: 'hello' })
  const { settings } = await init
  const { run, index, tasks } = settings
  const keyNames = Array.from({ length: settings.keys }, (_, k) => `pglock-stress:${run}:${k}`)
  const options = {
    url: settings.databaseUrl,
    max: tasks + POOL_SLACK,
    applicationName: `pglock-stress-${run}-${index}`,
    run,
  }
  await withStressApp(settings.adapter, options, async (app) => {
    const worker = new Worker(app, settings, keyNames)
    await app.read(0) // connects the pool before the clock starts
    // The transaction leak probe must see a lock when there is one, or its zeros prove nothing.
    const probed = await app.inTransaction(async (tx) => {
      await app.locker.transaction(tx).acquire(`pglock-stress:${run}:probe:${index}`)
      return app.locksHeld(tx)
    })
    if (probed !== 1) throw new Error(`locksHeld saw ${probed} advisory locks in a transaction that holds 1`)
    const start = expectCommand('start')
    send({ type: 'ready' })
    const { seconds } = await start
    const deadline = now() + BigInt(Math.round(seconds * 1e9))
    const stuck = setTimeout(
      () => send({ type: 'stuck', inFlight: worker.inFlight }),
      seconds * 1000 + STUCK_AFTER_MS,
    )
    await Promise.all(Array.from({ length: tasks }, (_, task) => worker.runTask(task, deadline)))
    clearTimeout(stuck)
    // The pools stay open: the coordinator now checks that the server shows nothing held or awaited.
    const close = expectCommand('close')
    send({ type: 'quiesced', sections: worker.sections, stats: worker.stats })
    await close
    await app.locker.close()
    await app.close()
  })
  finished = true
  // Nothing else may keep this process alive: the coordinator waits for it to exit by itself.
  send({ type: 'closed' }, () => process.disconnect())
}

/** Set once the coordinator has everything it asked for. */
let finished = false

// The coordinator is gone before the end: nobody reads the results, so stop (PostgreSQL ends the
// sessions, and their locks, when the sockets close).
process.once('disconnect', () => {
  if (!finished) process.exit(1)
})

main().catch((error: unknown) => {
  finished = true
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  send({ type: 'failed', message }, () => process.exit(1))
})
