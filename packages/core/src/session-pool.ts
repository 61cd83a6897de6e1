import type { Adapter, ConnectOptions, LockConnection, SessionConnection } from './adapter.js'
import { InvalidOptionsError } from './errors.js'
import { KEEPALIVE } from './sql.js'

/**
 * A server session that an adapter opened for itself (one driver connection of its own), for
 * {@link sessionPool}. Its `query` and `cancel` follow {@link LockConnection}; the pool stops calling
 * `query` once the session was reported lost.
 */
export interface OwnedSession extends LockConnection {
  /**
   * Ends the session; never rejects. `graceful`: the session was alive when the pool gave it up, so
   * resolve only once the server has closed it (its backend, and every lock it held, is gone).
   * Otherwise it is already dead: resolve without waiting.
   */
  end(graceful: boolean): Promise<void>
}

/** Options of {@link sessionPool}. */
export interface SessionPoolOptions {
  /** The adapter's name, for error messages. */
  readonly name: string
  /** At most this many sessions at once, lent or idle or opening; further connects queue in order. */
  readonly max: number
  /** How long a session may stay idle before it is ended, in milliseconds. */
  readonly idleTimeoutMs: number
  /**
   * How long a new session may take to answer its first statement, in milliseconds; 0 for no bound.
   * Past it, the connect rejects with an error whose `code` is `'CONNECT_TIMEOUT'` (which the
   * adapter's `isConnectionError` should recognise) and the session is ended.
   */
  readonly openTimeoutMs?: number
  /**
   * Creates a session (it may connect lazily: the pool sends it a first statement before lending it).
   * The adapter calls `lost` when the driver reports the session gone (its socket closed, a connection
   * error); calls after the first are ignored. May throw, which rejects the connect.
   */
  open(lost: (cause: unknown) => void): OwnedSession
}

/** What a {@link sessionPool} implements of an {@link Adapter}. */
export type SessionPool = Required<Pick<Adapter, 'connect' | 'poolHasWaiters' | 'close'>>

interface Entry {
  session: OwnedSession
  /** The session's `cancel`, bound once, if it has one. */
  cancel?: (() => Promise<void>) | undefined
  /** Lent to the core (the idle timer then leaves it alone). */
  lent: boolean
  /** Why the session is gone; it is never queried again (a driver might reconnect to a new backend). */
  dead?: unknown
  /** The core's listener while lent. */
  onLost?: ((cause: unknown) => void) | undefined
  /** Ends it when it stays idle; re-armed (not re-made) at each return. */
  timer?: ReturnType<typeof setTimeout>
  /** `end` was called. */
  ended?: Promise<void>
}

/**
 * A pool of sessions that an adapter opens itself, for drivers that cannot end one lent connection of
 * the app's pool (postgres.js): it implements `connect`, `poolHasWaiters` and `close` of the adapter.
 * It lends idle sessions last in, first out, opens new ones up to `max`, queues connects beyond that
 * first come first served, ends sessions idle for `idleTimeoutMs`, and ends those handed back with
 * `destroy` or reported lost. A lent session that is lost is reported to the core once, and its later
 * queries reject with the cause without reaching the driver.
 */
export function sessionPool(options: SessionPoolOptions): SessionPool {
  const { name, max, idleTimeoutMs, openTimeoutMs = 0, open } = options
  if (!Number.isInteger(max) || max < 1) {
    throw new InvalidOptionsError('max', 'expected an integer >= 1')
  }
  for (const [option, value] of [
    ['idleTimeoutMs', idleTimeoutMs],
    ['openTimeoutMs', openTimeoutMs],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new InvalidOptionsError(option, 'expected a finite number of milliseconds >= 0')
    }
  }
  const idle: Entry[] = []
  const waiters: { resolve: () => void; reject: (error: Error) => void }[] = []
  let inUse = 0
  let closed = false

  const closedError = () => new Error(`${name} adapter: closed (adapter.close() was called)`)
  const retire = (entry: Entry): Promise<void> => {
    clearTimeout(entry.timer)
    const at = idle.indexOf(entry)
    if (at !== -1) idle.splice(at, 1)
    entry.ended ??= entry.session.end(entry.dead === undefined).catch(() => {})
    return entry.ended
  }
  const markDead = (entry: Entry, cause: unknown): void => {
    if (entry.dead !== undefined) return
    entry.dead = cause
    const onLost = entry.onLost
    entry.onLost = undefined
    if (onLost === undefined) void retire(entry)
    else onLost(cause)
  }
  const freeSlot = () => {
    const next = waiters.shift()
    if (next === undefined) inUse--
    else next.resolve()
  }
  /** A new session, opened in the slot taken for it (the core counts a statement's time as the server's). */
  const opened = async (): Promise<Entry> => {
    let entry: Entry | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const created = { lent: false } as Entry
      created.session = open((cause) => markDead(created, cause))
      created.cancel = created.session.cancel?.bind(created.session)
      entry = created
      const first = created.session.query(KEEPALIVE.text, KEEPALIVE.params)
      await (openTimeoutMs > 0
        ? Promise.race([
            first,
            new Promise((_, reject) => {
              timer = setTimeout(() => {
                const error = new Error(
                  `${name}: a new lock connection did not answer within its connect timeout (${openTimeoutMs} ms)`,
                )
                reject(Object.assign(error, { code: 'CONNECT_TIMEOUT' }))
              }, openTimeoutMs)
            }),
          ])
        : first)
      if (closed) throw closedError()
      return created
    } catch (error) {
      if (entry !== undefined) void retire(entry)
      freeSlot()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }
  const lend = (entry: Entry, { onLost }: ConnectOptions): SessionConnection => {
    entry.lent = true
    entry.onLost = onLost
    const session = entry.session
    return {
      query: (text, params) =>
        entry.dead === undefined ? session.query(text, params) : Promise.reject(entry.dead),
      ...(entry.cancel === undefined ? {} : { cancel: entry.cancel }),
      async release({ destroy }) {
        entry.onLost = undefined
        entry.lent = false
        if (destroy || closed || entry.dead !== undefined) {
          await retire(entry)
        } else {
          if (entry.timer === undefined) {
            entry.timer = setTimeout(() => {
              if (!entry.lent) void retire(entry)
            }, idleTimeoutMs)
            entry.timer.unref?.()
          } else {
            entry.timer.refresh()
          }
          idle.push(entry)
        }
        freeSlot()
      },
    }
  }

  return {
    poolHasWaiters: () => waiters.length > 0,
    async connect(connectOptions) {
      if (closed) throw closedError()
      if (inUse < max) inUse++
      else await new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }))
      return lend(idle.pop() ?? (await opened()), connectOptions)
    },
    async close() {
      closed = true
      for (const waiter of waiters.splice(0)) waiter.reject(closedError())
      await Promise.all([...idle].map(retire))
    },
  }
}
