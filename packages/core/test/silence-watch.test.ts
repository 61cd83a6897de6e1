/*
 * SilenceWatch: a statement in flight for abandonAfterMs, its session answering nothing, is given up
 * on at the next quarter tick (never before abandonAfterMs, at most 1.25 × it after it was sent); one
 * that settled is not; the interval runs only while statements are in flight. Checked with fake
 * timers; the conformance suite checks tries, releases and keep-alives against a server gone silent.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Row } from '../src/adapter.js'
import { SilenceWatch, WatchedStatement } from '../src/internal/silence-watch.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

/**
 * A statement (never settling on its own by default) whose owner counts its session's answers
 * (`owner.answers++` for one more) and records when (fake Date.now()) it gave the session up, and why.
 */
function statement(running: Promise<readonly Row[]> = new Promise(() => {})) {
  let givenUpAt: number | undefined
  const owner = {
    answers: 0,
    gone: false,
    unanswered(what: string) {
      givenUpAt = Date.now()
      return new Error(`silent: ${what}`)
    },
  }
  const watched = new WatchedStatement(running, owner, 'the unlock')
  watched.promise.catch(() => {})
  return { watched, owner, givenUpAt: () => givenUpAt }
}

describe('SilenceWatch', () => {
  it('gives a statement up at the first tick at least abandonAfterMs after it was sent', () => {
    const watch = new SilenceWatch(400)
    const t0 = Date.now()
    const first = statement()
    watch.watch(first.watched)
    vi.advanceTimersByTime(150)
    // Sent between two ticks: 400 ms after it falls between the 5th and the 6th.
    const second = statement()
    watch.watch(second.watched)
    vi.advanceTimersByTime(349)
    expect(first.givenUpAt()).toBeUndefined()
    vi.advanceTimersByTime(1)
    expect(first.givenUpAt()).toBe(t0 + 500)
    expect(second.givenUpAt()).toBeUndefined()
    vi.advanceTimersByTime(100)
    expect(second.givenUpAt()).toBe(t0 + 600)
    expect(watch.size).toBe(0)
  })

  it('leaves a statement that settled alone, and stops ticking at a tick that finds nothing in flight', () => {
    const watch = new SilenceWatch(400)
    const settled = statement()
    const pending = statement()
    watch.watch(settled.watched)
    watch.watch(pending.watched)
    vi.advanceTimersByTime(300)
    watch.unwatch(settled.watched)
    vi.advanceTimersByTime(200)
    expect(settled.givenUpAt()).toBeUndefined()
    expect(pending.givenUpAt()).toBeDefined()
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(100)
    expect(vi.getTimerCount()).toBe(0)
    // Started again by the next statement, which gets its whole abandonAfterMs.
    const later = statement()
    const t1 = Date.now()
    watch.watch(later.watched)
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(499)
    expect(later.givenUpAt()).toBeUndefined()
    vi.advanceTimersByTime(1)
    expect(later.givenUpAt()).toBe(t1 + 500)
  })

  it('waits as long as the session keeps answering, and gives up abandonAfterMs after its last answer', () => {
    const watch = new SilenceWatch(400)
    const t0 = Date.now()
    // Queued behind other statements on a shared session: each answered within the quarter.
    const queued = statement()
    watch.watch(queued.watched)
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(90)
      queued.owner.answers++
    }
    // The last answer came at t0 + 1800, just after that tick: at least 400 ms of silence (here 500)
    // before the session is given up on.
    vi.advanceTimersByTime(499)
    expect(queued.givenUpAt()).toBeUndefined()
    vi.advanceTimersByTime(1)
    expect(queued.givenUpAt()).toBe(t0 + 2300)
  })

  it('gives a statement up at the first tick after its session was given up on (queued behind one that was)', () => {
    const watch = new SilenceWatch(400)
    const t0 = Date.now()
    const first = statement()
    watch.watch(first.watched)
    vi.advanceTimersByTime(300)
    // Sent 300 ms later on the same (silent) session, behind the first.
    const second = statement()
    watch.watch(second.watched)
    vi.advanceTimersByTime(200)
    expect(first.givenUpAt()).toBe(t0 + 500)
    expect(second.givenUpAt()).toBeUndefined()
    // Its session went with the first: given up at the next tick, not 400 ms after it was sent.
    second.owner.gone = true
    vi.advanceTimersByTime(100)
    expect(second.givenUpAt()).toBe(t0 + 600)
    expect(watch.size).toBe(0)
  })

  it("a statement's promise settles as its statement does, or rejects with its owner's error once given up on", async () => {
    const rows = [{ released: true }]
    await expect(statement(Promise.resolve(rows)).watched.promise).resolves.toBe(rows)
    const failure = new Error('connection ended')
    await expect(statement(Promise.reject(failure)).watched.promise).rejects.toBe(failure)
    const silent = statement()
    silent.watched.unanswered()
    await expect(silent.watched.promise).rejects.toThrow('silent: the unlock')
  })
})
