import { type PgClientLike, type PgPoolLike, pgAdapter } from '@pglock/adapter-pg'
import {
  type PostgresInstanceLike,
  type PostgresSqlLike,
  postgresjsAdapter,
} from '@pglock/adapter-postgresjs'
import type { Adapter, Row, TransactionConnection } from '@pglock/core'
import { type SQL, sql } from 'drizzle-orm'

/** The slice of a drizzle-orm database (what `drizzle(...)` returns) this adapter reads: the driver client. */
export interface DrizzleDatabaseLike {
  /** A pg `Pool` or `Client` (node-postgres driver), or a postgres.js `sql` (postgres-js driver). */
  readonly $client: unknown
}

/** A drizzle-orm transaction (the `tx` of `db.transaction(async (tx) => …)`), as `locker.transaction(tx)` takes it. */
export interface DrizzleTransactionLike {
  /** drizzle's `tx.execute(sql)`; typed loosely so that any drizzle version's `tx` fits. */
  execute(query: never): PromiseLike<unknown>
}

/** Options of {@link drizzleAdapter}, each passed on to the driver adapter it concerns. */
export interface DrizzleAdapterOptions {
  /**
   * postgres-js only: how long a lock connection of the adapter's own may stay idle before it is
   * closed, in milliseconds (default 10000); see `postgresjsAdapter`. A pg pool closes its idle
   * clients itself (`idleTimeoutMillis`), so it is ignored on node-postgres.
   */
  readonly idleTimeoutMs?: number
  /**
   * node-postgres only: run the lock statements as named prepared statements (default true); pass
   * false behind PgBouncer in transaction mode older than 1.21 (or without `max_prepared_statements`);
   * see `pgAdapter`. postgres.js follows the `prepare` option of your `sql`, so it is ignored there.
   */
  readonly prepare?: boolean
}

/** The adapter, plus the means to close the lock connections of the postgres-js flavour. */
export interface DrizzleAdapter extends Adapter<DrizzleTransactionLike> {
  /** Closes the postgres-js flavour's idle lock connections and refuses new ones (no-op on node-postgres); call it after `locker.close()`. */
  close(): Promise<void>
}

/** drizzle marks its classes with this key (`is()` walks it), stable from 0.45 to the 1.0 candidates. */
const ENTITY_KIND = Symbol.for('drizzle:entityKind')

/**
 * A pglock adapter for drizzle-orm on the node-postgres or postgres-js driver: session locks on
 * `db.$client` (through `@pglock/adapter-pg` / `@pglock/adapter-postgresjs`), transaction locks on
 * drizzle's `tx` via `locker.transaction(tx)`.
 */
export function drizzleAdapter(db: DrizzleDatabaseLike, options: DrizzleAdapterOptions = {}): DrizzleAdapter {
  const { idleTimeoutMs, prepare } = options ?? {}
  const client = (db as Partial<DrizzleDatabaseLike> | null)?.$client
  if (isPgQueryable(client)) {
    // drizzle(client) on a single pg client: that connection is the app's, so it can be neither lent
    // to the core for the lifetime of a lock nor ended to free one (drivers.md B4).
    const pg = pgAdapter(
      isPgPool(client) ? client : { connect: () => Promise.reject(singleClientError()) },
      prepare === undefined ? {} : { prepare },
    )
    return over(
      'drizzle/node-postgres',
      pg,
      async () => {},
      (tx, c) => {
        const query = viaDrizzle(tx)
        if (!isPgQueryable(c)) return { query, transactionStatus: () => 'unknown' }
        // adapter-pg reads the state (getTransactionStatus; 'idle' for the pool of a root db) and
        // cancels with a protocol CancelRequest for the client's backend.
        const { transactionStatus, cancel } = pg.transaction(c)
        return { query, transactionStatus, ...(cancel && { cancel }) }
      },
    )
  }
  if (isPostgresJs(client)) {
    // It checks that this is an instance.
    const pjs = postgresjsAdapter(
      client as PostgresInstanceLike,
      idleTimeoutMs === undefined ? {} : { idleTimeoutMs },
    )
    return over('drizzle/postgres-js', pjs, pjs.close, (_, c) => {
      // Not through tx.execute: postgres.js's sql.begin records every failed statement and rolls the
      // whole transaction back at its end, even a lock timeout the core undid with ROLLBACK TO
      // SAVEPOINT. adapter-postgresjs runs the statements on the tx's own sql, guarded against that
      // and cancellable; it answers 'unknown' for a tx (one used after its begin() ended would run
      // in autocommit), so the core probes with a SAVEPOINT, and 'idle' for the root db's pool.
      if (!isPostgresJs(c))
        throw new TypeError('drizzle/postgres-js: no postgres.js sql at tx.session.client')
      return pjs.transaction(c)
    })
  }
  throw new TypeError(
    'drizzleAdapter(db): expected a drizzle-orm database on node-postgres (db.$client a pg Pool or Client) or postgres-js (db.$client a postgres.js sql)',
  )
}

/** The drizzle layer over a driver adapter: session scope is the driver adapter's own. */
function over(
  name: string,
  base: Adapter<never>,
  close: () => Promise<void>,
  connection: (tx: DrizzleTransactionLike, client: unknown) => TransactionConnection,
): DrizzleAdapter {
  return {
    name,
    connect: (options) => base.connect(options),
    poolHasWaiters: () => base.poolHasWaiters?.() ?? true,
    transaction(tx) {
      const kinds = entityKinds(tx)
      // A drizzle tx is also a drizzle database (PgTransaction extends PgDatabase), so ask this first.
      const inTransaction = kinds.some((kind) => kind.endsWith('Transaction'))
      if (!inTransaction && !kinds.some((kind) => kind.endsWith('Database'))) {
        throw new TypeError(
          `${name}: locker.transaction(tx) expects the tx of db.transaction(async (tx) => …)`,
        )
      }
      // drizzle keeps a tx's driver client at tx.session.client (internal, same in 0.45 and 1.0 rc).
      const target = tx as { session?: { client?: unknown }; $client?: unknown }
      return connection(tx, inTransaction ? target.session?.client : target.$client)
    },
    // drizzle wraps driver errors in a DrizzleQueryError whose `cause` is the driver's own error.
    sqlState: (error) => base.sqlState(error) ?? base.sqlState(causeOf(error)),
    isConnectionError: (error) => base.isConnectionError(error) || base.isConnectionError(causeOf(error)),
    close,
  }
}

/** Runs the core's statements through drizzle's `tx.execute` (and its logger); pg resolves with a QueryResult. */
function viaDrizzle(tx: DrizzleTransactionLike): TransactionConnection['query'] {
  return async (text, params) => ((await tx.execute(bind(text, params) as never)) as { rows: Row[] }).rows
}

/**
 * The core's text, with `$1..$n` placeholders (the core writes none inside literals), as a drizzle
 * `SQL` whose parameters are bound, never inlined; casts such as `$1::bigint` stay in the text.
 */
function bind(text: string, params: readonly string[]): SQL {
  const chunks: SQL[] = []
  let at = 0
  for (const match of text.matchAll(/\$(\d+)/g)) {
    const value = params[Number(match[1]) - 1]
    if (value === undefined) throw new RangeError(`pglock: no parameter for ${match[0]} in: ${text}`)
    chunks.push(sql.raw(text.slice(at, match.index)), sql.param(value).getSQL())
    at = match.index + match[0].length
  }
  chunks.push(sql.raw(text.slice(at)))
  return sql.join(chunks)
}

/** The entity kinds of `value`'s class chain, most derived first (e.g. NodePgTransaction, PgTransaction, …). */
function entityKinds(value: unknown): string[] {
  const kinds: string[] = []
  if (typeof value !== 'object' || value === null) return kinds
  for (let cls: unknown = value.constructor; typeof cls === 'function'; cls = Object.getPrototypeOf(cls)) {
    const kind = (cls as { [ENTITY_KIND]?: unknown })[ENTITY_KIND]
    if (typeof kind === 'string') kinds.push(kind)
  }
  return kinds
}

function causeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined
}

function isPgPool(client: unknown): client is PgPoolLike {
  const c = client as { connect?: unknown; totalCount?: unknown } | null
  return typeof c?.connect === 'function' && typeof c.totalCount === 'number'
}

/** A pg Pool, Client or PoolClient (what adapter-pg's `transaction` accepts). */
function isPgQueryable(client: unknown): client is PgClientLike {
  const c = client as { query?: unknown; on?: unknown } | null
  return typeof c === 'object' && typeof c?.query === 'function' && typeof c.on === 'function'
}

/** A postgres.js `sql` (root, reserved or transaction): a function with `unsafe`. */
function isPostgresJs(client: unknown): client is PostgresSqlLike {
  return typeof client === 'function' && typeof (client as { unsafe?: unknown }).unsafe === 'function'
}

function singleClientError(): TypeError {
  return new TypeError(
    'drizzleAdapter: session locks need drizzle(pool); this db wraps a single pg client, which pglock can neither hold for a lock nor end to free one (transaction-scoped locks on its tx still work)',
  )
}
