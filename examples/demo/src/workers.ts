/**
 * The main process's side of the workers: starts them with `child_process.fork`, sends them
 * commands, and collects their reports in one inbox that main.ts reads in order.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Command, Report } from './messages.js'
import { now } from './timeline.js'

/** A report as main.ts receives it: who sent it and when it arrived (ms since the demo started). */
export interface Received {
  readonly from: Worker
  readonly report: Report
  readonly at: number
}

/** A received report of one known type. */
export type ReceivedOf<T extends Report['type']> = Received & {
  readonly report: Extract<Report, { type: T }>
}

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url))
const DEFAULT_WAIT_MS = 30_000

export class Worker {
  readonly name: string
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly #child: ChildProcess
  #exitExpected = false

  constructor(name: string, databaseUrl: string, workers: Workers) {
    this.name = name
    // fork() starts the child with this process's execArgv (`--import tsx --conditions=@pglock/source`),
    // so worker.ts runs as TypeScript and imports the workspace packages' sources just like main.ts.
    this.#child = fork(WORKER_SCRIPT, [name], {
      env: { ...process.env, DEMO_DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.#child.on('message', (report: Report) => workers.receive(this, report))
    this.#child.on('error', (error) => workers.fail(new Error(`${name}: ${error.message}`, { cause: error })))
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        resolve({ code, signal })
        if (!this.#exitExpected) workers.fail(new Error(`${name} exited unexpectedly (${signal ?? code})`))
      })
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  send(command: Command): void {
    this.#child.send(command)
  }

  /** Asks the worker to release everything and exit. */
  shutdown(): void {
    this.#exitExpected = true
    this.send({ type: 'shutdown' })
  }

  /** Ends the process at once: SIGKILL gives it no chance to release anything. */
  kill(): void {
    this.#exitExpected = true
    if (this.running) this.#child.kill('SIGKILL')
  }
}

/** The one pending `next()` call. */
interface Waiter {
  /** Takes the report if it is the awaited type; false otherwise. */
  offer(received: Received): boolean
  reject(error: Error): void
}

export class Workers {
  readonly all: readonly Worker[]
  readonly #onReport: (received: Received) => void
  readonly #inbox: Received[] = []
  #waiter: Waiter | undefined
  #failure: Error | undefined

  /** Forks `count` workers and waits until each has connected to the database. */
  static async start(
    count: number,
    databaseUrl: string,
    onReport: (received: Received) => void,
  ): Promise<Workers> {
    const workers = new Workers(count, databaseUrl, onReport)
    await workers.collect('ready', count)
    return workers
  }

  private constructor(count: number, databaseUrl: string, onReport: (received: Received) => void) {
    this.#onReport = onReport
    this.all = Array.from({ length: count }, (_, i) => new Worker(`worker-${i + 1}`, databaseUrl, this))
  }

  get running(): Worker[] {
    return this.all.filter((worker) => worker.running)
  }

  broadcast(command: Command): void {
    for (const worker of this.running) worker.send(command)
  }

  /** The next report of this type from any worker (earlier unread ones first). */
  next<T extends Report['type']>(type: T, timeoutMs = DEFAULT_WAIT_MS): Promise<ReceivedOf<T>> {
    const matches = (received: Received): received is ReceivedOf<T> => received.report.type === type
    const index = this.#inbox.findIndex(matches)
    const unread = this.#inbox[index]
    if (unread !== undefined && matches(unread)) {
      this.#inbox.splice(index, 1)
      return Promise.resolve(unread)
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined
        reject(new Error(`no worker reported '${type}' within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiter = {
        offer: (received) => {
          if (!matches(received)) return false
          clearTimeout(timer)
          this.#waiter = undefined
          resolve(received)
          return true
        },
        reject: (error) => {
          clearTimeout(timer)
          this.#waiter = undefined
          reject(error)
        },
      }
    })
  }

  /** The next `count` reports of this type. */
  async collect<T extends Report['type']>(type: T, count: number): Promise<ReceivedOf<T>[]> {
    const received: ReceivedOf<T>[] = []
    while (received.length < count) received.push(await this.next(type))
    return received
  }

  /** Called by a Worker for each message it gets. */
  receive(from: Worker, report: Report): void {
    const received: Received = { from, report, at: now() }
    this.#onReport(received)
    if (report.type === 'failed') {
      this.fail(new Error(`${from.name} failed: ${report.message}`))
      return
    }
    if (this.#waiter?.offer(received) !== true) this.#inbox.push(received)
  }

  /** Something went wrong with a worker: the pending wait, and every later one, rejects with `error`. */
  fail(error: Error): void {
    this.#failure ??= error
    this.#waiter?.reject(this.#failure)
  }

  /** Synchronous, so it also works in an 'exit' handler. */
  killAll(): void {
    for (const worker of this.all) worker.kill()
  }
}
