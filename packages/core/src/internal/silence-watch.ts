import type { Row } from '../adapter.js'

/**
 * Bounds what the core waits for on a server gone silent. Every statement the server should answer at
 * once (a try, an unlock, a keep-alive: all but a blocking wait, which may rightly go unanswered for
 * as long as the lock is taken) is watched while in flight. One whose session has answered nothing for
 * `abandonAfterMs` is given up on, and its session with it (see `Session.unanswered`): every lock there
 * is reported lost, and whoever awaits the statement goes on, rather than wait for TCP to give up on
 * the connection, which can take many minutes during a network partition. A statement queued behind
 * others on a shared session waits as long as the session keeps answering: releasing thousands of
 * locks at once may take longer than `abandonAfterMs`.
 *
 * One interval per locker, running only while statements are watched, ticks every quarter of
 * `abandonAfterMs`; a statement is given up on at the first tick at least `abandonAfterMs` after it was
 * sent, or after its session last answered (so within 1.25 × `abandonAfterMs` of that), or at the
 * first tick after its session was given up on (it was queued behind the statement that was). No
 * timer of its own per statement: this runs on every try and every release.
 */

/** Ticks per `abandonAfterMs`. */
const TICKS = 4

/** The session of a watched statement. */
export interface SilenceOwner {
  /** Statements it has had answered so far (any count that grows with each answer). */
  readonly answers: number
  /** Lost (or given up on): nothing it still has in flight will be answered to any purpose. */
  readonly gone: boolean
  /**
   * Gives the session up (its locks are reported lost) because `what` (e.g. "the unlock") went
   * unanswered; returns the error the statement rejects with.
   */
  unanswered(what: string): Error
}

/**
 * A statement in flight: `promise` settles as the statement does, or rejects once the watch gives it
 * up. One object, its promise and the promise's executor per statement: the statement's handlers are
 * the promise's own resolvers.
 */
export class WatchedStatement {
  /** The watch's tick count when the statement was sent, or when its session last answered (see {@link SilenceWatch}). */
  since = 0
  /** Its session's answers at `since`. */
  answers = 0
  readonly promise: Promise<readonly Row[]>
  readonly #owner: SilenceOwner
  /** What the statement is, for the error (e.g. "the unlock"). */
  readonly #what: string
  #reject!: (error: unknown) => void

  constructor(running: Promise<readonly Row[]>, owner: SilenceOwner, what: string) {
    this.#owner = owner
    this.#what = what
    this.promise = new Promise((resolve, reject) => {
      this.#reject = reject
      running.then(resolve, reject)
    })
  }

  /** Whether its session is lost or was given up on. */
  get sessionGone(): boolean {
    return this.#owner.gone
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

  /** Its session has answered nothing for `abandonAfterMs`. */
  unanswered(): void {
    this.#reject(this.#owner.unanswered(this.#what))
  }
}

export class SilenceWatch {
  readonly #periodMs: number
  readonly #pending = new Set<WatchedStatement>()
  #timer: ReturnType<typeof setInterval> | undefined
  #ticks = 0

  constructor(abandonAfterMs: number) {
    this.#periodMs = abandonAfterMs / TICKS
  }

  /** Statements in flight. */
  get size(): number {
    return this.#pending.size
  }

  watch(statement: WatchedStatement): void {
    statement.restart(this.#ticks)
    this.#pending.add(statement)
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#tick, this.#periodMs)
      this.#timer.unref?.()
    }
  }

  /** The statement settled (or was given up on). */
  unwatch(statement: WatchedStatement): void {
    this.#pending.delete(statement)
  }

  readonly #tick = (): void => {
    this.#ticks++
    if (this.#pending.size === 0) {
      // Stopped only at a tick that finds nothing in flight: a loop of statements does not re-arm it each time.
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    for (const statement of this.#pending) {
      if (statement.sessionGone) {
        // Queued behind a statement given up on (or on a session lost otherwise): it goes with it.
        this.#pending.delete(statement)
        statement.unanswered()
      } else if (statement.answered) {
        // The session answers (the statement waits its turn behind others there): not silent. It
        // answered after the previous tick (or the statement would have been restarted then).
        statement.restart(this.#ticks - 1)
      } else if (this.#ticks - statement.since > TICKS) {
        // Sent (or last answered) after tick `since`: a whole `abandonAfterMs` has passed since.
        this.#pending.delete(statement)
        statement.unanswered()
      }
    }
  }
}
