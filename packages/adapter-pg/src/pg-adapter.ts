import { createHash } from 'node:crypto'
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
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>
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
  /** Callers waiting for a client (pg.Pool has it); without it, the core hands every client back at once. */
  readonly waitingCount?: number
}

/** Options of {@link pgAdapter}. */
export interface PgAdapterOptions {
  /**
   * Run the lock statements on lent connections as named prepared statements, so the server parses
   * and plans each of the few statement texts once per connection instead of on every call (it is
   * most of the server's work for a lock; default true). Behind PgBouncer in transaction mode older
   * than 1.21 (or without `max_prepared_statements`), pass false. Statements inside your own
   * transactions (`locker.transaction(client)`) are never prepared.
   */
  readonly prepare?: boolean
}

/**
 * A pglock adapter for node-postgres: session locks on connections from `pool` (your existing
 * `pg.Pool`), transaction locks on a `pg` client inside `BEGIN` via `locker.transaction(client)`.
 */
export function pgAdapter(pool: PgPoolLike, options: PgAdapterOptions = {}): Adapter<PgClientLike> {
  if (typeof (pool as Partial<PgPoolLike> | null)?.connect !== 'function') {
    throw new TypeError('pgAdapter(pool): expected a pg.Pool (an object with connect())')
  }
  if (options.prepare !== undefined && typeof options.prepare !== 'boolean') {
    throw new TypeError('pgAdapter(pool, { prepare }): prepare must be a boolean')
  }
  const runOnSession = options.prepare === false ? run : runPrepared
  return {
    name: 'pg',
    poolHasWaiters: () => (typeof pool.waitingCount === 'number' ? pool.waitingCount > 0 : true),
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
        query: (text, params) =>
          lost === undefined ? runOnSession(client, text, params) : Promise.reject(lost),
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

/** Statement names by text: a digest, so that every copy of this module names a text alike. */
const statementNames = new Map<string, string>()

async function runPrepared(
  client: PgClientLike,
  text: string,
  params: readonly string[],
): Promise<readonly Row[]> {
  let name = statementNames.get(text)
  if (name === undefined) {
    name = `pglock_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
    statementNames.set(text, name)
  }
  return (await client.query({ name, text, values: params as unknown[] })).rows as Row[]
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
