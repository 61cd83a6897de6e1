import type { Row } from '../adapter.js'

/**
 * Bounds `release()` on a server gone silent. Each unlock in flight is watched; one left unanswered
 * for `abandonAfterMs` is given up on (its session then is: see `Session.unlock`), so that a release
 * settles instead of waiting for the server, or for TCP to give up on the connection, which can take
 * many minutes during a network partition.
 *
 * One interval per locker, running only while unlocks are in flight, ticks every quarter of
 * `abandonAfterMs`; an unlock is given up on at the first tick at least `abandonAfterMs` after it was
 * sent (so within 1.25 × `abandonAfterMs`). No timer of its own per unlock: this runs on every release.
 */

/** Ticks per `abandonAfterMs`. */
const TICKS = 4

/** What gives up on the session of an unlock left unanswered. */
export interface UnlockOwner {
  /** Gives the session up (its locks are reported lost); returns the error the unlock rejects with. */
  unlockUnanswered(): Error
}

/**
 * An unlock in flight: `promise` settles as the statement does, or rejects once the watch gives the
 * unlock up. One object and its promise per unlock, no closure of its own.
 */
export class WatchedUnlock {
  /** The watch's tick count when the unlock was sent (set by {@link UnlockWatch.watch}). */
  since = 0
  readonly promise: Promise<readonly Row[]>
  readonly #owner: UnlockOwner
  #reject!: (error: unknown) => void

  constructor(running: Promise<readonly Row[]>, owner: UnlockOwner) {
    this.#owner = owner
    this.promise = new Promise((resolve, reject) => {
      this.#reject = reject
      running.then(resolve, reject)
    })
  }

  /** The unlock has gone unanswered for `abandonAfterMs`. */
  unanswered(): void {
    this.#reject(this.#owner.unlockUnanswered())
  }
}

export class UnlockWatch {
  readonly #periodMs: number
  readonly #pending = new Set<WatchedUnlock>()
  #timer: ReturnType<typeof setInterval> | undefined
  #ticks = 0

  constructor(abandonAfterMs: number) {
    this.#periodMs = abandonAfterMs / TICKS
  }

  /** Unlocks in flight. */
  get size(): number {
    return this.#pending.size
  }

  watch(unlock: WatchedUnlock): void {
    unlock.since = this.#ticks
    this.#pending.add(unlock)
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#tick, this.#periodMs)
      this.#timer.unref?.()
    }
  }

  /** The unlock settled (or was given up on). */
  unwatch(unlock: WatchedUnlock): void {
    this.#pending.delete(unlock)
  }

  readonly #tick = (): void => {
    this.#ticks++
    if (this.#pending.size === 0) {
      // Stopped only at a tick that finds nothing in flight: a loop of releases does not re-arm it each time.
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    // Sent after tick `since`, so a whole `abandonAfterMs` has passed once TICKS more have come.
    for (const unlock of this.#pending) {
      if (this.#ticks - unlock.since > TICKS) {
        this.#pending.delete(unlock)
        unlock.unanswered()
      }
    }
  }
}
