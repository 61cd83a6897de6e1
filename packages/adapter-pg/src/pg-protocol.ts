import { connect as netConnect } from 'node:net'

/** What a connected pg client knows (not in @types/pg) that a protocol CancelRequest needs. */
export interface PgCancelTarget {
  readonly processID?: number | null
  readonly secretKey?: number | null
  readonly host?: string
  readonly port?: number
}

/** Errors pg raises for a dead connection carry no SQLSTATE; these messages are its own. */
const CONNECTION_ERROR =
  /Connection terminated|not queryable|Client was closed|Connection ended|ECONNRESET|EPIPE/

/** Errors seen reported as the end of a session (by an `'error'` or `'end'` event). */
const sessionEndErrors = new WeakSet<object>()

/** Remembers that `error` ended a session, so that {@link isPgConnectionError} recognises it later. */
export function markSessionEnd(error: unknown): void {
  if (typeof error === 'object' && error !== null) sessionEndErrors.add(error)
}

/** The SQLSTATE of a pg `DatabaseError`; undefined for other errors (a socket's EPIPE is no SQLSTATE). */
export function pgSqlState(error: unknown): string | undefined {
  const e = error as { code?: unknown; severity?: unknown } | null
  return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
}

/** Whether a pg error means the connection is gone (rather than that the statement failed). */
export function isPgConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  if (sessionEndErrors.has(error)) return true
  const { message, code } = error as { message?: unknown; code?: unknown }
  return CONNECTION_ERROR.test(`${String(message)} ${String(code)}`)
}

/**
 * Whether `client` carries what {@link sendCancelRequest} needs (pg-native clients do not).
 */
export function canCancel(client: PgCancelTarget): boolean {
  return (
    typeof client.processID === 'number' &&
    typeof client.secretKey === 'number' &&
    typeof client.port === 'number'
  )
}

/**
 * Sends the protocol's CancelRequest for the statement running on `client`'s backend (on a new
 * socket, as libpq's PQcancel does; it needs no pool connection) and resolves when the server has
 * taken it (it closes the socket). pg's own `Client#cancel` is deprecated and needs a full client.
 */
export function sendCancelRequest(client: PgCancelTarget): Promise<void> {
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
    // A cancel to a server gone silent must not keep the process alive once the core gave up on it.
    socket.unref()
    socket.once('error', reject)
    socket.once('close', () => resolve())
    socket.once('connect', () => {
      const packet = Buffer.alloc(16)
      packet.writeInt32BE(16, 0)
      packet.writeInt32BE(80877102, 4) // CancelRequest code: 1234 << 16 | 5678
      packet.writeInt32BE(processID, 8)
      packet.writeInt32BE(secretKey, 12)
      // Written without closing our side: the server closes the socket once it has the request, and a
      // pooler (PgBouncer) drops a cancel whose client hung up before it was forwarded.
      socket.write(packet)
    })
  })
}
