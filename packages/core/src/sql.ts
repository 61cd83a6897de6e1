/**
 * Every SQL statement pglock sends. Nothing else in the project writes lock SQL.
 *
 * Rules (DESIGN.md 9): keys travel as parameters with explicit casts, every result column is aliased
 * (in lower case without underscores, so that drivers' camelCase / snake_case column transforms leave
 * the names alone), and no result relies on int8 (drivers return it as strings or lossy numbers): results are booleans,
 * text settings and `pg_backend_pid()` (int4).
 */
import { keyParams, type LockKey, pgLocksIdentity } from './keys.js'

/** A statement and its positional parameters. */
export interface Statement {
  readonly text: string
  readonly params: readonly string[]
}

/** The lock mode in SQL function names and in `pg_locks.mode`. */
export type LockMode = 'exclusive' | 'shared'

/**
 * A statement text depends only on the key's kind and the lock mode, so each is built once (per kind
 * and mode) and reused: a lock cycle then builds no SQL, and drivers find their prepared statement
 * by a string they have already hashed. `build` gets `call(base)`, which writes the call of `base` (or
 * of `base_shared`) on the key's parameters, and `n`, the number of key parameters.
 */
function texts(
  build: (call: (base: string) => string, n: number) => string,
): (key: LockKey, mode: LockMode) => string {
  const cache: (string | undefined)[] = [undefined, undefined, undefined, undefined]
  return (key, mode) => {
    const index = (key.kind === 'bigint' ? 0 : 2) + (mode === 'shared' ? 1 : 0)
    let text = cache[index]
    if (text === undefined) {
      const args = key.kind === 'bigint' ? '$1::bigint' : '$1::int4, $2::int4'
      const call = (base: string) => `${mode === 'shared' ? `${base}_shared` : base}(${args})`
      text = build(call, key.kind === 'bigint' ? 1 : 2)
      cache[index] = text
    }
    return text
  }
}

/**
 * Milliseconds of slack between a caller's `statement_timeout` and our lock wait: the statement timer
 * starts when the statement does, a moment before the lock wait (and its `lock_timeout`) begins.
 */
const STATEMENT_TIMEOUT_SLACK_MS = 250

/** `lock_timeout` text for a wait of `ms` milliseconds (rounded up: never shorter than asked). */
export function lockTimeoutSetting(ms: number): string {
  return `${Math.max(1, Math.ceil(ms))}ms`
}

/**
 * Session lock without waiting. Returns `acquired` (boolean) and `pid`.
 */
export function sessionTryLock(key: LockKey, mode: LockMode): Statement {
  return { text: sessionTryLockText(key, mode), params: keyParams(key) }
}
const sessionTryLockText = texts(
  (call) => `SELECT ${call('pg_try_advisory_lock')} AS acquired, pg_backend_pid() AS pid`,
)

/**
 * Session lock that waits without limit, in one round trip, when the session has none of
 * `lock_timeout`, `statement_timeout` and (PostgreSQL 17+) `transaction_timeout` set (the common case,
 * and the cheapest statement: changing a setting costs the server more than the lock). Otherwise
 * `acquired` is NULL, nothing was locked, and the core sends {@link sessionLock}.
 */
export function sessionLockIfUnlimited(key: LockKey, mode: LockMode): Statement {
  return { text: sessionLockIfUnlimitedText(key, mode), params: keyParams(key) }
}
const sessionLockIfUnlimitedText = texts(
  (call) =>
    `SELECT CASE WHEN current_setting('lock_timeout') = '0' AND current_setting('statement_timeout') = '0' ` +
    `AND coalesce(current_setting('transaction_timeout', true), '0') = '0' ` +
    `THEN ${call('pg_advisory_lock')} IS NOT NULL END AS acquired, pg_backend_pid() AS pid`,
)

/**
 * Turns `transaction_timeout` (PostgreSQL 17+; absent before, hence `missing_ok` and no call then) off
 * for the current transaction only. Unlike `statement_timeout`, it can be lifted from inside the
 * statement it would cut short: the server disarms its timer as the setting changes.
 */
const LIFT_TRANSACTION_TIMEOUT =
  `CASE WHEN current_setting('transaction_timeout', true) <> '0' ` +
  `THEN set_config('transaction_timeout', '0', true) END AS transactiontimeout`

/**
 * Session lock that waits, in one round trip, with `lock_timeout` set for this statement only
 * (`set_config(..., true)` in autocommit reverts when the statement ends; '0' = wait without limit),
 * and `transaction_timeout` off for it. The target list is evaluated left to right, so the settings
 * are in place before the lock is asked for.
 *
 * The caller's `statement_timeout` cannot be lifted from inside the statement it applies to (its timer
 * is armed when the statement starts), so the wait only starts when that timeout is off or longer than
 * the wait; otherwise `acquired` is NULL, nothing was locked, and the core uses
 * {@link sessionLockInTransaction}.
 */
export function sessionLock(key: LockKey, mode: LockMode, timeoutMs: number | undefined): Statement {
  const params = keyParams(key)
  if (timeoutMs === undefined) return { text: sessionLockUntimedText(key, mode), params: [...params, '0'] }
  return {
    text: sessionLockTimedText(key, mode),
    params: [
      ...params,
      lockTimeoutSetting(timeoutMs),
      `${Math.ceil(timeoutMs) + STATEMENT_TIMEOUT_SLACK_MS} ms`,
    ],
  }
}
const sessionLockUntimedText = texts(
  (call, n) =>
    `SELECT set_config('lock_timeout', $${n + 1}, true) AS locktimeout, ${LIFT_TRANSACTION_TIMEOUT}, ` +
    `CASE WHEN current_setting('statement_timeout') = '0' ` +
    `THEN ${call('pg_advisory_lock')} IS NOT NULL END AS acquired, pg_backend_pid() AS pid`,
)
const sessionLockTimedText = texts(
  (call, n) =>
    `SELECT set_config('lock_timeout', $${n + 1}, true) AS locktimeout, ${LIFT_TRANSACTION_TIMEOUT}, ` +
    `CASE WHEN current_setting('statement_timeout') = '0' ` +
    `OR current_setting('statement_timeout')::interval > $${n + 2}::interval ` +
    `THEN ${call('pg_advisory_lock')} IS NOT NULL END AS acquired, pg_backend_pid() AS pid`,
)

/** Opens a transaction block on a dedicated session connection (the route around `statement_timeout`). */
export const BEGIN: Statement = { text: 'BEGIN', params: [] }
/** Ends the transaction block opened by {@link BEGIN}; session locks survive it. */
export const COMMIT: Statement = { text: 'COMMIT', params: [] }
/** Ends a failed transaction block opened by {@link BEGIN}; session locks survive it too. */
export const ROLLBACK: Statement = { text: 'ROLLBACK', params: [] }

/**
 * Sets `lock_timeout` and `statement_timeout` for the current transaction only and returns the values
 * they had, read before they change (a target list is evaluated left to right). With
 * `liftTransactionTimeout` (a transaction block of pglock's own, never the caller's, whose
 * `transaction_timeout` is the caller's budget), `transaction_timeout` is turned off for it too.
 */
export function setLocalTimeouts(
  lockTimeout: string,
  statementTimeout: string,
  liftTransactionTimeout = false,
): Statement {
  return {
    text:
      `SELECT current_setting('lock_timeout') AS locktimeout, ` +
      `current_setting('statement_timeout') AS statementtimeout, ` +
      `set_config('lock_timeout', $1, true) AS newlocktimeout, ` +
      `set_config('statement_timeout', $2, true) AS newstatementtimeout` +
      (liftTransactionTimeout ? `, ${LIFT_TRANSACTION_TIMEOUT}` : ''),
    params: [lockTimeout, statementTimeout],
  }
}

/** Session lock inside the transaction block opened by {@link BEGIN}, after {@link setLocalTimeouts}. */
export function sessionLockInTransaction(key: LockKey, mode: LockMode): Statement {
  return { text: sessionLockInTransactionText(key, mode), params: keyParams(key) }
}
const sessionLockInTransactionText = texts(
  (call) => `SELECT ${call('pg_advisory_lock')} IS NOT NULL AS acquired, pg_backend_pid() AS pid`,
)

/**
 * Releases one session hold, but only on the backend that took it (`pid`): behind a pooler in
 * transaction mode the "same" connection can reach another backend, where an unlock could free
 * somebody else's lock. `released` is NULL when the backend differs, false when this session did not
 * hold the lock (it was lost), true when it was released. (No second column: each costs the server.)
 */
export function sessionUnlock(key: LockKey, mode: LockMode, pid: number | undefined): Statement {
  const params = keyParams(key)
  if (pid === undefined) return { text: sessionUnlockAnyText(key, mode), params }
  return { text: sessionUnlockOnPidText(key, mode), params: [...params, String(pid)] }
}
const sessionUnlockAnyText = texts(
  (call) => `SELECT ${call('pg_advisory_unlock')} AS released, pg_backend_pid() AS pid`,
)
const sessionUnlockOnPidText = texts(
  (call, n) =>
    `SELECT CASE WHEN pg_backend_pid() = $${n + 1}::int4 THEN ${call('pg_advisory_unlock')} END AS released`,
)

/**
 * Whether this session holds the key in the given mode, according to the server (`pg_locks`). Used
 * after a failed or aborted wait: PostgreSQL can grant the lock just as the wait errors (DESIGN.md 2).
 */
export function sessionHolds(key: LockKey, mode: LockMode): Statement {
  const id = pgLocksIdentity(key)
  return {
    text:
      `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' ` +
      `AND pid = pg_backend_pid() AND granted AND classid = $1::oid AND objid = $2::oid ` +
      `AND objsubid = $3::int2 AND mode = $4) AS held`,
    params: [id.classid, id.objid, String(id.objsubid), mode === 'shared' ? 'ShareLock' : 'ExclusiveLock'],
  }
}

/** Transaction lock without waiting. Returns `acquired`. */
export function xactTryLock(key: LockKey, mode: LockMode): Statement {
  return { text: xactTryLockText(key, mode), params: keyParams(key) }
}
const xactTryLockText = texts((call) => `SELECT ${call('pg_try_advisory_xact_lock')} AS acquired`)

/**
 * Transaction lock that waits without limit, in one round trip, when the caller's transaction has
 * neither `lock_timeout` nor `statement_timeout` set; otherwise `acquired` is NULL, nothing was
 * locked, and the core takes the savepoint route, which overrides and then restores both.
 */
export function xactLockIfUnlimited(key: LockKey, mode: LockMode): Statement {
  return { text: xactLockIfUnlimitedText(key, mode), params: keyParams(key) }
}
const xactLockIfUnlimitedText = texts(
  (call) =>
    `SELECT CASE WHEN current_setting('lock_timeout') = '0' AND current_setting('statement_timeout') = '0' ` +
    `THEN ${call('pg_advisory_xact_lock')} IS NOT NULL END AS acquired`,
)

/** Transaction lock that waits under the settings made by {@link setLocalTimeouts}. */
export function xactLock(key: LockKey, mode: LockMode): Statement {
  return { text: xactLockText(key, mode), params: keyParams(key) }
}
const xactLockText = texts((call) => `SELECT ${call('pg_advisory_xact_lock')} IS NOT NULL AS acquired`)

/** The savepoint that lets a failed wait leave the caller's transaction usable. */
const SAVEPOINT_NAME = 'pglock_wait'
/** Fails with SQLSTATE 25P01 outside a transaction block, which is how an unknown status is probed. */
export const SAVEPOINT: Statement = { text: `SAVEPOINT ${SAVEPOINT_NAME}`, params: [] }
/** Keeps the work since {@link SAVEPOINT}: the lock, and the (restored) settings. */
export const RELEASE_SAVEPOINT: Statement = { text: `RELEASE SAVEPOINT ${SAVEPOINT_NAME}`, params: [] }
/** Undoes the work since {@link SAVEPOINT}, settings included; the savepoint itself remains. */
export const ROLLBACK_TO_SAVEPOINT: Statement = {
  text: `ROLLBACK TO SAVEPOINT ${SAVEPOINT_NAME}`,
  params: [],
}

/** Puts back the transaction-local settings read by {@link setLocalTimeouts}. */
export function restoreLocalTimeouts(lockTimeout: string, statementTimeout: string): Statement {
  return {
    text: `SELECT set_config('lock_timeout', $1, true) AS locktimeout, set_config('statement_timeout', $2, true) AS statementtimeout`,
    params: [lockTimeout, statementTimeout],
  }
}

/**
 * `statement` run under a savepoint of its own, as one script (`TransactionConnection.script`): the
 * SAVEPOINT probes the transaction (outside a transaction block the server refuses it, 25P01, and runs
 * nothing else), and the lock's savepoint is released in the same round trip. Keys are inlined as
 * the integers the core formatted (DESIGN.md 9), quoted and cast as the statement's parameters are.
 */
export function underSavepointScript(statement: Statement): string {
  const text = statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = statement.params[Number(n) - 1]
    if (value === undefined || !/^-?\d{1,20}$/.test(value)) {
      throw new Error(`pglock: only integer parameters can be inlined (got ${String(value)} for $${n})`)
    }
    return `'${value}'`
  })
  return `${SAVEPOINT.text}; ${text}; ${RELEASE_SAVEPOINT.text}`
}

/**
 * Ends whatever transaction block a session may have left open (a WARNING, not an error, when there
 * is none): the first step of cleaning a connection that cannot be destroyed.
 */
export const ROLLBACK_ANY: Statement = { text: 'ROLLBACK', params: [] }

/** Frees every session-level advisory lock of this session: the cleanup of a connection that cannot be destroyed. */
export const UNLOCK_ALL: Statement = {
  text: 'SELECT pg_advisory_unlock_all() IS NOT NULL AS unlocked',
  params: [],
}

/**
 * The keep-alive: keeps a lock-holding session from looking idle, and reports its backend so that a
 * session that moved (a pooler in transaction mode) is noticed.
 */
export const KEEPALIVE: Statement = { text: 'SELECT pg_backend_pid() AS pid', params: [] }
