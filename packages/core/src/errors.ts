import type { LockKey } from './keys.js'

/** Stable machine-readable codes carried by every pglock error. */
export type PgLockErrorCode =
  | 'LOCK_TIMEOUT'
  | 'LOCK_LOST'
  | 'DEADLOCK'
  | 'NOT_IN_TRANSACTION'
  | 'INVALID_KEY'
  | 'INVALID_OPTIONS'
  | 'LOCKER_CLOSED'
  | 'SESSION_MOVED'
  | 'LOCK_TABLE_FULL'
  | 'CONNECTION_LOST'

interface PgLockErrorOptions {
  readonly cause?: unknown
}

/** The root of every error pglock throws; `code` is stable across releases, `name` equals the class name. */
export class PgLockError extends Error {
  /** A stable code that identifies the kind of failure. */
  readonly code: PgLockErrorCode

  constructor(code: PgLockErrorCode, message: string, options?: PgLockErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}
PgLockError.prototype.name = 'PgLockError'

/** `timeoutMs` passed before the lock could be taken; nothing is held. */
export class LockTimeoutError extends PgLockError {
  /** The key that was not acquired. */
  readonly key: LockKey
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number

  constructor(key: LockKey, timeoutMs: number, options?: PgLockErrorOptions) {
    super('LOCK_TIMEOUT', `Could not acquire lock ${describeKey(key)} within ${timeoutMs} ms`, options)
    this.key = key
    this.timeoutMs = timeoutMs
  }
}
LockTimeoutError.prototype.name = 'LockTimeoutError'

/** The session holding a lock ended (its connection died, or the lock vanished on the server). */
export class LockLostError extends PgLockError {
  /** The key whose lock was lost. */
  readonly key: LockKey

  constructor(key: LockKey, detail: string, options?: PgLockErrorOptions) {
    super('LOCK_LOST', `Lock ${describeKey(key)} was lost: ${detail}`, options)
    this.key = key
  }
}
LockLostError.prototype.name = 'LockLostError'

/** PostgreSQL chose this wait as the victim of a deadlock (SQLSTATE 40P01). */
export class DeadlockError extends PgLockError {
  /** The key that was being waited for. */
  readonly key: LockKey

  constructor(key: LockKey, options?: PgLockErrorOptions) {
    super('DEADLOCK', `Deadlock detected while waiting for lock ${describeKey(key)}`, options)
    this.key = key
  }
}
DeadlockError.prototype.name = 'DeadlockError'

/** A transaction-scoped lock was requested on a connection that is not inside a transaction block. */
export class NotInTransactionError extends PgLockError {
  constructor(detail?: string, options?: PgLockErrorOptions) {
    super(
      'NOT_IN_TRANSACTION',
      `Transaction-scoped locks need a connection inside a transaction block (BEGIN)${detail ? `: ${detail}` : ''}`,
      options,
    )
  }
}
NotInTransactionError.prototype.name = 'NotInTransactionError'

/** A key that is not one of the accepted forms. */
export class InvalidLockKeyError extends PgLockError {
  /** The rejected input, as given. */
  readonly value: unknown

  constructor(value: unknown, reason: string) {
    super('INVALID_KEY', `Invalid lock key ${describeValue(value)}: ${reason}`)
    this.value = value
  }
}
InvalidLockKeyError.prototype.name = 'InvalidLockKeyError'

/** A bad option value (for example a negative `timeoutMs`). */
export class InvalidOptionsError extends PgLockError {
  /** The name of the offending option. */
  readonly option: string

  constructor(option: string, message: string) {
    super('INVALID_OPTIONS', `Invalid option ${option}: ${message}`)
    this.option = option
  }
}
InvalidOptionsError.prototype.name = 'InvalidOptionsError'

/** The locker was closed: by a call made after `close()`, or by a wait still pending when it ran. */
export class LockerClosedError extends PgLockError {
  constructor() {
    super('LOCKER_CLOSED', 'The locker is closed')
  }
}
LockerClosedError.prototype.name = 'LockerClosedError'

/**
 * The "dedicated" connection changed backend between statements, so session locks cannot be kept on it.
 * This is what a pooler in transaction mode (PgBouncer `pool_mode = transaction`) does; use
 * transaction-scoped locks there.
 */
export class SessionMovedError extends PgLockError {
  constructor(detail: string, options?: PgLockErrorOptions) {
    super(
      'SESSION_MOVED',
      `The server session changed under a session lock (${detail}); a pooler in transaction mode cannot carry session locks — use transaction-scoped locks`,
      options,
    )
  }
}
SessionMovedError.prototype.name = 'SessionMovedError'

/**
 * PostgreSQL's shared lock table is full (SQLSTATE 53200, "out of shared memory"): every session of
 * the server fails to take locks until some are released. Nothing was acquired by the failed call.
 */
export class LockTableFullError extends PgLockError {
  /** The key that could not be acquired. */
  readonly key: LockKey

  constructor(key: LockKey, options?: PgLockErrorOptions) {
    super(
      'LOCK_TABLE_FULL',
      `Could not acquire lock ${describeKey(key)}: PostgreSQL's lock table is full (out of shared memory). ` +
        'It holds max_locks_per_transaction × (max_connections + max_prepared_transactions) locks for the ' +
        'whole server: raise max_locks_per_transaction, or hold fewer locks at once',
      options,
    )
    this.key = key
  }
}
LockTableFullError.prototype.name = 'LockTableFullError'

/**
 * The server session that was waiting for a lock ended before the lock was granted (server restart,
 * terminated backend, network failure, idle killer). Nothing is held; the driver's error is the `cause`.
 */
export class ConnectionLostError extends PgLockError {
  /** The key that was being waited for. */
  readonly key: LockKey

  constructor(key: LockKey, options?: PgLockErrorOptions) {
    super(
      'CONNECTION_LOST',
      `The connection waiting for lock ${describeKey(key)} ended before the lock was granted (server restart, terminated backend or network failure); nothing is held`,
      options,
    )
    this.key = key
  }
}
ConnectionLostError.prototype.name = 'ConnectionLostError'

/** Renders a key for messages: `123` or `(1, 2)`. */
export function describeKey(key: LockKey): string {
  return key.kind === 'bigint' ? String(key.key) : `(${key.key1}, ${key.key2})`
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
    case 'bigint':
      return `${value}n`
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value)
    case 'symbol':
      return value.toString()
    case 'function':
      return '[function]'
    default:
      if (value === null) return 'null'
      if (Array.isArray(value)) return `array(${value.length})`
      return '[object]'
  }
}
