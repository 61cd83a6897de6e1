import { LockTimeoutError } from '../errors.js'
import type { LockKey } from '../keys.js'
import type { Registry, RegistryEntry } from './registry.js'

/** Told once when an operation aborts: a function, or an object (one allocation fewer per wait). */
export type AbortListener = (() => void) | { operationAborted(): void }

/**
 * One acquire in progress: joins the caller's AbortSignal, the locker's close() and the local part of
 * the deadline (waiting for a pool connection or for the caller's transaction to be free) into one
 * abort whose `reason` is the error the acquire must reject with. (Not an AbortController: creating
 * one per acquire was the largest single cost of an uncontended acquire.)
 *
 * The server-side part of a wait is bounded by `lock_timeout`, not by a timer here: a client-side
 * timer alone would leave the server waiting, and it would later grant the lock to nobody. Only a
 * server that stays silent long past the deadline is given up on ({@link expire}).
 */
export class Operation {
  readonly #deadline: number | undefined
  readonly #userSignal: AbortSignal | undefined
  readonly #onUserAbort: (() => void) | undefined
  readonly #registry: Registry<Operation>
  readonly #registration: RegistryEntry<Operation>
  /** For the timeout error: the key, and the wait asked for (0 when there was none). */
  readonly #key: LockKey
  readonly #timeoutMs: number
  #timer: ReturnType<typeof setTimeout> | undefined
  #aborted = false
  #reason: unknown
  /**
   * Called once on abort. An acquire listens in one place at a time (the pool wait, then the server
   * wait), so one slot; more go to `#moreListeners`, which the core never needs.
   */
  #listener: AbortListener | undefined
  #moreListeners: AbortListener[] | undefined
  #disposed = false
  #done: Promise<void> | undefined
  #resolveDone: (() => void) | undefined

  constructor(
    registry: Registry<Operation>,
    userSignal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    key: LockKey,
  ) {
    this.#key = key
    this.#timeoutMs = timeoutMs ?? 0
    this.#registry = registry
    this.#registration = registry.add(this)
    this.#userSignal = userSignal
    if (userSignal !== undefined) {
      this.#onUserAbort = () => this.abort(userSignal.reason)
      userSignal.addEventListener('abort', this.#onUserAbort, { once: true })
    }
    if (timeoutMs !== undefined) {
      this.#deadline = performance.now() + timeoutMs
      this.#timer = setTimeout(() => this.abort(this.#timeoutError()), timeoutMs)
      // A pending acquire must not keep the process alive on its own.
      this.#timer.unref?.()
    }
  }

  /** Settles when the operation has finished and given back everything it took. */
  get done(): Promise<void> {
    if (this.#done === undefined) {
      this.#done = this.#disposed
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.#resolveDone = resolve
          })
    }
    return this.#done
  }

  get aborted(): boolean {
    return this.#aborted
  }

  /** The error the acquire rejects with once aborted. */
  get reason(): unknown {
    return this.#reason
  }

  /** Aborts with `reason` unless already aborted (the first reason wins). */
  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    const listener = this.#listener
    const more = this.#moreListeners
    this.#listener = undefined
    this.#moreListeners = undefined
    if (listener !== undefined) notify(listener)
    if (more !== undefined) for (const other of more) notify(other)
  }

  /**
   * Calls `listener` once when the operation aborts (never when it already has: check `aborted`),
   * unless {@link offAbort} removes it first.
   */
  onAbort(listener: AbortListener): void {
    if (this.#aborted) return
    if (this.#listener === undefined) {
      this.#listener = listener
      return
    }
    this.#moreListeners ??= []
    this.#moreListeners.push(listener)
  }

  /** Removes a listener added by {@link onAbort}. */
  offAbort(listener: AbortListener): void {
    if (this.#listener === listener) {
      this.#listener = undefined
      return
    }
    const at = this.#moreListeners?.indexOf(listener) ?? -1
    if (at >= 0) this.#moreListeners?.splice(at, 1)
  }

  /**
   * The deadline passed and the server did not say so (its `lock_timeout` reply never came): aborts
   * with the timeout error, `cause` saying why.
   */
  expire(cause: unknown): void {
    this.abort(this.#timeoutError(cause))
  }

  #timeoutError(cause?: unknown): Error {
    return new LockTimeoutError(this.#key, this.#timeoutMs, { cause })
  }

  /** Milliseconds left before the deadline, or undefined when there is none. */
  remainingMs(): number | undefined {
    return this.#deadline === undefined ? undefined : this.#deadline - performance.now()
  }

  /**
   * The local wait is over and the server takes it from here (with `lock_timeout`): the timer no
   * longer applies.
   */
  startServerWait(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Removes every listener and timer; called exactly once, when the acquire settles. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#onUserAbort !== undefined) this.#userSignal?.removeEventListener('abort', this.#onUserAbort)
    this.#listener = undefined
    this.#moreListeners = undefined
    this.#registry.delete(this.#registration)
    this.#disposed = true
    this.#resolveDone?.()
  }
}

/** Does nothing: a handler for outcomes nobody needs. */
export function noop(): void {}

function notify(listener: AbortListener): void {
  if (typeof listener === 'function') listener()
  else listener.operationAborted()
}

/**
 * Waits for `promise` unless `op` aborts first. When `op` wins, `onLate` receives the value if it
 * arrives later, so that nothing taken for the caller (a pool connection) is leaked.
 */
export function raceOperation<T>(op: Operation, promise: Promise<T>, onLate: (value: T) => void): Promise<T> {
  if (op.aborted) {
    promise.then(onLate, noop)
    return Promise.reject(op.reason)
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const onAbort = () => {
      if (settled) return
      settled = true
      reject(op.reason)
    }
    op.onAbort(onAbort)
    promise.then(
      (value) => {
        op.offAbort(onAbort)
        if (settled) {
          onLate(value)
          return
        }
        settled = true
        resolve(value)
      },
      (error: unknown) => {
        op.offAbort(onAbort)
        if (settled) return
        settled = true
        reject(error)
      },
    )
  })
}
