/** What a case is, what one round of it yields, and what it runs with. */
import type pg from 'pg'
import type { Counts } from './options.js'

/** One round of an uncontended case: `ops` operations one after another. */
export interface UncontendedSample {
  readonly kind: 'uncontended'
  readonly ops: number
  /** Operations including the warm-up: what the statements the server saw are divided by. */
  readonly totalOps: number
  readonly totalNs: number
  readonly nsPerOp: number
  /** Per-operation latency percentiles within the round. */
  readonly p50Ns: number
  readonly p99Ns: number
  /** CPU time of this process (user + system) per operation: the client-side cost. */
  readonly cpuNsPerOp: number
  /**
   * pglock cases: their floor, run as many times in the same window, in blocks alternating with the
   * case's; what the case's ratio divides by.
   */
  readonly paired?: {
    readonly floorNsPerOp: number
    readonly floorCpuNsPerOp: number
    /** Floor operations including the warm-up: the server's statement count includes theirs. */
    readonly floorTotalOps: number
  }
}

/** One round of a contention case: `workers` loops of acquire → release on one key. */
export interface ContentionSample {
  readonly kind: 'contention'
  readonly workers: number
  /** Acquire → release cycles of the whole case (warm-up, window, last turns, connection warming). */
  readonly cycles: number
  readonly windowMs: number
  /** Acquisitions that completed inside the measured window. */
  readonly acquisitions: number
  readonly acquisitionsPerSec: number
  /** Those acquisitions by another worker than the previous holder: the lock changed hands. */
  readonly handoffs: number
  readonly handoffsPerSec: number
  /** From calling acquire to holding the lock. */
  readonly waitP50Ms: number
  readonly waitP99Ms: number
  /** Of the hand-offs: from the previous holder starting its release to the next holder holding the lock. */
  readonly handoffP50Ms: number
  readonly handoffP99Ms: number
  /** Acquisitions inside the window, per worker. */
  readonly perWorker: readonly number[]
  readonly minPerWorker: number
  readonly maxPerWorker: number
  /** Garbage-collection pauses of the arena's process that started in the window, in ms per second of window. */
  readonly gcMsPerSec: number
  /** Of those, full (mark-compact) collections: many mean young objects being promoted. */
  readonly majorGcs: number
  /** CPU time of the arena's process during the window, as a share of one core (1 = one core busy). */
  readonly cpuCores: number
  /**
   * The floor, run alongside in windows taking turns with this case's (same workers, same total
   * time): the case ÷ floor ratios come from these two.
   */
  readonly paired?: Omit<ContentionSample, 'paired'>
}

/** One round of a held-locks case (connections, or heap per lock). */
export interface HeldSample {
  readonly kind: 'held'
  readonly requested: number
  /** Locks held when measured (fewer than requested when the case stalled). */
  readonly held: number
  /** No acquire completed for `stallMs`: the rest were aborted. */
  readonly stalled: boolean
  readonly elapsedMs: number
  /** Connections of the app pool holding advisory locks, and the locks they hold, per `pg_locks`. */
  readonly serverConnections: number
  readonly serverLocks: number
  /** `pool.totalCount` while the locks are held. */
  readonly poolTotalCount: number
  /** Whether the app pool answered `SELECT 1` within `select1TimeoutMs` while the locks were held. */
  readonly select1Served: boolean
  readonly select1Ms: number | null
  /** heapUsed after `gc()`, before acquiring and while the locks are held; null when gc is not exposed. */
  readonly heapBefore: number | null
  readonly heapAfter: number | null
  /** (heapAfter − heapBefore) / held; null without gc, or when the case stalled (too few locks to tell). */
  readonly heapBytesPerLock: number | null
}

export type Sample = UncontendedSample | ContentionSample | HeldSample

export type Section = 'uncontended' | 'contention' | 'held'

/** What every case gets. */
export interface RunContext {
  readonly url: string
  readonly counts: Counts
  /** A connection of the bench's own, for looking at the server (`pg_locks`, `pg_stat_activity`). */
  readonly admin: pg.Client
}

export interface BenchCase {
  /** Stable id, e.g. `pglock-pg/acquire`; `--only` matches on it. */
  readonly id: string
  readonly section: Section
  readonly label: string
  /** A few words for the chart. */
  readonly short: string
  /** The case this one is divided by, round by round. */
  readonly floorId?: string
  /** Workers (contention), or locks to hold (held locks). */
  readonly size?: number
  run(ctx: RunContext): Promise<Sample>
}

/** Marks the bench's own queries, so that the server-side statement counts leave them out. */
export const ADMIN_MARKER = '/* pglock-bench-admin */'

/** The application_name every connection the bench opens carries, so the server's view can tell them apart. */
export const APP_NAME_PREFIX = 'pglock-bench'
