import type { Adapter, Row, SessionConnection, TransactionConnection, TransactionStatus } from '@pglock/core'
import {
  isPgConnectionError,
  markSessionEnd,
  type PgCancelTarget,
  pgSqlState,
  sendCancelRequest,
} from './pg-protocol.js'

/** The slice of a `pg` client this adapter uses (a `pg.Client` or a `PoolClient`). */
export interface PgClientLike {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>
  on(event: 'error' | 'end', listener: (error?: unknown) => void): unknown
  removeListener(event: 'error' | 'end', listener: (error?: unknown) => void): unknown
  /** pg >= 8.21; absent (or null) before, and on pg-native. */
  getTransactionStatus?(): string | null
}

/** The slice of a `pg` pool client this adapter uses. */
export interface PgPoolClientLike extends PgClientLike {
  release(destroy?: boolean | Error): void
}

/** The slice of `pg.Pool` this adapter uses ("the subset of pg's Pool that we need"). */
export interface PgPoolLike {
  connect(): Promise<PgPoolClientLike>
}

/**
 * A pglock adapter for node-postgres: session locks on connections from `pool` (your existing
 * `pg.Pool`), transaction locks on a `pg` client inside `BEGIN` via `locker.transaction(client)`.
 */
export function pgAdapter(pool: PgPoolLike): Adapter<PgClientLike> {
  if (typeof (pool as Partial<PgPoolLike> | null)?.connect !== 'function') {
    throw new TypeError('pgAdapter(pool): expected a pg.Pool (an object with connect())')
  }
  return {
    name: 'pg',
    async connect({ onLost }): Promise<SessionConnection> {
      const client = await pool.connect()
      let lost: unknown
      // Mandatory: a checked-out pg client without an 'error' listener crashes the process when its
      // connection dies (drivers.md B1). It stays attached until the client goes back to the pool.
      const onEnd = (error?: unknown) => {
        if (lost !== undefined) return
        lost = error ?? new Error('pg: Connection ended')
        markSessionEnd(lost)
        onLost(lost)
      }
      client.on('error', onEnd)
      client.on('end', onEnd)
      return {
        query: (text, params) => (lost === undefined ? run(client, text, params) : Promise.reject(lost)),
        cancel: () => sendCancelRequest(client as PgCancelTarget),
        async release({ destroy }) {
          client.removeListener('end', onEnd)
          if (destroy || lost !== undefined) {
            // A destroyed client may still report its socket's end: keep listening so it cannot crash.
            client.release(true)
            return
          }
          client.removeListener('error', onEnd)
          client.release()
        },
      }
    },
    transaction(tx): TransactionConnection {
      if (typeof (tx as Partial<PgClientLike> | null)?.query !== 'function') {
        throw new TypeError('pgAdapter: locker.transaction(client) expects a pg client inside BEGIN')
      }
      return {
        query: (text, params) => run(tx, text, params),
        cancel: () => sendCancelRequest(tx as PgCancelTarget),
        transactionStatus: () => transactionStatus(tx),
      }
    },
    sqlState: pgSqlState,
    isConnectionError: isPgConnectionError,
  }
}

async function run(client: PgClientLike, text: string, params: readonly string[]): Promise<readonly Row[]> {
  return (await client.query(text, params as unknown[])).rows as Row[]
}

function transactionStatus(client: PgClientLike): TransactionStatus {
  // A pool runs each query wherever it likes, so it is never inside the caller's transaction.
  if (typeof (client as { totalCount?: unknown }).totalCount === 'number') return 'idle'
  const status = typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : null
  if (status === 'I') return 'idle'
  if (status === 'T') return 'active'
  if (status === 'E') return 'failed'
  return 'unknown'
}
