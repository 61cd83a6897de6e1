import type { Adapter } from '../adapter.js'

/**
 * SQLSTATEs that end the server session: connection exceptions (class 08), administrator and crash
 * shutdowns, a dropped database, and the idle / transaction timeouts that terminate the session.
 * Also 26000 (invalid_sql_statement_name): a prepared statement an adapter made on this session is gone,
 * so the statement reached another server session (a pooler in transaction mode) or the session was
 * reset (`DISCARD ALL`, which also drops its advisory locks); either way it is not the session we had.
 */
const SESSION_ENDED = new Set(['57P01', '57P02', '57P03', '57P04', '57P05', '25P03', '25P04', '26000'])

/** Whether `error` means the server session is gone, by SQLSTATE or by the driver's own word. */
export function isSessionGone(adapter: Adapter<never>, error: unknown): boolean {
  const state = adapter.sqlState(error)
  if (state !== undefined && (state.startsWith('08') || SESSION_ENDED.has(state))) return true
  return adapter.isConnectionError(error)
}

/** SQLSTATE 55P03: `lock_timeout` fired. */
export const LOCK_NOT_AVAILABLE = '55P03'
/** SQLSTATE 40P01: this wait was chosen as a deadlock victim. */
export const DEADLOCK_DETECTED = '40P01'
/** SQLSTATE 25P01: a savepoint outside a transaction block. */
export const NO_ACTIVE_SQL_TRANSACTION = '25P01'
/** SQLSTATE 25P02: a statement in a transaction that has already failed. */
export const IN_FAILED_SQL_TRANSACTION = '25P02'
/** SQLSTATE 53200: out of shared memory (the lock table is full). */
export const OUT_OF_MEMORY = '53200'
