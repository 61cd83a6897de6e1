import { type PgPoolLike, pgAdapter } from '@pglock/adapter-pg'
import { postgresjsAdapter } from '@pglock/adapter-postgresjs'
import type { Adapter, Row, TransactionConnection, TransactionStatus } from '@pglock/core'
import { CompiledQuery } from 'kysely'

/** The postgres.js `sql` instance given to kysely-postgres-js's `PostgresJSDialect`. */
export type PostgresjsSqlLike = Parameters<typeof postgresjsAdapter>[0]

/** Options of {@link kyselyAdapter}. */
export interface KyselyAdapterOptions {
  /**
   * The pool your dialect uses: the pg `Pool` of `PostgresDialect`, or the postgres.js `sql` of
   * `PostgresJSDialect`. Session locks take their connections from it; without it they fail.
   */
  readonly pool?: PgPoolLike | PostgresjsSqlLike
  /**
   * postgres.js only: how long a lock connection of the adapter's own may stay idle before it is
   * closed, in milliseconds (default 10000); see `postgresjsAdapter`. A pg pool closes its idle
   * clients itself (`idleTimeoutMillis`), so it is ignored there.
   */
  readonly idleTimeoutMs?: number
  /**
   * pg only: run the lock statements as named prepared statements (default true); pass false behind
   * PgBouncer in transaction mode older than 1.21 (or without `max_prepared_statements`); see
   * `pgAdapter`. postgres.js follows the `prepare` option of your `sql`, so it is ignored there.
   */
  readonly prepare?: boolean
}

/** The adapter, plus the means to close the lock connections it owns. */
export interface KyselyAdapter extends Adapter<KyselyLike> {
  /** Closes the idle lock connections of the postgres.js flavour now (pg: nothing to do); call it after `locker.close()`. */
  close(): Promise<void>
}

/** The slice of a Kysely `DatabaseConnection` (a dialect's single connection) this adapter uses. */
export interface KyselyConnectionLike {
  executeQuery(query: CompiledQuery): Promise<{ readonly rows: readonly unknown[] }>
  /** Kysely >= 0.29: learns the backend pid that `cancelQuery` needs (pg: no round trip). */
  collectSessionInfo?(): Promise<void>
  /** Kysely >= 0.29: cancels the statement running on this connection. */
  cancelQuery?(control: (consumer: (connection: never) => Promise<void>) => Promise<void>): Promise<void>
}

/** The slice of a `Kysely` instance, `Transaction` or `ControlledTransaction` this adapter uses. */
export interface KyselyLike {
  readonly isTransaction: boolean
  /** `ControlledTransaction` only (0.28 and 0.29), as is `isRolledBack`. */
  readonly isCommitted?: boolean
  readonly isRolledBack?: boolean
  /** Marked internal by Kysely, but it is what its own `sql` tag runs queries through. */
  getExecutor(): {
    provideConnection<T>(consumer: (connection: KyselyConnectionLike) => Promise<T>): Promise<T>
  }
}

const NO_CANCEL =
  'pglock kysely adapter: cannot cancel a statement inside this transaction (needs Kysely >= 0.29 on PostgresDialect)'

const NO_POOL =
  'pglock kysely adapter: session locks need the pool your Kysely dialect uses, as kyselyAdapter(db, { pool }) ' +
  "(the pg Pool of PostgresDialect, or the postgres.js sql of PostgresJSDialect). Kysely attaches no 'error' " +
  'listener to the connections it checks out, so a lock connection that died would crash the process. ' +
  'Transaction locks (locker.transaction(trx)) work without it.'

/**
 * A pglock adapter for Kysely on `PostgresDialect` (pg) or kysely-postgres-js: session locks on
 * connections from `options.pool`, transaction locks on a Kysely `Transaction` via `locker.transaction(trx)`.
 */
export function kyselyAdapter(db: KyselyLike, options: KyselyAdapterOptions = {}): KyselyAdapter {
  if (typeof (db as Partial<KyselyLike> | null)?.getExecutor !== 'function') {
    throw new TypeError('kyselyAdapter(db): expected a Kysely instance')
  }
  const session = sessionAdapter(options)
  // A postgres.js column transform (postgres.camel) renames the core's column aliases under
  // kysely-postgres-js too; its inverse puts them back.
  const column = (options.pool as { options?: { transform?: { column?: Record<string, unknown> } } })?.options
    ?.transform?.column
  const unrename = typeof column?.from === 'function' ? (column.to as (name: string) => string) : undefined
  return {
    name: 'kysely',
    connect: (connectOptions) =>
      session === undefined ? Promise.reject(new Error(NO_POOL)) : session.connect(connectOptions),
    poolHasWaiters: () => session?.poolHasWaiters?.() ?? true,
    transaction(tx): TransactionConnection {
      if (typeof (tx as Partial<KyselyLike> | null)?.getExecutor !== 'function') {
        throw new TypeError('kyselyAdapter: locker.transaction(trx) expects a Kysely transaction')
      }
      return wrapTransaction(tx, unrename)
    },
    sqlState(error) {
      if (session !== undefined) return session.sqlState(error)
      const e = error as { code?: unknown; severity?: unknown } | null
      // pg's DatabaseError and postgres.js's PostgresError carry the server's severity; socket
      // errors (EPIPE) and postgres.js's own (CONNECTION_CLOSED) have a `code` that is no SQLSTATE.
      return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
    },
    // Only sessions can be lost, and they come from the pool's own adapter.
    isConnectionError: (error) => session?.isConnectionError(error) ?? false,
    close: async () => session?.close?.(),
  }
}

type SessionAdapter = Adapter<never> & { close?(): Promise<void> }

function sessionAdapter({ pool, idleTimeoutMs, prepare }: KyselyAdapterOptions): SessionAdapter | undefined {
  if (pool === undefined) return undefined
  if (typeof pool === 'function' && 'reserve' in pool && 'begin' in pool) {
    return postgresjsAdapter(pool, idleTimeoutMs === undefined ? {} : { idleTimeoutMs }) as SessionAdapter
  }
  if (typeof (pool as Partial<PgPoolLike> | null)?.connect === 'function') {
    return pgAdapter(pool as PgPoolLike, prepare === undefined ? {} : { prepare }) as SessionAdapter
  }
  throw new TypeError('kyselyAdapter(db, { pool }): expected a pg Pool or a postgres.js sql instance')
}

function wrapTransaction(
  tx: KyselyLike,
  unrename: ((name: string) => string) | undefined,
): TransactionConnection {
  let running: KyselyConnectionLike | undefined
  return {
    // On the connection itself rather than tx.executeQuery(): plugins (CamelCasePlugin...) would
    // rename the core's column aliases. Kysely still serialises it with the transaction's queries.
    query: async (text, params) =>
      tx.getExecutor().provideConnection(async (connection) => {
        await connection.collectSessionInfo?.()
        running = connection
        try {
          const { rows } = await connection.executeQuery(CompiledQuery.raw(text, [...params]))
          if (unrename === undefined) return rows as Row[]
          return rows.map((row) =>
            Object.fromEntries(Object.entries(row as Row).map(([k, v]) => [unrename(k), v])),
          )
        } finally {
          running = undefined
        }
      }),
    async cancel() {
      const connection = running
      // Not sent yet, or already settled: the core cancels again until the statement settles.
      if (connection === undefined) return
      // Kysely's own pg connection (0.29+) cancels with pg_cancel_backend and resolves once the server
      // ran it. kysely-postgres-js resolves before its request is even sent (postgres.js drops that
      // promise), so it could cancel a later statement of the caller's transaction. 0.28 has none.
      if (connection.cancelQuery === undefined || connection.constructor?.name !== 'PostgresConnection') {
        throw new Error(NO_CANCEL)
      }
      await connection.cancelQuery(() => Promise.reject(new Error(NO_CANCEL)))
    },
    transactionStatus: () => transactionStatus(tx),
  }
}

function transactionStatus(tx: KyselyLike): TransactionStatus {
  // A root Kysely runs each query on any pool connection: never inside the caller's transaction.
  if (tx.isTransaction !== true) return 'idle'
  if (typeof tx.isCommitted === 'boolean') {
    // ControlledTransaction: Kysely refuses every statement once it ended, and its commit and
    // rollback queue behind this adapter's statements, so its flags are exact.
    return tx.isCommitted || tx.isRolledBack === true ? 'idle' : 'active'
  }
  // A callback Transaction hides its state, and a statement sent while its COMMIT is in flight runs
  // after it, in autocommit: let the core bracket the lock with a savepoint.
  return 'unknown'
}
