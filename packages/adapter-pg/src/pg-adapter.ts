import { connect as netConnect } from 'node:net'
import type { Adapter, Row, SessionConnection, TransactionConnection, TransactionStatus } from '@pglock/core'

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

/** What pg keeps on a connected client (not in @types/pg) that a protocol CancelRequest needs. */
interface PgCancelTarget {
  readonly processID?: number | null
  readonly secretKey?: number | null
  readonly host?: string
  readonly port?: number
}

/** Errors pg raises for a dead connection carry no SQLSTATE; these messages are its own. */
const CONNECTION_ERROR =
  /Connection terminated|not queryable|Client was closed|Connection ended|ECONNRESET|EPIPE/

/** Errors this adapter has seen reported as the end of a session. */
const sessionEndErrors = new WeakSet<object>()

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
        if (typeof lost === 'object' && lost !== null) sessionEndErrors.add(lost)
        onLost(lost)
      }
      client.on('error', onEnd)
      client.on('end', onEnd)
      return {
        query: (text, params) => (lost === undefined ? run(client, text, params) : Promise.reject(lost)),
        cancel: () => cancel(client as PgCancelTarget),
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
        cancel: () => cancel(tx as PgCancelTarget),
        transactionStatus: () => transactionStatus(tx),
      }
    },
    sqlState(error) {
      const e = error as { code?: unknown; severity?: unknown } | null
      // DatabaseError carries `severity`; socket errors such as EPIPE have a `code` that is no SQLSTATE.
      return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
    },
    isConnectionError(error) {
      if (typeof error !== 'object' || error === null) return false
      if (sessionEndErrors.has(error)) return true
      const { message, code } = error as { message?: unknown; code?: unknown }
      return CONNECTION_ERROR.test(`${String(message)} ${String(code)}`)
    },
  }
}

async function run(client: PgClientLike, text: string, params: readonly string[]): Promise<readonly Row[]> {
  return (await client.query(text, [...params])).rows as Row[]
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

/**
 * Sends the protocol's CancelRequest (on a new socket, as libpq's PQcancel does) for the statement
 * running on `client`, and resolves when the server has taken it (it closes the socket). pg's own
 * `Client#cancel` is deprecated and needs a full client; this needs only the key data.
 */
function cancel(client: PgCancelTarget): Promise<void> {
  const { processID, secretKey, host, port } = client
  if (typeof processID !== 'number' || typeof secretKey !== 'number' || typeof port !== 'number') {
    return Promise.reject(new Error('pg: this client cannot cancel (no backend key data; pg-native?)'))
  }
  return new Promise((resolve, reject) => {
    const socket =
      host?.startsWith('/') === true
        ? netConnect(`${host}/.s.PGSQL.${port}`)
        : netConnect(port, host ?? 'localhost')
    socket.setTimeout(10_000, () => socket.destroy(new Error('pg: cancel request timed out')))
    socket.once('error', reject)
    socket.once('close', () => resolve())
    socket.once('connect', () => {
      const packet = Buffer.alloc(16)
      packet.writeInt32BE(16, 0)
      packet.writeInt32BE(80877102, 4) // CancelRequest code: 1234 << 16 | 5678
      packet.writeInt32BE(processID, 8)
      packet.writeInt32BE(secretKey, 12)
      socket.end(packet)
    })
  })
}
