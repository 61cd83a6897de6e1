/**
 * What the stress processes tell each other: the test → one coordinator per adapter → its workers.
 * Messages travel over the `fork()` IPC channel with `serialization: 'advanced'` (structured clone), so
 * the `bigint` timestamps arrive as they were taken.
 */

/** The five drivers the stress run covers, by the name used on the command line and in summaries. */
export const ADAPTERS = ['pg', 'postgresjs', 'kysely', 'drizzle', 'databases'] as const

/** One of {@link ADAPTERS}. */
export type AdapterName = (typeof ADAPTERS)[number]

/**
 * The operations a task picks from at random. `tx.` ones take a transaction-scoped lock inside a
 * transaction of the app's driver; the others take a session lock. Each may be shared or exclusive and
 * may carry an `AbortSignal` that aborts at a random moment.
 */
export const OPERATION_KINDS = [
  'acquire',
  'acquire+timeout',
  'tryAcquire',
  'tx.acquire',
  'tx.acquire+timeout',
  'tx.tryAcquire',
] as const

/** One of {@link OPERATION_KINDS}. */
export type OperationKind = (typeof OPERATION_KINDS)[number]

/**
 * How an operation ended: it entered its critical section, found the lock taken (`tryAcquire`), timed
 * out, was aborted by its signal, or failed in an unexpected way (which fails the run).
 */
export const OUTCOMES = ['entered', 'busy', 'timeout', 'aborted', 'error'] as const

/** One of {@link OUTCOMES}. */
export type Outcome = (typeof OUTCOMES)[number]

/**
 * One critical section as a worker recorded it. `enter` is taken after the lock was granted and `exit`
 * before its release (or the transaction's COMMIT) was sent, so the recorded interval lies inside the
 * time the server really held the lock for it: if two recorded intervals overlap, the holds did.
 */
export interface Section {
  readonly process: number
  readonly task: number
  readonly kind: OperationKind
  /** Index of the key (and of its counter row), 0 .. keys - 1. */
  readonly key: number
  readonly shared: boolean
  /** `process.hrtime.bigint()` (CLOCK_MONOTONIC, nanoseconds), comparable across processes on one host. */
  readonly enter: bigint
  readonly exit: bigint
  /** The section's write reached the database: its transaction committed (always true for session locks). */
  readonly committed: boolean
}

/** A worker's counts, merged by the coordinator. */
export interface WorkerStats {
  readonly operations: Record<OperationKind, number>
  readonly outcomes: Record<Outcome, number>
  /** Operations that carried an `AbortSignal` (whether or not it fired in time to matter). */
  readonly withSignal: number
  /** Operations that asked for a shared lock. */
  readonly shared: number
  /** The first few unexpected errors, as text. */
  readonly errors: readonly string[]
  /** Transactions whose backend still had an advisory lock after a timed-out, aborted or busy attempt. */
  readonly leaks: readonly string[]
}

/**
 * What a worker is told, in answer to its first report ('hello'): settings travel over the IPC channel
 * rather than argv or the environment (the URL holds a password), and only once the child listens.
 */
export interface WorkerSettings {
  readonly adapter: AdapterName
  readonly databaseUrl: string
  /** The run's id: its counter rows, lock key names and `application_name`s carry it. */
  readonly run: string
  readonly index: number
  readonly keys: number
  readonly tasks: number
  readonly sabotage: boolean
}

/** What the coordinator asks of a worker. */
export type CoordinatorCommand =
  | { readonly type: 'init'; readonly settings: WorkerSettings }
  | { readonly type: 'start'; readonly seconds: number }
  | { readonly type: 'close' }

/** What a worker reports to its coordinator. */
export type WorkerReport =
  | { readonly type: 'hello' }
  | { readonly type: 'ready' }
  | { readonly type: 'quiesced'; readonly sections: readonly Section[]; readonly stats: WorkerStats }
  | { readonly type: 'stuck'; readonly inFlight: readonly string[] }
  | { readonly type: 'closed' }
  | { readonly type: 'failed'; readonly message: string }

/** How the test configures one coordinator (sent in answer to its 'hello'). */
export interface StressConfig {
  readonly adapter: AdapterName
  readonly databaseUrl: string
  readonly processes: number
  readonly tasks: number
  readonly keys: number
  readonly seconds: number
  /**
   * Exclusive session sections skip the lock (everything else unchanged), so the checker must report
   * violations: proves the whole pipeline, timestamps included, can fail.
   */
  readonly sabotage: boolean
}

/** The result of one adapter's run. */
export interface StressSummary {
  readonly adapter: AdapterName
  readonly processes: number
  readonly tasks: number
  readonly keys: number
  /** Wall time of the operation phase (from start to the last worker quiescing), in seconds. */
  readonly seconds: number
  /** From the coordinator's start to every worker connected and ready, in seconds. */
  readonly startupSeconds: number
  /** From the last worker quiescing to the end of the checks (close, exit, server view), in seconds. */
  readonly shutdownSeconds: number
  readonly operations: Record<OperationKind, number>
  readonly outcomes: Record<Outcome, number>
  readonly withSignal: number
  readonly sections: {
    readonly exclusive: number
    readonly shared: number
    /** Sections (of either mode) under a transaction-scoped lock. */
    readonly transaction: number
  }
  /** Shared sections that overlapped another shared one on their key (shared mode really admits many). */
  readonly sharedOverlaps: number
  readonly violations: number
  /** Violations by type: overlapping holders, counters off (lost updates), broken timestamps. */
  readonly violationsByType: Record<'overlap' | 'counter' | 'interval', number>
  /** A few violations of each type, as text. */
  readonly violationSamples: readonly string[]
  /**
   * Advisory locks left behind: in a transaction after an attempt that failed (checked by the worker,
   * on the transaction), and held or awaited by the run's backends or on the run's keys once every
   * operation has ended and again after the workers closed (checked by the coordinator).
   */
  readonly leaks: number
  readonly leakSamples: readonly string[]
  /** Backends of the run still connected after every worker exited. */
  readonly backendsLeft: number
  readonly errors: readonly string[]
  /** Per key: the counter in the database and the number of committed exclusive sections. */
  readonly counters: readonly { readonly key: number; readonly value: number; readonly exclusive: number }[]
}

/** What the test asks of a coordinator. */
export interface TestCommand {
  readonly type: 'run'
  readonly config: StressConfig
}

/** What a coordinator reports to the test. */
export type CoordinatorReport =
  | { readonly type: 'hello' }
  | { readonly type: 'result'; readonly summary: StressSummary }
  | { readonly type: 'failed'; readonly message: string }
