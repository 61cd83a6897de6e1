import type { LockKey } from './keys.js'

/** A session-scoped lock held by this process. */
export interface LockHandle extends AsyncDisposable {
  /** The lock's key, normalised. */
  readonly key: LockKey
  /** Whether the lock is held in shared mode. */
  readonly shared: boolean
  /** true until released or lost. */
  readonly held: boolean
  /** Aborted, with a `LockLostError` as reason, when the lock is lost (its connection died). */
  readonly signal: AbortSignal
  /**
   * Unlocks. Idempotent; resolves without error when the lock was already lost. Settles even when the
   * server stops answering: once the lock's connection has answered nothing for the locker's
   * `abandonAfterMs`, the connection is given up on and the lock reported lost (`signal` aborts).
   */
  release(): Promise<void>
}

/** What a handle asks of the session that holds its lock. */
export interface HandleOwner {
  /** Unlocks on the server and settles the handle's state; never rejects. */
  unlock(handle: LockHandleImpl): Promise<void>
}

type State = 'held' | 'releasing' | 'released' | 'lost'

/** The one implementation of {@link LockHandle}; its state changes only through the owning session. */
export class LockHandleImpl implements LockHandle {
  readonly key: LockKey
  readonly shared: boolean
  /** Made on first use of `signal` (already aborted if the lock was lost): most handles never need one. */
  #controller: AbortController | undefined
  /** Set when the lock is lost or revoked; the reason `signal` aborts with. */
  #lostReason: Error | undefined
  readonly #owner: HandleOwner
  #state: State = 'held'
  #release: Promise<void> | undefined

  constructor(key: LockKey, shared: boolean, owner: HandleOwner) {
    this.key = key
    this.shared = shared
    this.#owner = owner
  }

  get held(): boolean {
    return this.#state === 'held'
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#lostReason !== undefined) this.#controller.abort(this.#lostReason)
    }
    return this.#controller.signal
  }

  /** Whether the lock was lost (rather than released). */
  get lost(): boolean {
    return this.#state === 'lost'
  }

  release(): Promise<void> {
    if (this.#release === undefined) {
      if (this.#state !== 'held') {
        this.#release = Promise.resolve()
      } else {
        this.#state = 'releasing'
        this.#release = this.#owner.unlock(this)
      }
    }
    return this.#release
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release()
  }

  /**
   * Takes the lock away from its holder (locker.close()): aborts `signal` with `error` at once, so
   * that protected work stops and `withLock` reports it, then unlocks as `release()` would.
   */
  revoke(error: Error): Promise<void> {
    if (this.#state === 'held') {
      this.#abort(error)
      this.#state = 'releasing'
      this.#release = this.#owner.unlock(this).then(() => this.markLost(error))
    }
    return this.release()
  }

  /** Marks the lock released on the server. */
  markReleased(): void {
    if (this.#state === 'held' || this.#state === 'releasing') this.#state = 'released'
  }

  /**
   * Marks the lock lost and aborts `signal` with `error`. A loss noticed while the release is under
   * way (the unlock found nothing to unlock) still counts: the protected work may have run without
   * the lock.
   */
  markLost(error: Error): void {
    if (this.#state === 'held' || this.#state === 'releasing' || this.#lostReason !== undefined) {
      this.#state = 'lost'
      this.#abort(error)
    }
  }

  /** Aborts `signal` with `error`, once (the first reason stays). */
  #abort(error: Error): void {
    if (this.#lostReason !== undefined) return
    this.#lostReason = error
    this.#controller?.abort(error)
  }
}
