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

/** Abilities an adapter may lack; each names the reason, which the skipped test's name carries. */
export interface ConformanceLimits {
  /** The driver cannot cancel a statement on the server, so aborts end the session instead. */
  readonly noCancel?: string
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
