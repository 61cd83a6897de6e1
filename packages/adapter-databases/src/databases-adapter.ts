import {
  canCancel,
  isPgConnectionError,
  markSessionEnd,
  type PgCancelTarget,
  pgSqlState,
  sendCancelRequest,
} from '@pglock/adapter-pg'
import type { Adapter, Row, SessionConnection, TransactionConnection } from '@pglock/core'

/** The slice of `@databases/sql`'s `sql` (carried by every Queryable as `.sql`) that builds a query. */
export interface DatabasesSqlLike {
  __dangerous__rawValue(text: string): object
  value(value: unknown): object
  join(queries: object[]): object
}

/** The slice of an `@databases/pg` Queryable (pool, connection or transaction) this adapter uses. */
export interface DatabasesQueryableLike {
  /** `'connection_pool'`, `'connection'` or `'transaction'`. */
  readonly type: string
  readonly sql: DatabasesSqlLike
  query(query: object): Promise<unknown[]>
}

/** The slice of an `@databases/pg` `ConnectionPool` this adapter uses. */
export interface DatabasesPoolLike extends DatabasesQueryableLike {
  task<T>(fn: (connection: DatabasesQueryableLike) => Promise<T>): Promise<T>
}

/**
 * The pg client that @databases/pg 6 keeps behind each connection and transaction
 * (`connection._driver.client`, not public API). Where it is reachable, it gives what the public API
 * lacks: a cancel key, and the socket's end the moment it happens.
 */
interface PgClientInternals extends PgCancelTarget {
  on(event: 'error' | 'end', listener: (error?: unknown) => void): unknown
  removeListener(event: 'error' | 'end', listener: (error?: unknown) => void): unknown
}

/**
 * A pglock adapter for @databases/pg: session locks on a connection of `db` (your `ConnectionPool`)
 * held through `db.task()`, transaction locks on `db.tx()`'s transaction via `locker.transaction(tx)`.
 */
export function databasesAdapter(db: DatabasesPoolLike): Adapter<DatabasesQueryableLike> {
  if (db?.type !== 'connection_pool' || typeof db.task !== 'function') {
    throw new TypeError('databasesAdapter(db): expected an @databases/pg ConnectionPool')
  }
  return {
    name: '@databases/pg',
    connect: ({ onLost }) =>
      new Promise<SessionConnection>((resolve, reject) => {
        let lent = false
        // task() is callback-scoped: the callback stays pending while the core holds the connection.
        const settled = db
          .task(async (conn) => {
            lent = true
            const client = pgClientOf(conn)
            let lost: unknown
            const onEnd = (error?: unknown) => {
              if (lost !== undefined) return
              lost = error ?? new Error('@databases/pg: Connection ended')
              markSessionEnd(lost)
              onLost(lost)
            }
            client?.on('error', onEnd)
            client?.on('end', onEnd)
            const destroy = await new Promise<boolean>((handBack) =>
              resolve({
                // @databases cannot end a lent connection: the core cleans it before handing it back.
                destroyable: false,
                query: (text, params) =>
                  lost === undefined ? run(conn, text, params) : Promise.reject(lost),
                ...cancelOf(client),
                async release({ destroy }) {
                  client?.removeListener('error', onEnd)
                  client?.removeListener('end', onEnd)
                  // A session that could not be cleaned must not be recycled, and a rejected task alone
                  // does not stop that (@databases recycles it unless one of its statements failed): end
                  // it, which frees its locks and fails a statement, so @databases disposes of it.
                  if (destroy && lost === undefined) {
                    await run(conn, 'SELECT pg_terminate_backend(pg_backend_pid())', []).catch(noop)
                  }
                  handBack(destroy)
                  await settled
                },
              }),
            )
            if (destroy) throw new Error('pglock: connection discarded')
          })
          .then(noop, (error: unknown) => {
            if (!lent) reject(error)
          })
      }),
    transaction(tx): TransactionConnection {
      if (typeof tx?.query !== 'function' || typeof tx.sql?.value !== 'function') {
        throw new TypeError('databasesAdapter: locker.transaction(tx) expects the transaction of db.tx()')
      }
      const client = pgClientOf(tx)
      return {
        query: (text, params) => run(tx, text, params),
        ...cancelOf(client),
        // A pool never runs two statements on one session, and a task's connection may be inside a
        // BEGIN its owner sent by hand (the core then probes with a savepoint).
        transactionStatus: () =>
          tx.type === 'transaction' ? 'active' : tx.type === 'connection_pool' ? 'idle' : 'unknown',
      }
    },
    // @databases runs pg underneath and passes pg's errors through.
    sqlState: pgSqlState,
    isConnectionError: isPgConnectionError,
  }
}

function noop(): void {}

/**
 * Runs the core's text with its positional parameters: @databases only sends SQLQuery objects, so the
 * text is split at each `$n` and the n-th parameter goes in as a value (a placeholder again on the wire).
 */
async function run(
  queryable: DatabasesQueryableLike,
  text: string,
  params: readonly string[],
): Promise<readonly Row[]> {
  const { sql } = queryable
  const parts = text.split(/\$(\d+)/).map((part, i) => {
    if (i % 2 === 0) return sql.__dangerous__rawValue(part)
    const value = params[Number(part) - 1]
    if (value === undefined) throw new RangeError(`pglock: no parameter for $${part}`)
    return sql.value(value)
  })
  return (await queryable.query(sql.join(parts))) as Row[]
}

function pgClientOf(queryable: object): PgClientInternals | undefined {
  const client = (queryable as { _driver?: { client?: Partial<PgClientInternals> } })._driver?.client
  return typeof client?.on === 'function' && typeof client.removeListener === 'function'
    ? (client as PgClientInternals)
    : undefined
}

/** A `cancel` where the cancel key is known; none otherwise (an abort then waits for the statement to end). */
function cancelOf(client: PgClientInternals | undefined): { cancel?: () => Promise<void> } {
  return client !== undefined && canCancel(client) ? { cancel: () => sendCancelRequest(client) } : {}
}
