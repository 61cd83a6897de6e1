/*
 * KeepAlive: one interval per locker, started by the first session to hold a lock, ticking every
 * keepAliveMs over the sessions, and stopped at a tick that finds none holding anything. Checked with
 * fake timers; the conformance suite checks keep-alives against a real server (idle_session_timeout,
 * a server gone silent).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { KeepAlive, type KeptAlive } from '../src/internal/keep-alive.js'
import { Registry } from '../src/internal/registry.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
})
afterEach(() => {
  vi.useRealTimers()
})

/** A session holding `holds` locks that counts its keep-alives. */
function session(holds: number) {
  const s = {
    holds,
    keptAlive: 0,
    keepAliveTick() {
      if (s.holds === 0) return false
      s.keptAlive++
      return true
    },
  }
  return s
}

describe('KeepAlive', () => {
  it('ticks every keepAliveMs over the sessions holding locks while any holds one, then stops until the next', () => {
    const sessions = new Registry<KeptAlive>()
    const keepAlive = new KeepAlive(100, sessions)
    const holding = session(2)
    const idle = session(0)
    sessions.add(holding)
    sessions.add(idle)
    expect(vi.getTimerCount()).toBe(0)
    keepAlive.holding()
    keepAlive.holding()
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(350)
    expect(holding.keptAlive).toBe(3)
    expect(idle.keptAlive).toBe(0)
    // Released: the next tick finds nothing held and stops.
    holding.holds = 0
    vi.advanceTimersByTime(100)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(1_000)
    expect(holding.keptAlive).toBe(3)
    // A lock taken again starts it again.
    idle.holds = 1
    keepAlive.holding()
    vi.advanceTimersByTime(100)
    expect(idle.keptAlive).toBe(1)
    expect(vi.getTimerCount()).toBe(1)
  })
})
