import type { Adapter, Row } from '@pglock/core'

/** How the suite asks an adapter package for instances of its adapter. */
export interface ConformanceHarness<Tx> {
  /**
   * Builds the app's own driver client (a pool of at most `max` connections to `url`, each with
   * `application_name` set and the given session `settings` applied, as the app's configuration would)
   * and an adapter over it.
   */
  create(options: HarnessOptions): Promise<AdapterInstance<Tx>>
}

/** What the suite asks of the app's driver client. */
export interface HarnessOptions {
  readonly url: string
  readonly max: number
  /** Identifies this instance's backends in `pg_stat_activity`. */
  readonly applicationName: string
  /** Session settings every connection starts with (as the app's pool configuration would set them). */
  readonly settings?: Readonly<Record<string, string>>
}

/** One adapter over one app-owned driver client. */
export interface AdapterInstance<Tx> {
  readonly adapter: Adapter<Tx>
  /**
   * Runs `fn` inside a transaction of the app's driver (BEGIN … COMMIT, or ROLLBACK when `fn` rejects)
   * and passes the driver's own transaction object, plus a way to run SQL on that transaction.
   */
  transaction<T>(fn: (tx: Tx, query: (sql: string) => Promise<readonly Row[]>) => Promise<T>): Promise<T>
  /** Runs `fn` with the driver object the app would wrongly pass outside a transaction (a plain connection). */
  outsideTransaction<T>(fn: (notTx: Tx) => Promise<T>): Promise<T>
  /** Runs SQL through the app's own client, as the app's other code does. */
  query(sql: string): Promise<readonly Row[]>
  /** Closes the app's driver client. */
  close(): Promise<void>
}

/**
 * Abilities an adapter may lack. Each names the reason, which the skipped tests' names carry; the
 * adapter's README must state the same limit.
 */
export interface ConformanceLimits {
  /** Session waits cannot be cancelled on the server (aborts and close() cannot stop them promptly). */
  readonly noSessionCancel?: string
  /** Waits inside the caller's transaction cannot be cancelled on the server. */
  readonly noTransactionCancel?: string
  /** The driver reports a dead connection only when it is next used, not when it dies. */
  readonly lossNoticedOnNextUse?: string
  /**
   * Session locks cannot work at all (the connection reaches a pooler in transaction mode): every
   * session-scope test is skipped; the transaction-scope tests run.
   */
  readonly noSessionLocks?: string
}

/** Arguments of {@link runAdapterConformance}. */
export interface ConformanceOptions<Tx> {
  /** Shown in every test name, e.g. `'pg'`. */
  readonly name: string
  readonly harness: ConformanceHarness<Tx>
  readonly limits?: ConformanceLimits
  /** Iterations of each grant-race loop (default 300). */
  readonly raceIterations?: number
}
