/*
 * HandOffs: a release of a key that other acquires of the same locker wait for resolves once one of
 * those waits has been answered (two turns later), or after the 1 ms fallback; a key whose releases
 * keep waiting in vain goes quiet for 100 ms. Checked with fake timers; the conformance suite checks
 * the order of a real hand-off on a real server.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { HandOffs } from '../src/internal/hand-offs.js'

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'],
  })
})
afterEach(() => {
  vi.useRealTimers()
})

/** Whether `promise` has settled, once pending microtasks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  void promise.then(() => {
    done = true
  })
  await Promise.resolve()
  await Promise.resolve()
  return done
}

/** Runs the next setImmediate callback due (not those it schedules). */
function turn(): void {
  vi.advanceTimersToNextTimer()
}

/** A release held back until a wait here ends; made with one wait in flight on `id`. */
function heldRelease(handOffs: HandOffs, id = 'k'): Promise<void> {
  const release = handOffs.afterRelease(id)
  if (release === undefined) throw new Error('the release was not held back')
  return release
}

describe('HandOffs', () => {
  it('resolves a release at once when no wait of this locker is in flight on the key', () => {
    const handOffs = new HandOffs()
    expect(handOffs.afterRelease('k')).toBeUndefined()
    handOffs.waitStarted('other')
    expect(handOffs.afterRelease('k')).toBeUndefined()
    handOffs.waitStarted('k')
    handOffs.waitEnded('k')
    expect(handOffs.afterRelease('k')).toBeUndefined()
  })

  it('holds a release back until a wait on the key ends, then two turns more', async () => {
    const handOffs = new HandOffs()
    handOffs.waitStarted('k')
    handOffs.waitStarted('k')
    const release = heldRelease(handOffs)
    expect(await settled(release)).toBe(false)
    handOffs.waitEnded('k')
    expect(await settled(release)).toBe(false)
    turn()
    expect(await settled(release)).toBe(false)
    turn()
    expect(await settled(release)).toBe(true)
  })

  it('a wait ending on another key leaves the release held back', async () => {
    const handOffs = new HandOffs()
    handOffs.waitStarted('k')
    handOffs.waitStarted('other')
    const release = heldRelease(handOffs)
    handOffs.waitEnded('other')
    vi.advanceTimersByTime(0.5)
    expect(await settled(release)).toBe(false)
  })

  it('lets a release go after the 1 ms fallback when no wait here is answered', async () => {
    const handOffs = new HandOffs()
    handOffs.waitStarted('k')
    const release = heldRelease(handOffs)
    vi.advanceTimersByTime(0.5)
    expect(await settled(release)).toBe(false)
    vi.advanceTimersByTime(1.5)
    expect(await settled(release)).toBe(true)
  })

  it('a key whose release waited in vain resolves the next ones at once for 100 ms, then holds back again', async () => {
    const handOffs = new HandOffs()
    handOffs.waitStarted('k')
    const first = heldRelease(handOffs)
    vi.advanceTimersByTime(2)
    expect(await settled(first)).toBe(true)
    expect(handOffs.afterRelease('k')).toBeUndefined()
    vi.advanceTimersByTime(97)
    expect(handOffs.afterRelease('k')).toBeUndefined()
    vi.advanceTimersByTime(2)
    const again = heldRelease(handOffs)
    handOffs.waitEnded('k')
    turn()
    turn()
    expect(await settled(again)).toBe(true)
  })

  it('hand-offs that came here let a late grant now and then go by without going quiet', async () => {
    const handOffs = new HandOffs()
    // Two waits: one stays in flight throughout, as in a busy hand-off.
    handOffs.waitStarted('k')
    handOffs.waitStarted('k')
    // Four hand-offs to a wait here: the credit of one miss.
    for (let i = 0; i < 4; i++) {
      const release = heldRelease(handOffs)
      handOffs.waitEnded('k')
      handOffs.waitStarted('k')
      turn()
      turn()
      expect(await settled(release)).toBe(true)
    }
    const late = heldRelease(handOffs)
    vi.advanceTimersByTime(2)
    expect(await settled(late)).toBe(true)
    // Still held back: the miss was paid for.
    const next = heldRelease(handOffs)
    vi.advanceTimersByTime(2)
    expect(await settled(next)).toBe(true)
    // A second miss without hand-offs in between: quiet.
    expect(handOffs.afterRelease('k')).toBeUndefined()
  })

  it('releaseAll lets every held-back release go at once', async () => {
    const handOffs = new HandOffs()
    handOffs.waitStarted('a')
    handOffs.waitStarted('b')
    const a = heldRelease(handOffs, 'a')
    const b = heldRelease(handOffs, 'b')
    handOffs.releaseAll()
    expect(await settled(a)).toBe(true)
    expect(await settled(b)).toBe(true)
  })

  it('forgets a key once no wait is in flight on it and nothing is held back', () => {
    const handOffs = new HandOffs()
    for (let i = 0; i < 1000; i++) {
      handOffs.waitStarted(`k${i}`)
      handOffs.waitEnded(`k${i}`)
    }
    expect(handOffs.size).toBe(0)
  })

  it('keeps a quiet key while quiet, and sweeps quiet keys nobody waits for once their quiet period is over', async () => {
    const handOffs = new HandOffs()
    for (let i = 0; i < 1100; i++) {
      handOffs.waitStarted(`k${i}`)
      void heldRelease(handOffs, `k${i}`)
    }
    vi.advanceTimersByTime(2)
    for (let i = 0; i < 1100; i++) handOffs.waitEnded(`k${i}`)
    // Quiet: still known (its releases resolve at once when a wait on it starts again).
    expect(handOffs.size).toBe(1100)
    handOffs.waitStarted('k0')
    expect(handOffs.afterRelease('k0')).toBeUndefined()
    vi.advanceTimersByTime(100)
    handOffs.waitStarted('new')
    expect(handOffs.size).toBe(2)
  })
})
