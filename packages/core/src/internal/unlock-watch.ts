import type { Row } from '../adapter.js'

/**
 * Bounds `release()` on a server gone silent. Each unlock in flight is watched; one whose session has
 * answered nothing for `abandonAfterMs` while it was in flight is given up on (its session then is:
 * see `Session.unlock`), so that a release settles instead of waiting for the server, or for TCP to
 * give up on the connection, which can take many minutes during a network partition. An unlock queued
 * behind others on a shared session waits as long as the session keeps answering: releasing
 * thousands of locks at once may take longer than `abandonAfterMs`.
 *
 * One interval per locker, running only while unlocks are in flight, ticks every quarter of
 * `abandonAfterMs`; an unlock is given up on at the first tick at least `abandonAfterMs` after it was
 * sent, or after its session last answered (so within 1.25 × `abandonAfterMs` of that). No timer of
 * its own per unlock: this runs on every release.
 */

/** Ticks per `abandonAfterMs`. */
const TICKS = 4

/** The session of an unlock. */
export interface UnlockOwner {
  /** Statements it has had answered so far (any count that grows with each answer). */
  readonly answers: number
  /** Gives the session up (its locks are reported lost); returns the error the unlock rejects with. */
  unlockUnanswered(): Error
}

/**
 * An unlock in flight: `promise` settles as the statement does, or rejects once the watch gives the
 * unlock up. One object, its promise and the promise's executor per unlock: the statement's handlers
 * are the promise's own resolvers.
 */
export class WatchedUnlock {
  /** The watch's tick count when the unlock was sent, or when its session last answered (see {@link UnlockWatch}). */
  since = 0
  /** Its session's answers at `since`. */
  answers = 0
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

  /** Whether its session has answered anything since `since`. */
  get answered(): boolean {
    return this.#owner.answers !== this.answers
  }

  /** Restarts its clock at tick `ticks`. */
  restart(ticks: number): void {
    this.since = ticks
    this.answers = this.#owner.answers
  }

  /** The unlock's session has answered nothing for `abandonAfterMs`. */
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
    unlock.restart(this.#ticks)
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
    for (const unlock of this.#pending) {
      if (unlock.answered) {
        // The session answers (the unlock waits its turn behind other statements there): not silent.
        // It answered after the previous tick (or the unlock would have been restarted then).
        unlock.restart(this.#ticks - 1)
      } else if (this.#ticks - unlock.since > TICKS) {
        // Sent (or last answered) after tick `since`: a whole `abandonAfterMs` has passed since.
        this.#pending.delete(unlock)
        unlock.unanswered()
      }
    }
  }
}
