import { type Adapter, type Row, sessionPool } from '@pglock/core'

/** The slice of a postgres.js `sql` (the instance, `sql.begin`'s transaction, a reserved one) that runs SQL. */
export interface PostgresSqlLike {
  /** Called with parameters made by `typed` only. */
  unsafe(query: string, parameters: never[], options: { prepare: boolean }): PromiseLike<readonly object[]>
  typed(value: string, oid: number): unknown
}

/** The slice of the postgres.js instance (what `postgres(url, options)` returns) this adapter uses. */
export interface PostgresInstanceLike extends PostgresSqlLike {
  /** The parsed options: the adapter's own lock connections are built from them. */
  readonly options: { readonly max: number }
}

/** Options of {@link postgresjsAdapter}. */
export interface PostgresjsAdapterOptions {
  /**
   * How long a lock connection may stay idle before it is closed, in milliseconds (default 10000, as
   * pg's Pool). Each new one costs a connection set-up (with SCRAM, about 2 ms of hashing on the event
   * loop), so a timeout shorter than the pauses between bursts of locks reconnects at each burst.
   */
  readonly idleTimeoutMs?: number
}

/** The adapter, plus the means to close the lock connections it owns. */
export interface PostgresjsAdapter extends Adapter<PostgresSqlLike> {
  /** Closes the idle lock connections now and refuses new ones; call it after `locker.close()`. */
  close(): Promise<void>
}

/** What postgres.js 3.4 keeps on a statement (not in its types) that a cancel needs. */
interface QueryInternals extends PromiseLike<readonly object[]> {
  readonly active?: boolean
  readonly canceller?: (query: QueryInternals) => Promise<unknown>
  catch(onRejected: (error: unknown) => unknown): unknown
}

/** A postgres.js instance of our own, with `max: 1`: one lock connection whose death we observe. */
interface DedicatedSql extends PostgresSqlLike {
  end(options: { timeout: number }): Promise<void>
}
type PostgresFactory = (options: object) => DedicatedSql

/** postgres.js's own connection-level codes, and the socket errors it passes on; none is a SQLSTATE. */
const CONNECTION_ERROR =
  /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT|ECONN(RESET|REFUSED|ABORTED)|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ERR_STREAM_DESTROYED)$/
/** How a lock wait ends inside a caller's transaction; the core undoes each with ROLLBACK TO SAVEPOINT. */
const UNDONE_BY_CORE = new Set(['55P03', '57014', '40P01'])
/** Rows keyed by the core's own column aliases, whatever `transform` the app's instance uses. */
const NO_TRANSFORM = { undefined: undefined, column: {}, value: {}, row: {} }
/**
 * Parameters travel as text, the type of the core's strings, which its SQL casts: typed by the server
 * (`$1::bool` → bool), postgres.js would serialise them by that type and mangle some ('true' → 'f').
 */
const TEXT_OID = 25
const LOST = 'postgres.js: the lock connection closed; its session and locks are gone'
/** `unsafe`'s options: copied by postgres.js, so one object serves every statement. */
const PREPARED = { prepare: true }

let loading: Promise<PostgresFactory> | undefined
let loaded: PostgresFactory | undefined
/** Loaded on first use, so that packages offering a postgres.js flavour load without postgres installed. */
const loadPostgres = () =>
  (loading ??= import('postgres').then((module) => {
    loaded = module.default as unknown as PostgresFactory
    return loaded
  }))

/**
 * A pglock adapter for postgres.js: session locks on lock connections of its own (built from the
 * options of `sql`, at most `sql.options.max` at once, reused while idle), transaction locks on
 * `sql.begin`'s `sql` via `locker.transaction(tx)`.
 */
export function postgresjsAdapter(
  sql: PostgresInstanceLike,
  options: PostgresjsAdapterOptions = {},
): PostgresjsAdapter {
  const parsed = (sql as Partial<PostgresInstanceLike> | null)?.options as Record<string, unknown> | undefined
  if (typeof parsed?.shared !== 'object' || typeof parsed.max !== 'number') {
    throw new TypeError(
      'postgresjsAdapter(sql): expected a postgres.js instance (what postgres(url) returns)',
    )
  }
  const { idleTimeoutMs = 10_000 } = options
  const column = parsed.transform as { column?: { from?: unknown; to?: unknown } } | undefined
  const unrename = typeof column?.column?.from === 'function' ? column.column.to : undefined
  const pool = sessionPool({
    name: 'postgres.js',
    // The pool limit of the app's instance holds for lock connections too.
    max: parsed.max,
    idleTimeoutMs,
    // postgres.js's connect_timeout (seconds) ends with the start-up; the pool bounds the first statement too.
    openTimeoutMs: typeof parsed.connect_timeout === 'number' ? parsed.connect_timeout * 1000 : 0,
    open(lost) {
      const dedicated = (loaded as PostgresFactory)({
        ...parsed,
        max: 1,
        // Either would end a lent connection, and its locks, between two statements; the pool times idle ones.
        idle_timeout: null,
        max_lifetime: null,
        fetch_types: false,
        transform: NO_TRANSFORM,
        // Also what makes postgres.js take the object as parsed options; keeps its retry count to itself.
        shared: { retries: 0, typeArrayMap: {} },
        parameters: {},
        onparameter: undefined,
        onclose: () => lost(Object.assign(new Error(LOST), { code: 'CONNECTION_CLOSED' })),
      })
      const run = runner(dedicated, false, undefined, (error) => {
        if (isConnectionError(error)) lost(error)
      })
      return {
        query: run.query,
        cancel: run.cancel,
        // A graceful end waits until the server closed the socket, i.e. until the backend, and every lock it
        // held, is gone (`timeout: 0` would resolve at once, the lock still briefly held); seconds, in postgres.js.
        // A connection already closed has nothing to wait for: postgres.js would wait out the timeout.
        end: (graceful) => dedicated.end({ timeout: graceful ? 5 : 0 }),
      }
    },
  })

  return {
    name: 'postgres.js',
    poolHasWaiters: pool.poolHasWaiters,
    // postgres is loaded before the pool opens a connection with it.
    connect: (connectOptions) =>
      loaded === undefined
        ? loadPostgres().then(() => pool.connect(connectOptions))
        : pool.connect(connectOptions),
    transaction(tx) {
      const t = tx as Partial<PostgresSqlLike> | null
      if (typeof t?.unsafe !== 'function' || typeof t.typed !== 'function') {
        throw new TypeError('postgresjsAdapter: locker.transaction(tx) expects the sql that sql.begin passes')
      }
      const options = (tx as { options?: { max?: unknown } }).options
      // The instance is a pool (unless max: 1, where BEGIN may have been sent by hand). Anything else,
      // even sql.begin's sql, may be outside a transaction (used after its callback ended): 'unknown'
      // makes the core probe with a SAVEPOINT rather than risk a lock released at once.
      const isPool = typeof (tx as { begin?: unknown }).begin === 'function' && options?.max !== 1
      return { ...runner(tx, true, unrename), transactionStatus: () => (isPool ? 'idle' : 'unknown') }
    },
    sqlState(error) {
      const e = error as { code?: unknown; severity?: unknown } | null
      // PostgresError carries the server's severity; postgres.js's own codes (CONNECTION_CLOSED...) are no SQLSTATEs.
      return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
    },
    isConnectionError,
    close: pool.close,
  }
}

/** Runs statements on `target`, keeping the one in flight so that it can be cancelled. */
function runner(
  target: PostgresSqlLike,
  inTransaction: boolean,
  unrename: unknown,
  onError?: (error: unknown) => void,
) {
  // One statement at a time (the core's promise), so what settles is always the one in flight. No
  // async function here: the session path is on every hand-off of a contended lock.
  let inFlight: QueryInternals | undefined
  const answered = (rows: readonly object[]): readonly Row[] => {
    inFlight = undefined
    if (typeof unrename !== 'function') return rows as readonly Row[]
    return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [unrename(k), v])))
  }
  /** A script of several statements answers with one result each; the core reads the one with rows. */
  const answeredScript = (result: readonly object[]): readonly Row[] =>
    answered(
      Array.isArray(result[0])
        ? ((result as readonly (readonly object[])[]).find((r) => r.length > 0) ?? [])
        : result,
    )
  const failed = (error: unknown): never => {
    inFlight = undefined
    onError?.(error)
    throw error
  }
  const send = (
    text: string,
    args: unknown[],
    onAnswer: (result: readonly object[]) => readonly Row[],
  ): Promise<readonly Row[]> => {
    let query: QueryInternals
    try {
      // Without parameters postgres.js sends a simple Query message, which may hold several statements.
      query = target.unsafe(text, args as never[], PREPARED) as QueryInternals
    } catch (error) {
      return Promise.reject(error)
    }
    if (inTransaction) keepTransactionAlive(query)
    inFlight = query
    return Promise.resolve(query.then(onAnswer, failed))
  }
  return {
    query(text: string, params: readonly string[]): Promise<readonly Row[]> {
      const args = new Array<unknown>(params.length)
      for (let i = 0; i < params.length; i++) args[i] = target.typed(params[i] as string, TEXT_OID)
      return send(text, args, answered)
    },
    script: (text: string) => send(text, [], answeredScript),
    /**
     * postgres.js's public `cancel()` drops the promise of its cancel request (so it cannot say when
     * the server has it, and a failed request becomes an unhandled rejection), and "cancels" a statement
     * not yet running on the server locally, which wedges a connection that is still opening. So: send
     * the CancelRequest only for the running statement, through the driver's own canceller; otherwise
     * do nothing now (the core cancels again until the statement settles).
     */
    cancel(): Promise<void> {
      const query = inFlight
      if (query?.active !== true) return Promise.resolve()
      if (typeof query.canceller !== 'function') {
        return Promise.reject(new Error('postgres.js: this version gives no way to await a cancel'))
      }
      return query.canceller(query).then(() => {})
    },
  }
}

/**
 * `sql.begin` remembers every failed statement of its transaction, even one the core caught and undid,
 * and then rolls the whole transaction back when the callback returns. A lock wait's own endings
 * (timeout, cancel, deadlock) are undone by the core, so they are kept from that bookkeeping.
 */
function keepTransactionAlive(query: QueryInternals): void {
  const attach = query.catch.bind(query)
  query.catch = (onRejected) =>
    attach((error) =>
      UNDONE_BY_CORE.has(String((error as { code?: unknown }).code)) ? undefined : onRejected(error),
    )
}

function isConnectionError(error: unknown): boolean {
  return CONNECTION_ERROR.test(String((error as { code?: unknown } | null)?.code))
}
