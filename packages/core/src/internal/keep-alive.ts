import type { Registry } from './registry.js'

/** What the keep-alive asks of a session. */
export interface KeptAlive {
  /** Runs the session's keep-alive if it holds locks; returns whether it holds any. */
  keepAliveTick(): boolean
}

/**
 * The locker's keep-alive (`keepAliveMs`): one interval for all its sessions, running while any of
 * them holds a lock, at each tick of which every session holding locks runs its keep-alive. Not a
 * timer per session: with locks handed from waiter to waiter, each grant would start one.
 */
export class KeepAlive {
  readonly #periodMs: number
  readonly #sessions: Registry<KeptAlive>
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(periodMs: number, sessions: Registry<KeptAlive>) {
    this.#periodMs = periodMs
    this.#sessions = sessions
  }

  /** A session took a lock: keep-alives run until a tick finds no session holding any. */
  holding(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(this.#tick, this.#periodMs)
    // Held locks do not keep the process alive on their own, and neither does their keep-alive.
    this.#timer.unref?.()
  }

  readonly #tick = (): void => {
    let holding = false
    for (const session of this.#sessions.values()) if (session.keepAliveTick()) holding = true
    if (!holding) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
