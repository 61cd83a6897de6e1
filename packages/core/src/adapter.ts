/**
 * The adapter contract: the only thing a driver adapter implements.
 *
 * The core decides everything (keys, SQL, timeouts, leak checks, bookkeeping, lost-lock signalling,
 * error classification). An adapter only moves bytes: it lends the core a dedicated server session
 * and takes it back, wraps a caller's transaction object, runs one parameterised statement, reports
 * that a session died, and (optionally) cancels the statement in flight. It writes no lock SQL and
 * swallows no errors.
 *
 * Each member below says what the core promises the adapter and what the adapter must guarantee.
 * The conformance suite (`@pglock/conformance`) checks the guarantees against a real server.
 */

/** One row of a result, keyed by the (always aliased) column names the core wrote. */
export type Row = Readonly<Record<string, unknown>>

/** The ability every connection shares: running one statement. */
export interface LockConnection {
  /**
   * Runs one SQL statement with positional parameters `$1..$n` and resolves with its rows.
   *
   * Core promises:
   * - `text` is a single statement written by the core; parameters are strings, cast in the SQL.
   * - It never calls `query` again on the same connection before the previous call settled.
   * - It never calls `query` on a session it was told is lost, nor after `release`.
   *
   * Adapter guarantees:
   * - Rows are plain objects keyed by column alias; booleans are JS booleans, int4 values are numbers
   *   (the driver defaults do this for every supported driver).
   * - Failures reject with the driver's own error, untouched (the core reads its SQLSTATE through
   *   {@link Adapter.sqlState}); it never retries a statement and never runs it on another session.
   * - Once the session is known to be dead, it rejects at once without touching the driver (some
   *   drivers would otherwise reconnect silently to a new session that holds none of the locks).
   */
  query(text: string, params: readonly string[]): Promise<readonly Row[]>

  /**
   * Optional. Asks the server to cancel the statement now running on this connection (a protocol
   * CancelRequest, or `pg_cancel_backend` from elsewhere), so that the pending `query` rejects with
   * SQLSTATE 57014.
   *
   * Core promises: it calls `cancel` only while one of its `query` calls is pending on this
   * connection, never concurrently with itself, and it waits for `cancel` to settle before it sends
   * the next statement. It may call `cancel` again (backing off) while that `query` stays pending: a
   * cancel that reaches the server before the statement does is discarded by the server, and an adapter
   * may also resolve without sending anything when its statement is not running yet.
   *
   * Adapter guarantees: it resolves once the request has been handed to the server (so a cancel
   * cannot land on a later statement that the core sends afterwards); it rejects when the request
   * could not be sent or cannot be sent safely. The core then stops cancelling: it discards a lent
   * session (and the acquire rejects at once), while a wait inside the caller's transaction goes on
   * until it ends by itself.
   *
   * Without `cancel`, an abort or `close()` during a server-side wait discards the connection instead.
   */
  cancel?(): Promise<void>
}

/** How an adapter describes the transaction state of a caller's transaction object. */
export type TransactionStatus =
  /** Not inside a transaction block: transaction-scoped locks must be refused. */
  | 'idle'
  /** Inside a transaction block that can run statements. */
  | 'active'
  /** Inside a transaction block that failed and must be rolled back. */
  | 'failed'
  /** The driver cannot tell; the core then probes with a SAVEPOINT before it locks. */
  | 'unknown'

/** A caller's transaction object seen as a connection; the core never releases or destroys it. */
export interface TransactionConnection extends LockConnection {
  /**
   * The state of the caller's connection right now, read locally without a round trip.
   *
   * Adapter guarantees: it answers 'idle' only when the connection is certainly outside a
   * transaction block (or is not a single connection at all, such as a pool), and 'unknown' when it
   * cannot tell. A wrong 'active' would let a transaction-scoped lock be taken in autocommit and be
   * released at once (a silent no-op), so when in doubt it answers 'unknown'.
   */
  transactionStatus(): TransactionStatus

  /**
   * Optional. Runs `text`, a few statements separated by `;` and written by the core without
   * parameters (keys inlined as integers the core formatted), in one round trip with the simple query
   * protocol, and resolves with the rows of the one statement among them that returns rows. The server
   * runs them as one message and stops at the first that fails.
   *
   * Core promises: as for `query` (one statement or script at a time per connection); it may call
   * `cancel` while a script is pending.
   *
   * Adapter guarantees: as for `query`; it rejects with the error of the statement that failed. The
   * core uses it where `transactionStatus()` answers 'unknown', to send the savepoint that probes the
   * transaction, the lock and the savepoint's release in one round trip instead of three.
   */
  script?(text: string): Promise<readonly Row[]>
}

/** A server session lent to the core for session-scoped locks. */
export interface SessionConnection extends LockConnection {
  /**
   * Hands the session back. Called exactly once per connection the adapter lent, including after
   * the session was reported lost.
   *
   * Core promises: `destroy` is false only when the session provably holds no lock and has no
   * statement in flight; in every other case (unknown state, failed unlock, dead session) it is true.
   *
   * Adapter guarantees: with `destroy: true` the server session ends (which frees every session lock
   * it held) and the connection never returns to the pool (see {@link destroyable} for drivers that
   * cannot do that). It never rejects: a failure to hand back is the adapter's to absorb.
   */
  release(options: { readonly destroy: boolean }): Promise<void>

  /**
   * Set to false by adapters whose driver cannot end a lent session (it always goes back to the pool).
   * The core then cleans such a session itself before handing it back: it runs `ROLLBACK` and
   * `SELECT pg_advisory_unlock_all()` on it, and calls `release({ destroy: false })` only when both
   * succeeded. `release({ destroy: true })` then means "this session could not be cleaned": the adapter
   * must do what its driver allows to keep it out of the pool (with @databases/pg, whose pool recycles
   * a connection even after a failed task callback, that means ending the backend itself with
   * `pg_terminate_backend(pg_backend_pid())`). Default: true.
   */
  readonly destroyable?: boolean
}

/** What the core passes to {@link Adapter.connect}. */
export interface ConnectOptions {
  /**
   * Called by the adapter, at most once and never after `release`, when the driver reports that the
   * session is gone (socket closed, backend terminated, fatal error). The adapter must also stop
   * every later `query` from reaching the driver. Listening for the driver's error event for the whole
   * time the connection is lent is mandatory where the driver would otherwise crash the process.
   */
  readonly onLost: (cause: unknown) => void
}

/**
 * The contract between `@pglock/core` and a driver adapter.
 *
 * `Tx` is the driver's own transaction object type, accepted by `locker.transaction(tx)`.
 */
export interface Adapter<Tx = unknown> {
  /** A short name used in error messages, such as `'pg'`. */
  readonly name: string

  /**
   * Lends a dedicated server session for session-scoped locks, waiting for the pool if it must.
   *
   * Core promises: it calls `release` exactly once on every connection it receives, also when the
   * connection arrives after the caller stopped waiting (timeout, abort, `close()`), in which case it
   * releases it at once without querying it.
   *
   * Adapter guarantees: the connection is a single server session for as long as it is lent (a
   * statement never runs on another backend), it is in autocommit (no open transaction), and it is
   * never lent twice at once. A connection that fails to open rejects with the driver's error.
   */
  connect(options: ConnectOptions): Promise<SessionConnection>

  /**
   * Wraps the caller's transaction object. Called once per transaction-scoped acquire; the core
   * serialises its statements per transaction object and never releases it.
   *
   * Adapter guarantees: it does not run anything on the object here; it throws a `TypeError` when
   * `tx` is not something of this driver at all.
   */
  transaction(tx: Tx): TransactionConnection

  /**
   * Optional. Whether anybody waits for a connection of the pool that `connect` lends from: the app's
   * own queries, or this adapter's other `connect` calls. A connection that has just come to hold
   * nothing is kept until the end of the current turn of the event loop, for an acquire that follows
   * at once (a release, then the next acquire): it saves a pool checkout and return per lock. When
   * somebody waits for the pool, the core hands it back at once instead, so that they are served in
   * turn. Without this method the core always hands it back at once.
   */
  poolHasWaiters?(): boolean

  /** The SQLSTATE of a driver error, wherever the driver keeps it; undefined when there is none. */
  sqlState(error: unknown): string | undefined

  /**
   * Optional. Releases what the adapter itself owns (connections it opened, timers), for adapters that
   * manage lock connections of their own. Called once by `locker.close()`, after every session was
   * handed back; an adapter instance serves one locker. It never closes the caller's own pool or client.
   */
  close?(): Promise<void>

  /**
   * Whether the error means the session is gone (rather than the statement failed): the driver's own
   * connection-closed errors, which often carry no SQLSTATE. The core already treats SQLSTATE classes
   * 08 (connection exception) and 57P01–57P05 / 25P03 / 25P04 (session terminated) as lost.
   */
  isConnectionError(error: unknown): boolean
}
