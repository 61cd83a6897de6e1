import { InvalidOptionsError } from './errors.js'
import { type KeyDerivation, keyDerivations } from './keys.js'

/** Options of {@link createLocker}. */
export interface LockerOptions {
  /**
   * How string keys become lock ids. Default: `keyDerivations.sha256`. It must return the same key for
   * the same name: the locker keeps the keys of the last 1,024 names it derived.
   */
  readonly keyDerivation?: KeyDerivation
  /**
   * Every `keepAliveMs` milliseconds, run a trivial statement on each connection that holds session
   * locks, so that idle killers (`idle_session_timeout`, proxies and firewalls that drop quiet
   * connections) do not end it, and so that a dead or moved session is noticed within that time even
   * with drivers that report loss only on use, and a server gone silent within `abandonAfterMs` more
   * even on a connection that has nothing else to send. Off by default.
   */
  readonly keepAliveMs?: number
  /**
   * How long the server may stay silent, in milliseconds, before a connection is given up as
   * unresponsive (a stopped backend, a network partition): for a statement it should answer at once
   * (a try, an unlock, a keep-alive and the like), how long its connection may answer nothing while
   * it is in flight; for a blocking wait, how long past its deadline, its signal's abort or `close()`.
   * Every lock on that connection is then reported lost, the connection is ended (which frees its
   * locks once the server notices), and whoever waited goes on: `release()` and `close()` settle, an
   * acquire rejects or, when it may still wait, tries once more on another connection. Keep it well
   * above the round-trip time.
   * Default 5000.
   */
  readonly abandonAfterMs?: number
}

/** Options of `acquire`, `withLock` and transaction-scoped `acquire`. */
export interface AcquireOptions {
  /** Take the lock in shared mode (many shared holders, no exclusive one). Default false. */
  readonly shared?: boolean
  /**
   * The longest wait, in milliseconds, including the wait for a pool connection; finite, >= 0.
   * 0 means "do not wait for the lock" (like `tryAcquire`, but rejecting with `LockTimeoutError`).
   * Omitted: wait without limit.
   */
  readonly timeoutMs?: number
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal
}

/** Options of `tryAcquire` and `tryWithLock`. */
export interface TryAcquireOptions {
  /** Take the lock in shared mode. Default false. */
  readonly shared?: boolean
  /** Aborts the attempt (and any wait for a pool connection); the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal
}

/** The largest timeout PostgreSQL's `lock_timeout` (and Node's timers) accept, in milliseconds. */
export const MAX_TIMEOUT_MS = 2_147_483_647

/** Defaults, in one place. */
export const DEFAULT_LOCKER_OPTIONS: ResolvedLockerOptions = Object.freeze({
  keyDerivation: keyDerivations.sha256,
  keepAliveMs: undefined,
  abandonAfterMs: 5_000,
})

/** Acquire options after validation. */
export interface ResolvedAcquireOptions {
  readonly shared: boolean
  readonly timeoutMs: number | undefined
  readonly signal: AbortSignal | undefined
}

const NO_OPTIONS: ResolvedAcquireOptions = Object.freeze({
  shared: false,
  timeoutMs: undefined,
  signal: undefined,
})

function checkObject(value: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionsError(what, `expected an object, got ${value === null ? 'null' : typeof value}`)
  }
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name)) {
      // A typo such as `{ timeout: 5000 }` would otherwise wait forever without a word.
      throw new InvalidOptionsError(
        name,
        `unknown option for ${what} (expected one of: ${allowed.join(', ')})`,
      )
    }
  }
  return value as Record<string, unknown>
}

function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true
  // Accept signals from another realm (a vm context, a polyfill) that behave like one.
  const v = value as Partial<AbortSignal> | null
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.aborted === 'boolean' &&
    typeof v.addEventListener === 'function' &&
    typeof v.removeEventListener === 'function'
  )
}

function checkShared(value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean')
    throw new InvalidOptionsError('shared', `expected a boolean, got ${typeof value}`)
  return value
}

function checkSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!isAbortSignal(value)) throw new InvalidOptionsError('signal', 'expected an AbortSignal')
  return value
}

/** Validates the options of an acquire; throws {@link InvalidOptionsError}. */
export function resolveAcquireOptions(options: unknown): ResolvedAcquireOptions {
  if (options === undefined) return NO_OPTIONS
  const o = checkObject(options, 'acquire options', ['shared', 'timeoutMs', 'signal'])
  const timeoutMs = o.timeoutMs
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new InvalidOptionsError('timeoutMs', `expected a finite number >= 0, got ${String(timeoutMs)}`)
    }
    if (timeoutMs > MAX_TIMEOUT_MS) {
      throw new InvalidOptionsError(
        'timeoutMs',
        `${timeoutMs} exceeds ${MAX_TIMEOUT_MS} (about 24.8 days); omit it to wait without limit`,
      )
    }
  }
  return {
    shared: checkShared(o.shared),
    timeoutMs: timeoutMs as number | undefined,
    signal: checkSignal(o.signal),
  }
}

/** Validates the options of a try-acquire; throws {@link InvalidOptionsError}. */
export function resolveTryAcquireOptions(options: unknown): ResolvedAcquireOptions {
  if (options === undefined) return NO_OPTIONS
  const o = checkObject(options, 'tryAcquire options', ['shared', 'signal'])
  return { shared: checkShared(o.shared), timeoutMs: undefined, signal: checkSignal(o.signal) }
}

/** Locker options after validation. */
export interface ResolvedLockerOptions {
  readonly keyDerivation: KeyDerivation
  readonly keepAliveMs: number | undefined
  readonly abandonAfterMs: number
}

/** Validates the options of `createLocker`; throws {@link InvalidOptionsError}. */
export function resolveLockerOptions(options: unknown): ResolvedLockerOptions {
  if (options === undefined) return DEFAULT_LOCKER_OPTIONS
  const o = checkObject(options, 'locker options', ['keyDerivation', 'keepAliveMs', 'abandonAfterMs'])
  if (o.keyDerivation !== undefined && typeof o.keyDerivation !== 'function') {
    throw new InvalidOptionsError('keyDerivation', 'expected a function (name: string) => LockKey')
  }
  return Object.freeze({
    keyDerivation: (o.keyDerivation as KeyDerivation | undefined) ?? DEFAULT_LOCKER_OPTIONS.keyDerivation,
    keepAliveMs: milliseconds(o.keepAliveMs, 'keepAliveMs'),
    abandonAfterMs: milliseconds(o.abandonAfterMs, 'abandonAfterMs') ?? DEFAULT_LOCKER_OPTIONS.abandonAfterMs,
  })
}

/** A locker option in milliseconds: undefined, or a number in 1 .. MAX_TIMEOUT_MS. */
function milliseconds(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    throw new InvalidOptionsError(
      name,
      `expected a number of milliseconds in 1 .. ${MAX_TIMEOUT_MS}, got ${String(value)}`,
    )
  }
  return value
}
