export type {
  Adapter,
  ConnectOptions,
  LockConnection,
  Row,
  SessionConnection,
  TransactionConnection,
  TransactionStatus,
} from './adapter.js'
export {
  ConnectionLostError,
  DeadlockError,
  InvalidLockKeyError,
  InvalidOptionsError,
  LockerClosedError,
  LockLostError,
  LockTableFullError,
  LockTimeoutError,
  NotInTransactionError,
  PgLockError,
  type PgLockErrorCode,
  SessionMovedError,
} from './errors.js'
export { type KeyDerivation, keyDerivations, type LockKey, type LockKeyInput, lockKey } from './keys.js'
export type { LockHandle } from './lock-handle.js'
export { createLocker, type Locker, type TransactionLocker, type TryWithLockResult } from './locker.js'
export type { AcquireOptions, LockerOptions, TryAcquireOptions } from './options.js'
export { type OwnedSession, type SessionPool, type SessionPoolOptions, sessionPool } from './session-pool.js'
