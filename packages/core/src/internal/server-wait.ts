import type { Row } from '../adapter.js'
import { MAX_TIMEOUT_MS } from '../options.js'
import type { Statement } from '../sql.js'
import { noop, type Operation } from './operation.js'

/** Something the core can wait on and cancel: a lent session or a caller's transaction. */
export interface Waitable {
  query(statement: Statement): Promise<readonly Row[]>
  cancel(): Promise<void>
  /**
   * Gives up on the statement: the cancel could not be delivered, or the server stays silent. Returns
   * true when the caller may stop waiting for it at once (a lent session is discarded and cleaned in
   * the background); false when it must wait for the statement to end (the caller's own transaction
   * cannot be discarded).
   */
  abandon(): boolean
}

/**
 * A statement that may wait on the server. When the operation aborts, the statement is cancelled on
 * the server, and `promise` settles only once the cancel was delivered (nothing else may be sent
 * before). A server that stays silent for `graceMs` past the deadline or the abort (a stopped
 * backend, a network partition) is given up on where the target allows it (a lent session is
 * destroyed): `promise` then rejects with the operation's reason.
 *
 * One object, its promise and two handlers per wait: this runs on every contended acquire.
 */
export class ServerWait {
  /** Settles with the statement's outcome (see the class comment). */
  readonly promise: Promise<readonly Row[]>
  readonly #target: Waitable
  readonly #op: Operation
  readonly #graceMs: number
  #resolve!: (rows: readonly Row[]) => void
  #reject!: (error: unknown) => void
  #settled = false
  #abandoned = false
  #stall: ReturnType<typeof setTimeout> | undefined
  #cancelling: Promise<void> | undefined

  /** Sends `statement` (the caller checked that `op` has not aborted). */
  constructor(target: Waitable, statement: Statement, op: Operation, graceMs: number) {
    this.#target = target
    this.#op = op
    this.#graceMs = graceMs
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    target.query(statement).then(this.#onRows, this.#onError)
    // The server ends a timed wait itself (lock_timeout); this timer only catches one that never says so.
    const remaining = op.remainingMs()
    if (remaining !== undefined) {
      this.#stall = setTimeout(
        giveUpIfSilent,
        Math.min(Math.max(remaining, 0) + graceMs, MAX_TIMEOUT_MS),
        this,
      )
      this.#stall.unref?.()
    }
    op.onAbort(this)
    if (op.aborted) this.operationAborted()
  }

  readonly #onRows = (rows: readonly Row[]): void => {
    if (this.#end()) this.#resolve(rows)
    else void (this.#cancelling as Promise<void>).then(() => this.#resolve(rows))
  }

  readonly #onError = (error: unknown): void => {
    if (this.#end()) this.#reject(error)
    else void (this.#cancelling as Promise<void>).then(() => this.#reject(error))
  }

  /** The statement settled: stops listening; false when a cancel is still on its way (wait for it). */
  #end(): boolean {
    this.#settled = true
    clearTimeout(this.#stall)
    this.#op.offAbort(this)
    // A cancel to a server given up on may never be answered: nothing waits for it then.
    return this.#cancelling === undefined || this.#abandoned
  }

  /** The operation aborted: cancel the statement, and give up on it if the server stays silent. */
  operationAborted(): void {
    clearTimeout(this.#stall)
    this.#stall = setTimeout(giveUpIfSilent, this.#graceMs, this)
    this.#stall.unref?.()
    this.#cancelling = this.#cancelUntilSettled().catch(() => {
      if (!this.#abandoned && this.#target.abandon()) {
        this.#abandoned = true
        this.#reject(this.#op.reason)
      }
    })
  }

  /**
   * A cancel that reaches the backend before the statement does is ignored by the server (it discards
   * cancels while idle), so keep cancelling, backing off, until the statement settles.
   */
  async #cancelUntilSettled(): Promise<void> {
    const done = this.promise.then(noop, noop)
    for (let pause = 20; !this.#settled && !this.#abandoned; pause = Math.min(pause * 2, 1_000)) {
      await this.#target.cancel()
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, pause)))])
      clearTimeout(timer)
    }
  }

  /** The server has said nothing for `graceMs` past the deadline or the abort. */
  giveUpIfSilent(): void {
    if (this.#settled || this.#abandoned) return
    this.#abandoned = this.#target.abandon()
    if (!this.#op.aborted) {
      this.#op.expire(
        new Error(
          `pglock: the server did not answer within ${this.#graceMs} ms of the deadline (lock_timeout)`,
        ),
      )
    }
    if (this.#abandoned) this.#reject(this.#op.reason)
  }
}

function giveUpIfSilent(wait: ServerWait): void {
  wait.giveUpIfSilent()
}
