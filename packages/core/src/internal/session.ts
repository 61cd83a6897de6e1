import type { Adapter, Row, SessionConnection } from '../adapter.js'
import { LockLostError, SessionMovedError } from '../errors.js'
import type { LockKey } from '../keys.js'
import { type HandleOwner, LockHandleImpl } from '../lock-handle.js'
import { KEEPALIVE, type LockMode, ROLLBACK_ANY, type Statement, sessionUnlock, UNLOCK_ALL } from '../sql.js'
import { isSessionGone } from './classify.js'
import type { KeepAlive, KeptAlive } from './keep-alive.js'
import type { Registry, RegistryEntry } from './registry.js'
import { type SilenceOwner, type SilenceWatch, WatchedStatement } from './silence-watch.js'
import { SmallMap } from './small-map.js'

/** A settled promise, the initial value of the promises a session keeps. */
const SETTLED: Promise<undefined> = Promise.resolve(undefined)

type State = 'connecting' | 'open' | 'cleaning' | 'lost' | 'released'

/** What the locker wants to hear from its sessions. */
export interface SessionHooks {
  /** The session holds nothing, waits for nothing and is promised to nobody. */
  onIdle(session: Session): void
  /** The locker's sessions: a session is in it from its creation until its connection goes back. */
  readonly sessions: Registry<Session>
  /** The locker's keep-alive for sessions that hold locks (`keepAliveMs`), if any. */
  readonly keepAlive: KeepAlive | undefined
  /** How long the server may leave a statement unanswered before the session is given up on. */
  readonly abandonAfterMs: number
  /** Gives up on sessions that leave a statement unanswered for `abandonAfterMs`. */
  readonly silence: SilenceWatch
  /**
   * An exclusive lock on `id` was released on the server; returns what `release()` should wait for
   * before it resolves, if anything (see HandOffs).
   */
  afterRelease(id: string): Promise<void> | undefined
}

/**
 * One server session lent by the adapter, and what this process holds on it (PostgreSQL cannot show
 * the re-entrancy count, so the core keeps the books: DESIGN.md 6).
 *
 * Many session locks share one session (optimistic multiplexing): an acquire first tries, without
 * waiting, on a session that already holds other locks, and only a wait that must block gets a
 * session to itself ({@link claimForWait}).
 *
 * Invariants: the connection is released exactly once; never with `destroy: false` unless it provably
 * holds nothing; never queried after it was reported lost or released; it never holds (or tries) the
 * same key for two handles (PostgreSQL would grant the second re-entrantly); a blocking wait only
 * runs on it while it holds nothing else; it goes back as soon as it holds nothing and nobody is
 * about to use it (or, after an unlock whose release() is held back for a hand-off, once that resolves).
 */
export class Session implements HandleOwner, SilenceOwner, KeptAlive {
  readonly #adapter: Adapter<never>
  /** The locks held here, each with its key's id (`keyId`). */
  readonly #holds = new SmallMap<LockHandleImpl, string>()
  /** Keys held here or promised to an acquire in progress on this session (see {@link reserve}). */
  readonly #keys = new SmallMap<string, true>()
  readonly #hooks: SessionHooks
  /**
   * A blocking wait runs (or is about to run) here, or the unlock of the only lock held here: no
   * other acquire may use this session, and no keep-alive runs.
   */
  #exclusive = false
  /**
   * Resolves when the adapter's connection arrived: with undefined when the session is open, with
   * `{ error }` when it could not be had or was lost on the way. Never rejects, so that nobody has to
   * attach a handler just in case.
   */
  ready: Promise<{ readonly error: unknown } | undefined> = SETTLED
  #conn: SessionConnection | undefined
  #state: State = 'connecting'
  #lostCause: unknown
  #release: Promise<void> | undefined
  /** The backend that took the first lock held; later statements must run on it while any is held. */
  #pid: number | undefined
  /** The statement in flight, settled or not (the core never runs two at once on a session). */
  #inFlight: Promise<unknown> = SETTLED
  /** Statements sent and not yet settled. */
  #pending = 0
  /** Statements answered so far (see {@link answers}). */
  #answers = 0
  #abandoned = false
  /** Resolves once the session is given up on (see {@link discard}); made on first need. */
  #givenUp: Promise<void> | undefined
  #onGivenUp: (() => void) | undefined
  /** The last unlock statement built here: a loop on one key (its session kept as a spare) reuses it. */
  #lastUnlock:
    | {
        readonly id: string
        readonly shared: boolean
        readonly pid: number | undefined
        readonly statement: Statement
      }
    | undefined

  readonly #registration: RegistryEntry<Session>

  constructor(adapter: Adapter<never>, hooks: SessionHooks) {
    this.#adapter = adapter
    this.#hooks = hooks
    this.#registration = hooks.sessions.add(this)
  }

  /** Called by the adapter (through `onLost`) when the server session is gone. */
  readonly lose = (cause: unknown): void => {
    if (this.#state === 'lost' || this.#state === 'released') return
    const wasConnecting = this.#state === 'connecting'
    const wasCleaning = this.#state === 'cleaning'
    this.#state = 'lost'
    this.#lostCause = cause
    for (const handle of this.#holds.keys()) {
      handle.markLost(new LockLostError(handle.key, 'its connection ended', { cause }))
    }
    this.#holds.clear()
    this.#keys.clear()
    // Before attach() there is nothing to hand back yet (attach() will); while cleaning, dispose() is
    // already under way and sees the loss.
    if (!wasConnecting && !wasCleaning) void this.dispose(true)
  }

  /** Asks the adapter for the connection; `ready` settles when it arrives. Called once. */
  connect(): void {
    let connecting: Promise<SessionConnection>
    try {
      connecting = this.#adapter.connect({ onLost: this.lose })
    } catch (error) {
      connecting = Promise.reject(error)
    }
    this.ready = connecting.then(
      (conn) => {
        this.#attach(conn)
        if (this.#state === 'open') return undefined
        return { error: this.#lostCause ?? new Error('pglock: the session was lost') }
      },
      (error: unknown) => {
        this.#state = 'released'
        this.#hooks.sessions.delete(this.#registration)
        return { error }
      },
    )
  }

  /** Takes the connection the adapter lent. */
  #attach(conn: SessionConnection): void {
    this.#conn = conn
    if (this.#state !== 'connecting') {
      void this.dispose(true)
      return
    }
    this.#state = 'open'
    // Every acquire that wanted it gave up while it was on its way: never queried, it goes back clean.
    this.#releaseIfIdle()
  }

  /**
   * Whether an acquire of `id` (a `keyId`) may try here without waiting: the session is (or is
   * about to be) open, no blocking wait has it, and it neither holds nor tries that key already.
   */
  canTry(id: string): boolean {
    return (this.#state === 'open' || this.#state === 'connecting') && !this.#exclusive && !this.#keys.has(id)
  }

  /** Promises the session to an acquire of `id`; undone by {@link settle}, or kept by a hold. */
  reserve(id: string): void {
    this.#keys.set(id, true)
  }

  /**
   * Gives the session to a blocking wait for `id`, if that acquire is the only thing on it (it holds
   * nothing and nobody else is trying here). Until the wait settles, no other acquire uses it.
   */
  claimForWait(id: string): boolean {
    if (this.#state !== 'open' && this.#state !== 'connecting') return false
    if (this.#exclusive || this.#holds.size > 0) return false
    if (this.#keys.size !== 1 || !this.#keys.has(id)) return false
    this.#exclusive = true
    return true
  }

  /** The acquire of `id` is over without a hold here; hands the session back if nothing else needs it. */
  settle(id: string): void {
    this.#keys.delete(id)
    this.#exclusive = false
    this.#releaseIfIdle()
  }

  #releaseIfIdle(): void {
    if (this.isIdle) {
      // Nothing is held here, so nothing ties the session to a backend: the locker may keep it for the
      // next acquire, whose first lock may be taken on another one (a pooler in transaction mode).
      this.#pid = undefined
      this.#hooks.onIdle(this)
    }
  }

  /** The backend this session's locks live on, once known. */
  get pid(): number | undefined {
    return this.#pid
  }

  /** Open, and holding, trying and waiting for nothing. */
  get isIdle(): boolean {
    return this.#state === 'open' && this.#keys.size === 0 && this.#holds.size === 0 && !this.#exclusive
  }

  get isOpen(): boolean {
    return this.#state === 'open'
  }

  get isLost(): boolean {
    return this.#state === 'lost'
  }

  get canCancel(): boolean {
    return this.#conn?.cancel !== undefined
  }

  /**
   * Lost (its connection ended, or the silence watch gave it up), for SilenceWatch. Not merely
   * abandoned after a wait (see {@link abandon}): @databases then still cleans it, if the server answers.
   */
  get gone(): boolean {
    return this.#state === 'lost'
  }

  /** Statements answered here (owned ones excepted: see {@link query}), for SilenceWatch. */
  get answers(): number {
    return this.#answers
  }

  get holdCount(): number {
    return this.#holds.size
  }

  /** Runs a statement; rejects without touching the driver once the session is lost or released. */
  query(statement: Statement): Promise<readonly Row[]> {
    if (this.#state !== 'open' || this.#conn === undefined) {
      return Promise.reject(
        this.#state === 'lost'
          ? (this.#lostCause ?? new Error('pglock: the session was lost'))
          : new Error('pglock: internal error: query on a session that is not open'),
      )
    }
    // Statements go one at a time, in order (a keep-alive or another acquire's may be on the wire).
    // With nothing in flight it is sent at once: a release is on a hand-off's critical path.
    let running: Promise<readonly Row[]>
    if (this.#pending === 0) {
      // One caller owns the session (a blocking wait, or the unlock of its only lock) and sends its
      // statements one after another, each after the previous one settled: nothing to order, so no
      // bookkeeping either (a reaction per statement: in a process running only a contended loop on
      // postgres.js, it cost about 7 % of the hand-offs per second). Not for sessions the core must
      // clean before handing them back, which waits for the statement in flight.
      const owned = this.#exclusive && this.#conn.destroyable !== false
      try {
        running = this.#conn.query(statement.text, statement.params)
      } catch (error) {
        running = Promise.reject(error)
      }
      if (owned) return running
    } else {
      running = this.#inFlight.then(() => {
        if (this.#state !== 'open' || this.#conn === undefined)
          throw this.#lostCause ?? new Error('pglock: session closed')
        return this.#conn.query(statement.text, statement.params)
      })
    }
    this.#pending++
    this.#inFlight = running.then(this.#answered, this.#answered)
    return running
  }

  readonly #answered = (): void => {
    this.#pending--
    this.#answers++
  }

  /**
   * Runs a statement the server should answer at once (anything but a blocking wait), watched: a
   * server that leaves it unanswered for `abandonAfterMs` has the session given up on (see
   * SilenceWatch), and the statement's promise then rejects. `what` names it in that error. The
   * caller passes it to {@link unwatch} once it settled.
   */
  watch(statement: Statement, what: string): WatchedStatement {
    return this.#watched(this.query(statement), what)
  }

  #watched(running: Promise<readonly Row[]>, what: string): WatchedStatement {
    const watched = new WatchedStatement(running, this, what)
    this.#hooks.silence.watch(watched)
    return watched
  }

  /** The statement {@link watch} ran has settled. */
  unwatch(watched: WatchedStatement): void {
    this.#hooks.silence.unwatch(watched)
  }

  /** Runs a statement the server should answer at once, watched (see {@link watch}) until it settles. */
  ask(statement: Statement, what: string): Promise<readonly Row[]> {
    return this.#watchedUntilSettled(this.query(statement), what)
  }

  async #watchedUntilSettled(running: Promise<readonly Row[]>, what: string): Promise<readonly Row[]> {
    const watched = this.#watched(running, what)
    try {
      return await watched.promise
    } finally {
      this.unwatch(watched)
    }
  }

  /**
   * One keep-alive tick (see KeepAlive): skipped while a statement runs (it is watched itself);
   * notices a dead or moved session, and, through the watch, a server that leaves the keep-alive
   * unanswered for `abandonAfterMs` (a network partition, a stopped backend). Returns whether the
   * session holds locks.
   */
  keepAliveTick(): boolean {
    if (this.#holds.size === 0) return false
    if (this.#state !== 'open' || this.#exclusive || this.#pending > 0) return true
    this.ask(KEEPALIVE, 'a keep-alive').then(
      (rows) => {
        const pid = rows[0]?.pid
        if (this.#pid !== undefined && typeof pid === 'number' && pid !== this.#pid) {
          this.lose(new SessionMovedError(`backend ${this.#pid} at acquire, ${pid} at keep-alive`))
        }
      },
      (error: unknown) => {
        // A failure other than the session's end is left for the next tick (or the unlock) to meet.
        if (isSessionGone(this.#adapter, error)) this.lose(error)
      },
    )
    return true
  }

  /**
   * Gives the session up: a cancel could not be delivered, or the server stays silent past a wait's
   * end (see ServerWait). Ending (or cleaning) the session is the only way to stop its statement, so
   * the caller need not wait for it, nor for the connection's end (which a silent server may delay by
   * as long as it stays silent).
   */
  abandon(): boolean {
    this.#givenUpOn()
    void this.dispose(true)
    return true
  }

  #givenUpOn(): void {
    this.#abandoned = true
    this.#onGivenUp?.()
  }

  /** Given up on ({@link abandon}): destroyed in the background, nobody waits for it. */
  get abandoned(): boolean {
    return this.#abandoned
  }

  /**
   * Destroys the session. Resolves once it is handed back, or at once when it was given up on: its
   * end may wait for the silent server.
   */
  discard(): Promise<void> {
    const disposed = this.dispose(true)
    if (this.#abandoned) return SETTLED
    // Given up on while its end is under way (@databases: its clean-up went unanswered): not waited for.
    this.#givenUp ??= new Promise((resolve) => {
      this.#onGivenUp = resolve
    })
    return Promise.race([disposed, this.#givenUp])
  }

  /** Cancels the statement in flight; rejects when the adapter cannot. */
  cancel(): Promise<void> {
    const conn = this.#conn
    if (conn?.cancel === undefined || this.#state !== 'open') {
      return Promise.reject(new Error('pglock: this connection cannot cancel a statement'))
    }
    return conn.cancel()
  }

  /** Records a lock taken on this session (its key, `id`, was reserved) and returns its handle. */
  addHold(key: LockKey, id: string, mode: LockMode, pid: unknown): LockHandleImpl {
    if (this.#pid === undefined && typeof pid === 'number') this.#pid = pid
    const handle = new LockHandleImpl(key, mode === 'shared', this)
    this.#holds.set(handle, id)
    this.#keys.set(id, true)
    this.#exclusive = false
    // The session may have died (or been handed back) between the lock's grant and this bookkeeping.
    if (this.#state !== 'open') {
      this.#holds.delete(handle)
      handle.markLost(new LockLostError(key, 'its connection ended', { cause: this.#lostCause }))
      return handle
    }
    this.#hooks.keepAlive?.holding()
    return handle
  }

  /** The statement that unlocks, guarded so that it only runs on the backend that took the lock. */
  async unlock(handle: LockHandleImpl): Promise<void> {
    const id = this.#holds.get(handle)
    if (id === undefined) return
    const mode: LockMode = handle.shared ? 'shared' : 'exclusive'
    // The unlock of the only lock here, with nothing else on the way, owns the session until it
    // settles (acquires try elsewhere meanwhile): the session goes back right after it.
    const sole = this.#holds.size === 1 && this.#keys.size === 1 && this.#pending === 0 && !this.#exclusive
    if (sole) this.#exclusive = true
    // Watched: a server that leaves it unanswered for abandonAfterMs has the session given up on.
    const unlock = this.watch(this.#unlockStatement(handle, id, mode), 'the unlock')
    let rows: readonly Row[]
    try {
      rows = await unlock.promise
    } catch (error) {
      this.unwatch(unlock)
      if (sole) this.#exclusive = false
      this.#holds.delete(handle)
      if (this.#state === 'lost' || isSessionGone(this.#adapter, error)) {
        // The session died before the unlock (or the server stopped answering): the lock may have
        // gone at any moment before it.
        handle.markLost(new LockLostError(handle.key, 'its connection ended', { cause: error }))
      } else {
        // Ending the session frees the lock on the server, which is what release() promises.
        handle.markReleased()
      }
      await this.discard()
      return
    }
    this.unwatch(unlock)
    if (sole) this.#exclusive = false
    this.#holds.delete(handle)
    const row = rows[0]
    if (row?.released === true) {
      handle.markReleased()
      this.#keys.delete(id)
      // Idle (a spare for the releaser's next acquire, or back to the pool) once release() resolves:
      // a release held back for a hand-off in this process (HandOffs) would otherwise find it gone.
      const handOff = mode === 'exclusive' ? this.#hooks.afterRelease(id) : undefined
      if (handOff !== undefined) await handOff
      this.#releaseIfIdle()
      return
    }
    if (row?.released === null || row?.released === undefined) {
      handle.markLost(
        new LockLostError(handle.key, 'the server session changed under it', {
          cause: new SessionMovedError(`backend ${this.#pid} at acquire, another one at release`),
        }),
      )
    } else {
      handle.markLost(
        new LockLostError(
          handle.key,
          'the server no longer held it at release (pg_advisory_unlock returned false)',
        ),
      )
    }
    await this.discard()
  }

  #unlockStatement(handle: LockHandleImpl, id: string, mode: LockMode): Statement {
    const last = this.#lastUnlock
    if (last !== undefined && last.id === id && last.shared === handle.shared && last.pid === this.#pid) {
      return last.statement
    }
    const statement = sessionUnlock(handle.key, mode, this.#pid)
    this.#lastUnlock = { id, shared: handle.shared, pid: this.#pid, statement }
    return statement
  }

  /**
   * A statement here (`what`) has gone unanswered, and the session has answered nothing, for
   * `abandonAfterMs` (a network partition, a stopped backend): the session is given up on, and every
   * lock on it reported lost (nothing can vouch for them; ending the connection frees them once the
   * server notices).
   */
  unanswered(what: string): Error {
    // Already lost (or given up on with an earlier statement): every statement there ends with that cause.
    if (this.#state === 'lost' && this.#lostCause instanceof Error) return this.#lostCause
    const error = new Error(
      `pglock: the server did not answer ${what} within ${this.#hooks.abandonAfterMs} ms`,
    )
    this.#givenUpOn()
    this.lose(error)
    return error
  }

  /** Takes back every lock held on this session (locker close): holders see them lost, then they are unlocked. */
  async revokeAll(): Promise<void> {
    await Promise.all(
      this.#holds
        .keys()
        .map((handle) =>
          handle.revoke(new LockLostError(handle.key, 'locker.close() released it while it was held')),
        ),
    )
  }

  /** Hands the connection back to the adapter, once; `destroy` unless it provably holds nothing. */
  dispose(destroy: boolean): Promise<void> {
    if (this.#release !== undefined) return this.#release
    const conn = this.#conn
    if (conn === undefined) return Promise.resolve()
    const wasOpen = this.#state === 'open'
    const mustDestroy = destroy || this.#holds.size > 0 || !wasOpen
    for (const handle of this.#holds.keys()) {
      handle.markLost(new LockLostError(handle.key, 'its connection was discarded'))
    }
    this.#holds.clear()
    this.#keys.clear()
    this.#hooks.sessions.delete(this.#registration)
    const clean = mustDestroy && wasOpen && conn.destroyable === false
    if (wasOpen) this.#state = clean ? 'cleaning' : 'released'
    this.#release = (async () => {
      // The driver cannot end this session, so it returns to the pool: make it hold nothing first.
      const cleanRelease = clean ? await this.#cleanForReuse(conn) : !mustDestroy
      if (this.#state === 'cleaning') this.#state = 'released'
      try {
        await conn.release({ destroy: !cleanRelease })
      } catch {
        // The contract says release never rejects; if an adapter breaks that, there is nobody to tell
        // and nothing left to clean: the session is out of our hands either way.
      }
    })()
    return this.#release
  }

  /** A clean-up statement, watched as {@link ask} does (`query` refuses a session no longer open). */
  #askWhileCleaning(conn: SessionConnection, statement: Statement): Promise<readonly Row[]> {
    return this.#watchedUntilSettled(conn.query(statement.text, statement.params), 'the clean-up')
  }

  async #cleanForReuse(conn: SessionConnection): Promise<boolean> {
    try {
      // A statement still in flight (a wait that could not be cancelled) must end first.
      await this.#inFlight
      if (this.#state !== 'cleaning') return false
      await this.#askWhileCleaning(conn, ROLLBACK_ANY)
      const rows = await this.#askWhileCleaning(conn, UNLOCK_ALL)
      return rows[0]?.unlocked === true && this.#state === 'cleaning'
    } catch {
      return false
    }
  }
}
