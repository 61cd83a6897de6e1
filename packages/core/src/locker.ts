import type { Adapter, Row, TransactionConnection } from './adapter.js'
import {
  ConnectionLostError,
  DeadlockError,
  InvalidOptionsError,
  LockerClosedError,
  LockTableFullError,
  LockTimeoutError,
  NotInTransactionError,
  PgLockError,
  SessionMovedError,
} from './errors.js'
import {
  DEADLOCK_DETECTED,
  IN_FAILED_SQL_TRANSACTION,
  isSessionGone,
  LOCK_NOT_AVAILABLE,
  NO_ACTIVE_SQL_TRANSACTION,
  OUT_OF_MEMORY,
} from './internal/classify.js'
import { HandOffs } from './internal/hand-offs.js'
import { KeepAlive } from './internal/keep-alive.js'
import { KeyCache } from './internal/key-cache.js'
import { noop, Operation, raceOperation } from './internal/operation.js'
import { Registry } from './internal/registry.js'
import { ServerWait, type Waitable } from './internal/server-wait.js'
import { Session, type SessionHooks } from './internal/session.js'
import { SilenceWatch } from './internal/silence-watch.js'
import { keyId, type LockKey, type LockKeyInput } from './keys.js'
import type { LockHandle, LockHandleImpl } from './lock-handle.js'
import {
  type AcquireOptions,
  type LockerOptions,
  type ResolvedAcquireOptions,
  type ResolvedLockerOptions,
  resolveAcquireOptions,
  resolveLockerOptions,
  resolveTryAcquireOptions,
  type TryAcquireOptions,
} from './options.js'
import {
  BEGIN,
  COMMIT,
  type LockMode,
  lockTimeoutSetting,
  RELEASE_SAVEPOINT,
  ROLLBACK,
  ROLLBACK_TO_SAVEPOINT,
  restoreLocalTimeouts,
  SAVEPOINT,
  type Statement,
  sessionHolds,
  sessionLock,
  sessionLockIfUnlimited,
  sessionLockInTransaction,
  sessionTryLock,
  setLocalTimeouts,
  underSavepointScript,
  xactLock,
  xactLockIfUnlimited,
  xactTryLock,
} from './sql.js'

/** The outcome of `tryWithLock`. */
export type TryWithLockResult<T> =
  | { readonly acquired: true; readonly value: T }
  | { readonly acquired: false }

/** Transaction-scoped locks on one of the caller's transactions. */
export interface TransactionLocker {
  /** `pg_advisory_xact_lock[_shared]`: held until the transaction ends. */
  acquire(key: LockKeyInput, options?: AcquireOptions): Promise<void>
  /** One attempt, never waits: true when acquired (held until the transaction ends). */
  tryAcquire(key: LockKeyInput, options?: TryAcquireOptions): Promise<boolean>
}

/** Distributed locks on one adapter. Create it with {@link createLocker}. */
export interface Locker<Tx = unknown> extends AsyncDisposable {
  /** Waits until the lock is held. No timeoutMs = wait without limit. */
  acquire(key: LockKeyInput, options?: AcquireOptions): Promise<LockHandle>
  /** One attempt, never waits: the handle, or null when someone else holds the lock. */
  tryAcquire(key: LockKeyInput, options?: TryAcquireOptions): Promise<LockHandle | null>
  /** acquire, run fn, always release; rejects with `LockLostError` if the lock was lost while fn ran. */
  withLock<T>(
    key: LockKeyInput,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: AcquireOptions,
  ): Promise<T>
  /** tryAcquire; runs fn only when acquired (the "skip if already running" pattern). */
  tryWithLock<T>(
    key: LockKeyInput,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: TryAcquireOptions,
  ): Promise<TryWithLockResult<T>>
  /** Transaction-scoped locks on the caller's own transaction object. */
  transaction(tx: Tx): TransactionLocker
  /** Releases every lock this locker holds, rejects its pending waits with LockerClosedError, returns its connections. Idempotent. */
  close(): Promise<void>
}

/**
 * Creates a locker over an adapter, for example `createLocker(pgAdapter(pool))`.
 * Throws {@link InvalidOptionsError} synchronously for a bad adapter or option.
 */
export function createLocker<Tx>(adapter: Adapter<Tx>, options?: LockerOptions): Locker<Tx> {
  const a = adapter as Partial<Adapter<Tx>> | null
  if (
    typeof a !== 'object' ||
    a === null ||
    typeof a.connect !== 'function' ||
    typeof a.transaction !== 'function' ||
    typeof a.sqlState !== 'function' ||
    typeof a.isConnectionError !== 'function'
  ) {
    throw new InvalidOptionsError(
      'adapter',
      'expected a pglock adapter such as pgAdapter(pool) from @pglock/adapter-pg (an object with connect, transaction, sqlState and isConnectionError)',
    )
  }
  return new LockerImpl(adapter, resolveLockerOptions(options))
}

/**
 * How long a key whose try failed counts as contended: its blocking acquires skip the try meanwhile.
 * A skipped try costs nothing when the key is free (the wait statement returns at once), only the
 * connection sharing of that one acquire until its lock is granted.
 */
const CONTENDED_MS = 1_000
/** At most this many contended keys are remembered. */
const CONTENDED_KEYS = 1_024

/** Serialises the core's statements per caller transaction object (see `#transactionTurn`). */
const transactionQueues = new WeakMap<object, Promise<void>>()

class LockerImpl<Tx> implements Locker<Tx> {
  readonly #adapter: Adapter<Tx>
  readonly #options: ResolvedLockerOptions
  // Registries, not Sets: see Registry.
  readonly #operations = new Registry<Operation>()
  readonly #sessions = new Registry<Session>()
  /** Keys whose last try failed, until when they count as contended (see `#lockSession`). */
  readonly #contended = new Map<string, number>()
  readonly #sessionHooks: SessionHooks
  readonly #handOffs = new HandOffs()
  readonly #keys: KeyCache

  #closing: Promise<void> | undefined
  /**
   * Sessions that came to hold nothing during this turn of the event loop, kept for an acquire that
   * follows at once; handed back at the end of the turn (see `Adapter.poolHasWaiters`).
   */
  readonly #spares: Session[] = []
  #sparesTimer: ReturnType<typeof setImmediate> | undefined

  constructor(adapter: Adapter<Tx>, options: ResolvedLockerOptions) {
    this.#adapter = adapter
    this.#options = options
    this.#keys = new KeyCache(options.keyDerivation)
    this.#sessionHooks = {
      onIdle: (session) => this.#onIdle(session),
      sessions: this.#sessions,
      keepAlive:
        options.keepAliveMs === undefined ? undefined : new KeepAlive(options.keepAliveMs, this.#sessions),
      abandonAfterMs: options.abandonAfterMs,
      silence: new SilenceWatch(options.abandonAfterMs),
      afterRelease: (id) => this.#handOffs.afterRelease(id),
    }
  }

  get #closed(): boolean {
    return this.#closing !== undefined
  }

  acquire(key: LockKeyInput, options?: AcquireOptions): Promise<LockHandle> {
    return this.#acquireSession(key, options, false) as Promise<LockHandle>
  }

  tryAcquire(key: LockKeyInput, options?: TryAcquireOptions): Promise<LockHandle | null> {
    return this.#acquireSession(key, options, true)
  }

  async withLock<T>(
    key: LockKeyInput,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: AcquireOptions,
  ): Promise<T> {
    checkCallback(fn)
    const handle = (await this.#acquireSession(key, options, false)) as LockHandleImpl
    return runHolding(handle, fn)
  }

  async tryWithLock<T>(
    key: LockKeyInput,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: TryAcquireOptions,
  ): Promise<TryWithLockResult<T>> {
    checkCallback(fn)
    const handle = await this.#acquireSession(key, options, true)
    if (handle === null) return { acquired: false }
    return { acquired: true, value: await runHolding(handle, fn) }
  }

  transaction(tx: Tx): TransactionLocker {
    return {
      acquire: async (key, options) => {
        await this.#acquireTransaction(tx, key, options, false)
      },
      tryAcquire: (key, options) => this.#acquireTransaction(tx, key, options, true),
    }
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = (async () => {
        this.#handOffs.releaseAll()
        const spares = this.#handBackSpares()
        const pending = this.#operations.values()
        for (const op of pending) op.abort(new LockerClosedError())
        await Promise.all([...spares, ...pending.map((op) => op.done)])
        // A session whose unlocks the server does not answer is given up on (SilenceWatch), not waited for.
        await Promise.all(this.#sessions.values().map((session) => session.revokeAll()))
        await this.#adapter.close?.()
      })()
    }
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  // ---- session scope ------------------------------------------------------------------------

  /**
   * Not async, so that a waiting acquire keeps one suspended frame (`#lockSession`'s) rather than two:
   * everything that can throw before the lock is asked for rejects the returned promise.
   */
  #acquireSession(input: LockKeyInput, rawOptions: unknown, isTry: boolean): Promise<LockHandleImpl | null> {
    let key: LockKey
    let options: ResolvedAcquireOptions
    let noWait: boolean
    let op: Operation
    try {
      key = this.#keys.lockKey(input)
      options = isTry ? resolveTryAcquireOptions(rawOptions) : resolveAcquireOptions(rawOptions)
      if (this.#closed) throw new LockerClosedError()
      if (options.signal?.aborted) throw options.signal.reason
      // timeoutMs: 0 means "do not wait for the lock"; the pool wait is then the same as tryAcquire's.
      noWait = isTry || options.timeoutMs === 0
      op = this.#operation(key, options, noWait)
    } catch (error) {
      return Promise.reject(error)
    }
    const mode: LockMode = options.shared ? 'shared' : 'exclusive'
    return this.#lockSession(key, mode, isTry, noWait, options.timeoutMs, op)
  }

  #operation(key: LockKey, options: ResolvedAcquireOptions, noWait: boolean): Operation {
    const timeoutMs = noWait ? undefined : options.timeoutMs
    return new Operation(this.#operations, options.signal, timeoutMs, key)
  }

  /**
   * Optimistic multiplexing: a session that already holds other locks (or is on its way) gets a
   * zero-wait try; only when that fails and the caller wants to wait does the acquire take a session
   * of its own for the blocking wait: the one it tried on when nothing else uses it, a fresh one
   * otherwise.
   */
  async #lockSession(
    key: LockKey,
    mode: LockMode,
    isTry: boolean,
    noWait: boolean,
    timeoutMs: number | undefined,
    op: Operation,
  ): Promise<LockHandleImpl | null> {
    try {
      const id = keyId(key)
      let session: Session | undefined
      let row: Row | undefined
      // A key found taken a moment ago would most likely fail a try again: its blocking acquires skip
      // the try and wait at once, saving a round trip per contended acquire.
      if (noWait || !this.#isContended(id)) {
        for (let attempt = 1; ; attempt++) {
          session = this.#sessionToTry(id)
          if (op.aborted || !session.isOpen) await this.#ready(session, id, key, op)
          // Let finish even when the acquire aborts (a cancel would hit whatever runs next on a shared
          // session): what it took is given back below. Only a server silent for abandonAfterMs is not
          // waited for (see SilenceWatch): the session is given up on, and everything on it with it.
          const trying = session.watch(sessionTryLock(key, mode), 'a try')
          try {
            row = (await trying.promise)[0]
          } catch (error) {
            session.unwatch(trying)
            const outcome = await this.#afterFailedSessionWait(session, id, key, mode, error, op, undefined)
            // A shared connection that died unnoticed (or was given up on as silent) took whatever this
            // try got with it: try once more on another connection rather than fail an acquire that
            // never touched a live one.
            if (attempt === 1 && outcome instanceof ConnectionLostError && !op.aborted) continue
            throw outcome
          }
          session.unwatch(trying)
          break
        }
        if (row?.acquired === false) this.#markContended(id)
      }
      if (session === undefined || (row?.acquired === false && !noWait && !op.aborted)) {
        // Every wait runs on a connection of its own: the one just tried on when nothing else uses it.
        if (session === undefined || !session.claimForWait(id)) {
          session?.settle(id)
          session = this.#openSession(id, true)
          if (op.aborted || !session.isOpen) await this.#ready(session, id, key, op)
        }
        op.startServerWait()
        this.#handOffs.waitStarted(id)
        try {
          const remaining = op.remainingMs()
          const statement =
            remaining === undefined
              ? sessionLockIfUnlimited(key, mode)
              : remaining < 1
                ? sessionTryLock(key, mode)
                : sessionLock(key, mode, remaining)
          try {
            row = (await this.#waitOnServer(session, statement, op))[0]
            if (row?.acquired === null && remaining === undefined) {
              // The session has a lock_timeout or statement_timeout of its own: lift them for this wait.
              row = (await this.#waitOnServer(session, sessionLock(key, mode, undefined), op))[0]
            }
          } catch (error) {
            throw await this.#afterFailedSessionWait(session, id, key, mode, error, op, timeoutMs)
          }
          if (row?.acquired === null) {
            // The caller's statement_timeout would cut the wait short: take the transaction-block route.
            row = await this.#lockSessionInBlock(session, id, key, mode, op, timeoutMs)
          }
        } finally {
          this.#handOffs.waitEnded(id)
        }
      }
      if (row?.acquired === true) {
        if (session.pid !== undefined && row.pid !== session.pid) {
          // Only a pooler in front of the server does this: the lock sits on another backend now.
          const moved = new SessionMovedError(`backend ${session.pid} before, ${String(row.pid)} now`)
          session.lose(moved)
          throw new ConnectionLostError(key, { cause: moved })
        }
        const handle = session.addHold(key, id, mode, row.pid)
        if (op.aborted) {
          // Granted just as the abort landed: the caller has gone, so give the lock back.
          await handle.release()
          throw op.reason
        }
        if (this.#closed) {
          await handle.release()
          throw new LockerClosedError()
        }
        return handle
      }
      if (row?.acquired === false) {
        session.settle(id)
        if (op.aborted) throw op.reason
        if (!isTry) throw new LockTimeoutError(key, timeoutMs ?? 0)
        return null
      }
      await session.dispose(true)
      throw new Error(
        `pglock: the ${this.#adapter.name} adapter returned an unexpected row: ${JSON.stringify(row)}`,
      )
    } finally {
      op.dispose()
    }
  }

  /** A session on which `id` may be tried at once (the first one found), or a new one; reserved for `id`. */
  #sessionToTry(id: string): Session {
    const session = this.#sessions.find((candidate) => candidate.canTry(id))
    if (session === undefined) return this.#openSession(id, false)
    session.reserve(id)
    return session
  }

  /** Whether a try of `id` failed within the last {@link CONTENDED_MS}. */
  #isContended(id: string): boolean {
    const until = this.#contended.get(id)
    if (until === undefined) return false
    if (until > performance.now()) return true
    this.#contended.delete(id)
    return false
  }

  #markContended(id: string): void {
    this.#contended.delete(id)
    this.#contended.set(id, performance.now() + CONTENDED_MS)
    // Oldest first (a Map keeps insertion order): forget the oldest beyond the bound.
    if (this.#contended.size > CONTENDED_KEYS) {
      const oldest = this.#contended.keys().next().value
      if (oldest !== undefined) this.#contended.delete(oldest)
    }
  }

  /** A session came to hold nothing: it goes back to the adapter, at once or at the end of this turn. */
  #onIdle(session: Session): void {
    if (this.#closed || this.#poolHasWaiters()) {
      void session.dispose(false)
      return
    }
    this.#spares.push(session)
    this.#sparesTimer ??= setImmediate(this.#endOfTurn)
  }

  #poolHasWaiters(): boolean {
    return this.#adapter.poolHasWaiters?.() ?? true
  }

  readonly #endOfTurn = (): void => void this.#handBackSpares()

  /** Hands the spare sessions back to the adapter; returns their releases. */
  #handBackSpares(): Promise<void>[] {
    clearImmediate(this.#sparesTimer)
    this.#sparesTimer = undefined
    const released: Promise<void>[] = []
    // A spare taken since (by a try that found it) is no longer idle: it goes back when it is again.
    for (const session of this.#spares) if (session.isIdle) released.push(session.dispose(false))
    this.#spares.length = 0
    return released
  }

  /**
   * A spare session (unless somebody waits for the pool), or a new one from the adapter; reserved for
   * `id` (and for its blocking wait when `exclusive`).
   */
  #openSession(id: string, exclusive: boolean): Session {
    const spare = this.#takeSpare()
    const session = spare ?? new Session(this.#adapter as Adapter<never>, this.#sessionHooks)
    session.reserve(id)
    if (exclusive) session.claimForWait(id)
    if (spare === undefined) session.connect()
    return session
  }

  #takeSpare(): Session | undefined {
    if (this.#spares.length > 0 && this.#poolHasWaiters()) this.#handBackSpares()
    for (let spare = this.#spares.pop(); spare !== undefined; spare = this.#spares.pop()) {
      if (spare.isIdle) return spare
    }
    return undefined
  }

  /** Waits for the session's connection; the pool wait counts towards the deadline and honours aborts. */
  async #ready(session: Session, id: string, key: LockKey, op: Operation): Promise<void> {
    try {
      if (op.aborted) throw op.reason
      const failed = await raceOperation(op, session.ready, noop)
      if (failed !== undefined) throw failed.error
    } catch (error) {
      session.settle(id)
      // A full lock table fails even the start of a new session.
      throw op.aborted || this.#adapter.sqlState(error) !== OUT_OF_MEMORY
        ? error
        : new LockTableFullError(key, { cause: error })
    }
  }

  /**
   * The route when the caller's `statement_timeout` is shorter than the wait: it cannot be lifted
   * inside the statement it governs, so lift it for one transaction block (session locks outlive it).
   */
  async #lockSessionInBlock(
    session: Session,
    id: string,
    key: LockKey,
    mode: LockMode,
    op: Operation,
    timeoutMs: number | undefined,
  ): Promise<Row | undefined> {
    try {
      await session.ask(BEGIN, 'BEGIN')
    } catch (error) {
      throw await this.#discardedAfter(session, key, error, op, timeoutMs)
    }
    let row: Row | undefined
    try {
      const remaining = op.remainingMs()
      await session.ask(
        setLocalTimeouts(remaining === undefined ? '0' : lockTimeoutSetting(remaining), '0', true),
        'the timeouts of the wait',
      )
      row = (await this.#waitOnServer(session, sessionLockInTransaction(key, mode), op))[0]
    } catch (error) {
      if (session.isOpen && !isSessionGone(this.#adapter as Adapter<never>, error)) {
        try {
          await session.ask(ROLLBACK, 'ROLLBACK')
        } catch {
          throw await this.#discardedAfter(session, key, error, op, timeoutMs)
        }
      }
      throw await this.#afterFailedSessionWait(session, id, key, mode, error, op, timeoutMs)
    }
    try {
      await session.ask(COMMIT, 'COMMIT')
    } catch (error) {
      throw await this.#discardedAfter(session, key, error, op, timeoutMs)
    }
    return row
  }

  /**
   * After a failed or aborted session wait: PostgreSQL can grant the lock just as it reports a
   * timeout or a cancel (DESIGN.md 2), so ask the server whether this session holds it, unlock if it
   * does, and only then hand the connection back. Returns the error the acquire rejects with.
   */
  async #afterFailedSessionWait(
    session: Session,
    id: string,
    key: LockKey,
    mode: LockMode,
    error: unknown,
    op: Operation,
    timeoutMs: number | undefined,
  ): Promise<unknown> {
    if (this.#sessionGone(session, error)) return this.#discardedAfter(session, key, error, op, timeoutMs)
    const outcome = op.aborted ? op.reason : this.#classify(error, key, timeoutMs)
    let held: unknown
    try {
      held = (await session.ask(sessionHolds(key, mode), 'a check of the locks it holds'))[0]?.held
    } catch {
      // The check itself failed; ending the session (below) is the sure way to free whatever it holds.
    }
    if (held === true) {
      // One hold at most: a session never holds or tries one key for two acquires, so unlocking once
      // is exact.
      await session.addHold(key, id, mode, undefined).release()
    } else if (held === false) {
      session.settle(id)
    } else {
      await session.discard()
    }
    return outcome
  }

  /**
   * Discards a session a statement failed on, and returns the error the acquire rejects with: a
   * session that died under it (whatever the driver's error said about it) or was given up on as
   * silent (its end is then under way, and may take as long as the server stays silent) makes it a
   * `ConnectionLostError`, unless the acquire aborted or the error says more.
   */
  async #discardedAfter(
    session: Session,
    key: LockKey,
    error: unknown,
    op: Operation,
    timeoutMs: number | undefined,
  ): Promise<unknown> {
    // Decided before the discard, which may take a while (a graceful end): a deadline passing meanwhile
    // does not change what went wrong.
    const aborted = op.aborted
    const outcome = aborted ? op.reason : this.#classify(error, key, timeoutMs)
    const gone = this.#sessionGone(session, error)
    await session.discard()
    return aborted || outcome instanceof PgLockError || !gone
      ? outcome
      : new ConnectionLostError(key, { cause: error })
  }

  /** Whether the session died under the statement that failed with `error`, or was given up on. */
  #sessionGone(session: Session, error: unknown): boolean {
    return session.abandoned || !session.isOpen || isSessionGone(this.#adapter as Adapter<never>, error)
  }

  /** Runs a statement that may wait on the server (see ServerWait). */
  #waitOnServer(target: Waitable, statement: Statement, op: Operation): Promise<readonly Row[]> {
    if (op.aborted) return Promise.reject(op.reason)
    return new ServerWait(target, statement, op, this.#options.abandonAfterMs).promise
  }

  #classify(error: unknown, key: LockKey, timeoutMs: number | undefined): unknown {
    const state = this.#adapter.sqlState(error)
    if (state === LOCK_NOT_AVAILABLE && timeoutMs !== undefined) {
      return new LockTimeoutError(key, timeoutMs, { cause: error })
    }
    if (state === DEADLOCK_DETECTED) return new DeadlockError(key, { cause: error })
    if (state === OUT_OF_MEMORY) return new LockTableFullError(key, { cause: error })
    if (isSessionGone(this.#adapter as Adapter<never>, error))
      return new ConnectionLostError(key, { cause: error })
    return error
  }

  // ---- transaction scope --------------------------------------------------------------------

  async #acquireTransaction(
    tx: Tx,
    input: LockKeyInput,
    rawOptions: unknown,
    isTry: boolean,
  ): Promise<boolean> {
    const key = this.#keys.lockKey(input)
    const options = isTry ? resolveTryAcquireOptions(rawOptions) : resolveAcquireOptions(rawOptions)
    if (this.#closed) throw new LockerClosedError()
    if (options.signal?.aborted) throw options.signal.reason
    const conn = this.#adapter.transaction(tx)
    const mode: LockMode = options.shared ? 'shared' : 'exclusive'
    const noWait = isTry || options.timeoutMs === 0
    const op = this.#operation(key, options, noWait)
    try {
      const endTurn = await raceOperation(op, this.#transactionTurn(tx as object), (late) => late())
      try {
        op.startServerWait()
        const acquired = await this.#lockTransaction(conn, key, mode, noWait, options, op)
        if (!acquired && !isTry) throw new LockTimeoutError(key, options.timeoutMs ?? 0)
        return acquired
      } finally {
        endTurn()
      }
    } finally {
      op.dispose()
    }
  }

  /**
   * Waits for this transaction object's earlier pglock calls: their savepoints must not interleave
   * (rolling back to one would destroy a later one).
   */
  #transactionTurn(tx: object): Promise<() => void> {
    const previous = transactionQueues.get(tx) ?? Promise.resolve()
    let endTurn!: () => void
    const mine = new Promise<void>((resolve) => {
      endTurn = resolve
    })
    const tail = previous.then(() => mine)
    transactionQueues.set(tx, tail)
    void tail.then(() => {
      if (transactionQueues.get(tx) === tail) transactionQueues.delete(tx)
    })
    return previous.then(() => endTurn)
  }

  async #lockTransaction(
    conn: TransactionConnection,
    key: LockKey,
    mode: LockMode,
    noWait: boolean,
    options: ResolvedAcquireOptions,
    op: Operation,
  ): Promise<boolean> {
    const status = conn.transactionStatus()
    if (status === 'idle')
      throw new NotInTransactionError(`the ${this.#adapter.name} connection is not in a transaction`)
    // An untimed wait first tries the one-statement lock, which says (NULL) when the caller's
    // lock_timeout or statement_timeout would cut it short; only then are they overridden.
    let unlimitedFirst = !noWait && options.timeoutMs === undefined
    if (status !== 'unknown') {
      if (noWait) {
        // Never waits, so it needs no savepoint; an abort after it was sent cannot undo an xact lock.
        const statement = xactTryLock(key, mode)
        try {
          return (await conn.query(statement.text, statement.params))[0]?.acquired === true
        } catch (error) {
          throw this.#classify(error, key, undefined)
        }
      }
      if (options.timeoutMs === undefined && options.signal === undefined) {
        // Only close() can abort this wait. There is no savepoint to roll back to, so its cancel
        // aborts the caller's transaction (which close() must not leave waiting on the server).
        let row: Row | undefined
        try {
          row = (await this.#waitOnServer(transactionWaitable(conn), xactLockIfUnlimited(key, mode), op))[0]
        } catch (error) {
          throw op.aborted ? op.reason : this.#classify(error, key, undefined)
        }
        if (row?.acquired === true) return true
        // NULL: the caller's lock_timeout or statement_timeout is set; override them under a savepoint.
        unlimitedFirst = false
      }
    }
    // The state is unknown: a try, or an untimed wait only close() can abort, probes the transaction,
    // locks and releases the savepoint in one round trip where the adapter runs scripts.
    else if (
      conn.script !== undefined &&
      (noWait || (options.timeoutMs === undefined && options.signal === undefined))
    ) {
      const acquired = await this.#lockInOneTrip(conn, conn.script.bind(conn), key, mode, noWait, op)
      if (acquired !== undefined) return acquired
      // NULL: the caller's lock_timeout or statement_timeout is set; override them under a savepoint.
      unlimitedFirst = false
    }
    return this.#lockUnderSavepoint(conn, key, mode, noWait, op, options.timeoutMs, unlimitedFirst)
  }

  /**
   * Where the adapter cannot tell whether `conn` is inside a transaction: the SAVEPOINT that probes it,
   * the lock, and the savepoint's release as one script. Outside a transaction block the server refuses
   * the SAVEPOINT and runs nothing else. Resolves with whether a try got the lock, true for a wait that
   * got it, and undefined for a wait that found the caller's lock_timeout or statement_timeout set
   * (nothing locked, the savepoint released).
   */
  async #lockInOneTrip(
    conn: TransactionConnection,
    script: (text: string) => Promise<readonly Row[]>,
    key: LockKey,
    mode: LockMode,
    noWait: boolean,
    op: Operation,
  ): Promise<boolean | undefined> {
    // The script has no parameters: the keys are inlined.
    const whole: Statement = {
      text: underSavepointScript(noWait ? xactTryLock(key, mode) : xactLockIfUnlimited(key, mode)),
      params: [],
    }
    let row: Row | undefined
    try {
      // Like the one-statement lock where the state is known, a grant is kept even if close() came.
      row = (
        noWait
          ? await script(whole.text)
          : await this.#waitOnServer(
              { ...transactionWaitable(conn), query: (statement) => script(statement.text) },
              whole,
              op,
            )
      )[0]
    } catch (error) {
      const state = this.#adapter.sqlState(error)
      if (state === NO_ACTIVE_SQL_TRANSACTION) {
        throw new NotInTransactionError(`the ${this.#adapter.name} connection is not in a transaction`, {
          cause: error,
        })
      }
      // The lock failed after the savepoint was made (a deadlock, close()'s cancel): roll back to it,
      // so that the caller's transaction stays usable. A transaction that had failed before refused
      // the SAVEPOINT itself (25P02), and has no savepoint of ours to go back to.
      if (state !== IN_FAILED_SQL_TRANSACTION) {
        try {
          await script(`${ROLLBACK_TO_SAVEPOINT.text}; ${RELEASE_SAVEPOINT.text}`)
        } catch {
          // Beyond mending (its connection died, or the server aborted it); the error below says why.
        }
      }
      throw op.aborted ? op.reason : this.#classify(error, key, undefined)
    }
    if (noWait) return row?.acquired === true
    return row?.acquired === true ? true : undefined
  }

  /**
   * A wait inside the caller's transaction, under a savepoint so that a timeout, cancel or deadlock
   * leaves the transaction usable, with `lock_timeout` / `statement_timeout` set for the wait and
   * put back by hand afterwards (RELEASE SAVEPOINT keeps setting changes). With `unlimitedFirst`
   * (an untimed wait), the one-statement lock is tried first: the settings are only touched when it
   * finds the caller's lock_timeout or statement_timeout set (SAVEPOINT, lock, RELEASE in the common
   * case rather than five statements).
   */
  async #lockUnderSavepoint(
    conn: TransactionConnection,
    key: LockKey,
    mode: LockMode,
    noWait: boolean,
    op: Operation,
    timeoutMs: number | undefined,
    unlimitedFirst: boolean,
  ): Promise<boolean> {
    const waitable = transactionWaitable(conn)
    const run = waitable.query
    try {
      await run(SAVEPOINT)
    } catch (error) {
      if (this.#adapter.sqlState(error) === NO_ACTIVE_SQL_TRANSACTION) {
        throw new NotInTransactionError(`the ${this.#adapter.name} connection is not in a transaction`, {
          cause: error,
        })
      }
      throw error
    }
    let acquired: boolean
    try {
      if (op.aborted) throw op.reason
      let rows = unlimitedFirst ? await this.#waitOnServer(waitable, xactLockIfUnlimited(key, mode), op) : []
      let previous: Row | undefined
      // Not tried (a timed wait, or a try), or NULL (the caller's lock_timeout or statement_timeout is
      // set): a wait sets both for itself and puts them back after it; a try needs neither.
      if (rows[0]?.acquired !== true) {
        if (!noWait) {
          const remaining = op.remainingMs()
          previous = (
            await run(setLocalTimeouts(remaining === undefined ? '0' : lockTimeoutSetting(remaining), '0'))
          )[0]
        }
        if (op.aborted) throw op.reason
        rows = await this.#waitOnServer(waitable, noWait ? xactTryLock(key, mode) : xactLock(key, mode), op)
      }
      // Granted as an abort landed: rolling back to the savepoint below frees the lock again.
      if (op.aborted) throw op.reason
      acquired = rows[0]?.acquired === true
      if (previous !== undefined) {
        await run(restoreLocalTimeouts(String(previous.locktimeout), String(previous.statementtimeout)))
      }
    } catch (error) {
      try {
        await run(ROLLBACK_TO_SAVEPOINT)
        await run(RELEASE_SAVEPOINT)
      } catch {
        // The transaction is beyond mending (its connection died, or it was aborted by the server);
        // the error below says why, and the caller must roll back anyway.
      }
      throw op.aborted ? op.reason : this.#classify(error, key, timeoutMs)
    }
    await run(RELEASE_SAVEPOINT)
    return acquired
  }
}

/** The caller's transaction as something to wait on: cancellable where the adapter can, never discarded. */
function transactionWaitable(conn: TransactionConnection): Waitable {
  return {
    query: (statement) => conn.query(statement.text, statement.params),
    cancel: () =>
      conn.cancel === undefined ? Promise.reject(new Error('pglock: no cancel')) : conn.cancel(),
    // The caller's transaction cannot be discarded: the wait then ends on its own terms.
    abandon: () => false,
  }
}

function checkCallback(fn: unknown): void {
  if (typeof fn !== 'function')
    throw new InvalidOptionsError('fn', 'expected a function to run while holding the lock')
}

/** Runs `fn` while holding `handle`, always releases, and reports a loss during `fn`. */
async function runHolding<T>(handle: LockHandleImpl, fn: (lock: LockHandle) => T | Promise<T>): Promise<T> {
  let value: T
  try {
    value = await fn(handle)
  } catch (error) {
    await handle.release()
    throw error
  }
  await handle.release()
  // The work was not protected: say so even though fn resolved.
  if (handle.lost) throw handle.signal.reason
  return value
}
