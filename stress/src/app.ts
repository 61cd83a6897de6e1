/**
 * The stress app, the same on every driver: a locker over the driver's adapter, the counter queries
 * (in that driver's style) and the driver's own way to run a transaction. One module per driver in
 * apps/, loaded on demand so that a worker imports only its own driver.
 */
import type { Locker } from '@pglock/core'
import type { AdapterName } from './messages.js'

/** The table of counters, one row per (run, key); created by the coordinator. */
export const COUNTER_TABLE = 'pglock_stress_counter'

/** One instance of the stress app; `Tx` is its driver's transaction object. */
export interface StressApp<Tx> {
  readonly locker: Locker<Tx>
  /** Reads the counter of `key`, through the app's pool or, given `tx`, inside that transaction. */
  read(key: number, tx?: Tx): Promise<number>
  /** Writes the counter of `key`, through the app's pool or, given `tx`, inside that transaction. */
  write(key: number, value: number, tx?: Tx): Promise<void>
  /** Advisory locks that the backend of `tx` holds or awaits, as `pg_locks` shows them. */
  locksHeld(tx: Tx): Promise<number>
  /** Runs `fn` in a transaction of the driver: COMMIT when it resolves, ROLLBACK when it rejects. */
  inTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>
  /** Closes the app's client (after `locker.close()`). */
  close(): Promise<void>
}

/** How a worker configures its app: the app's own client is a pool of `max` connections. */
export interface StressAppOptions {
  readonly url: string
  readonly max: number
  /** Tags the app's backends in `pg_stat_activity`, so the coordinator can find them. */
  readonly applicationName: string
  /** The run's id: its rows in {@link COUNTER_TABLE}. */
  readonly run: string
}

/** The query behind {@link StressApp.locksHeld}, for the drivers that take SQL text. */
export const LOCKS_HELD = `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`

/** The `n` of a {@link LOCKS_HELD} result. */
export function countOf(rows: readonly { n?: unknown }[]): number {
  const n = rows[0]?.n
  if (typeof n !== 'number') throw new Error('pg_locks count missing')
  return n
}

/** The counter from a query's rows; throws when the run's row is missing. */
export function counterOf(rows: readonly { value?: unknown }[], key: number): number {
  const value = rows[0]?.value
  if (typeof value !== 'number') throw new Error(`no counter row for key ${key}`)
  return value
}

/**
 * Runs `use` with the app on the named driver. The callback form keeps each driver's transaction type
 * exact inside `use` without naming it here.
 */
export async function withStressApp<R>(
  adapter: AdapterName,
  options: StressAppOptions,
  use: <Tx>(app: StressApp<Tx>) => Promise<R>,
): Promise<R> {
  switch (adapter) {
    case 'pg':
      return use((await import('./apps/pg-app.js')).pgApp(options))
    case 'postgresjs':
      return use((await import('./apps/postgresjs-app.js')).postgresjsApp(options))
    case 'kysely':
      return use((await import('./apps/kysely-app.js')).kyselyApp(options))
    case 'drizzle':
      return use((await import('./apps/drizzle-app.js')).drizzleApp(options))
    case 'databases':
      return use((await import('./apps/databases-app.js')).databasesApp(options))
  }
}
