/**
 * One acquire in progress: joins the caller's AbortSignal, the locker's close() and the local part of
 * the deadline (waiting for a pool connection or for the caller's transaction to be free) into one
 * internal signal whose `reason` is the error the acquire must reject with.
 *
 * The server-side part of a wait is bounded by `lock_timeout`, never by a timer here: a client-side
 * timer alone would leave the server waiting, and it would later grant the lock to nobody.
 */
export class Operation {
  readonly #controller = new AbortController()
  readonly #deadline: number | undefined
  readonly #userSignal: AbortSignal | undefined
  readonly #onUserAbort: (() => void) | undefined
  readonly #registry: Set<Operation>
  #timer: ReturnType<typeof setTimeout> | undefined
  #resolveDone!: () => void
  /** Settles when the operation has finished and given back everything it took. */
  readonly done: Promise<void> = new Promise((resolve) => {
    this.#resolveDone = resolve
  })

  constructor(
    registry: Set<Operation>,
    userSignal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    timeoutError: () => Error,
  ) {
    this.#registry = registry
    registry.add(this)
    this.#userSignal = userSignal
    if (userSignal !== undefined) {
      this.#onUserAbort = () => this.abort(userSignal.reason)
      userSignal.addEventListener('abort', this.#onUserAbort, { once: true })
    }
    if (timeoutMs !== undefined) {
      this.#deadline = performance.now() + timeoutMs
      this.#timer = setTimeout(() => this.abort(timeoutError()), timeoutMs)
      // A pending acquire must not keep the process alive on its own.
      this.#timer.unref?.()
    }
  }

  /** Aborted when the caller aborts, the locker closes, or the deadline passes before the server wait. */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  get aborted(): boolean {
    return this.#controller.signal.aborted
  }

  /** The error the acquire rejects with once aborted. */
  get reason(): unknown {
    return this.#controller.signal.reason
  }

  /** Aborts with `reason` unless already aborted (the first reason wins). */
  abort(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason)
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
    this.#registry.delete(this)
    this.#resolveDone()
  }
}

/**
 * Waits for `promise` unless `op` aborts first. When `op` wins, `onLate` receives the value if it
 * arrives later, so that nothing taken for the caller (a pool connection) is leaked.
 */
export function raceOperation<T>(op: Operation, promise: Promise<T>, onLate: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const onAbort = () => {
      if (settled) return
      settled = true
      reject(op.reason)
    }
    op.signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        op.signal.removeEventListener('abort', onAbort)
        if (settled) {
          onLate(value)
          return
        }
        settled = true
        resolve(value)
      },
      (error: unknown) => {
        op.signal.removeEventListener('abort', onAbort)
        if (settled) return
        settled = true
        reject(error)
      },
    )
    if (op.aborted) onAbort()
  })
}
