/*
 * sessionPool: the pool of sessions an adapter opens itself (the postgres.js adapter's lock
 * connections). Checked here on fake sessions that record what the pool asks of them; the
 * postgres.js adapter's tests check the same behaviour against a real server.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InvalidOptionsError, type OwnedSession, type SessionPoolOptions, sessionPool } from '../src/index.js'

afterEach(() => {
  vi.useRealTimers()
})

interface Fake extends OwnedSession {
  readonly id: number
  /** The statements it was sent. */
  readonly sent: string[]
  /** What `end` was called with, in order. */
  readonly ended: boolean[]
  /** Reports the session gone, as the adapter would. */
  lose(cause: unknown): void
}

/** A pool over fake sessions; `answers` false makes new sessions answer nothing. */
function pool(options: Partial<SessionPoolOptions> = {}) {
  const made: Fake[] = []
  const settings = { answers: true, fails: false }
  const p = sessionPool({
    name: 'fake',
    max: 2,
    idleTimeoutMs: 1_000,
    open(lost) {
      if (settings.fails) throw new Error('cannot open')
      const answers = settings.answers
      const fake: Fake = {
        id: made.length,
        sent: [],
        ended: [],
        lose: lost,
        query(text) {
          fake.sent.push(text)
          return answers ? Promise.resolve([{ pid: fake.id }]) : new Promise(() => {})
        },
        end(graceful) {
          fake.ended.push(graceful)
          return Promise.resolve()
        },
      }
      made.push(fake)
      return fake
    },
    ...options,
  })
  return { pool: p, made, settings }
}

const onLost = () => {}

describe('sessionPool', () => {
  it('opens sessions with a first statement up to max, lends idle ones last in first out, queues the rest in order', async () => {
    const { pool: p, made } = pool()
    const a = await p.connect({ onLost })
    const b = await p.connect({ onLost })
    expect(made.map((s) => s.sent)).toEqual([
      ['SELECT pg_backend_pid() AS pid'],
      ['SELECT pg_backend_pid() AS pid'],
    ])
    expect(p.poolHasWaiters()).toBe(false)
    const order: string[] = []
    const third = p.connect({ onLost }).then((c) => {
      order.push('third')
      return c
    })
    const fourth = p.connect({ onLost }).then((c) => {
      order.push('fourth')
      return c
    })
    await Promise.resolve()
    expect(p.poolHasWaiters()).toBe(true)
    await b.release({ destroy: false })
    const c = await third
    expect(order).toEqual(['third'])
    // The session b handed back, not a new one.
    expect(made).toHaveLength(2)
    expect(await c.query('SELECT 2', [])).toEqual([{ pid: 1 }])
    await a.release({ destroy: false })
    await fourth
    expect(order).toEqual(['third', 'fourth'])
    expect(p.poolHasWaiters()).toBe(false)
    expect(made).toHaveLength(2)
  })

  it('ends a session handed back with destroy (waiting for the server) and opens a new one for the next connect', async () => {
    const { pool: p, made } = pool({ max: 1 })
    const a = await p.connect({ onLost })
    await a.release({ destroy: true })
    expect(made[0]?.ended).toEqual([true])
    const b = await p.connect({ onLost })
    expect(made).toHaveLength(2)
    await b.release({ destroy: false })
    expect(made[1]?.ended).toEqual([])
  })

  it('a lent session that is lost is reported once; its queries then reject with the cause without reaching it', async () => {
    const { pool: p, made } = pool()
    const lost: unknown[] = []
    const c = await p.connect({ onLost: (cause) => lost.push(cause) })
    const cause = new Error('socket closed')
    made[0]?.lose(cause)
    made[0]?.lose(new Error('again'))
    expect(lost).toEqual([cause])
    await expect(c.query('SELECT 2', [])).rejects.toBe(cause)
    expect(made[0]?.sent).toHaveLength(1)
    // Handed back as the core does after a loss: ended without waiting, never lent again.
    await c.release({ destroy: true })
    expect(made[0]?.ended).toEqual([false])
    await p.connect({ onLost })
    expect(made).toHaveLength(2)
  })

  it('an idle session that is lost is ended at once and never lent again', async () => {
    const { pool: p, made } = pool()
    const c = await p.connect({ onLost: () => expect.unreachable('not lent any more') })
    await c.release({ destroy: false })
    made[0]?.lose(new Error('gone'))
    expect(made[0]?.ended).toEqual([false])
    await p.connect({ onLost })
    expect(made).toHaveLength(2)
  })

  it('ends sessions idle for idleTimeoutMs; one lent again is not ended while lent', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { pool: p, made } = pool({ idleTimeoutMs: 1_000 })
    const a = await p.connect({ onLost })
    await a.release({ destroy: false })
    vi.advanceTimersByTime(900)
    const again = await p.connect({ onLost })
    expect(made).toHaveLength(1)
    vi.advanceTimersByTime(5_000)
    expect(made[0]?.ended).toEqual([])
    await again.release({ destroy: false })
    vi.advanceTimersByTime(999)
    expect(made[0]?.ended).toEqual([])
    vi.advanceTimersByTime(1)
    expect(made[0]?.ended).toEqual([true])
    await p.connect({ onLost })
    expect(made).toHaveLength(2)
  })

  it('a new session that does not answer within openTimeoutMs rejects with CONNECT_TIMEOUT, is ended, and frees its slot', async () => {
    const { pool: p, made, settings } = pool({ max: 1, openTimeoutMs: 50 })
    settings.answers = false
    const started = performance.now()
    await expect(p.connect({ onLost })).rejects.toMatchObject({
      code: 'CONNECT_TIMEOUT',
      message: 'fake: a new lock connection did not answer within its connect timeout (50 ms)',
    })
    expect(performance.now() - started).toBeGreaterThanOrEqual(45)
    expect(made[0]?.ended).toEqual([true])
    settings.answers = true
    const c = await p.connect({ onLost })
    expect(made).toHaveLength(2)
    await c.release({ destroy: false })
  })

  it('a session that cannot be opened rejects the connect with its error and frees its slot', async () => {
    const { pool: p, made, settings } = pool({ max: 1 })
    settings.fails = true
    await expect(p.connect({ onLost })).rejects.toThrow('cannot open')
    settings.fails = false
    await p.connect({ onLost })
    expect(made).toHaveLength(1)
  })

  it('close() ends idle sessions, rejects queued and later connects; sessions handed back afterwards are ended', async () => {
    const { pool: p, made } = pool()
    const a = await p.connect({ onLost })
    const b = await p.connect({ onLost })
    await b.release({ destroy: false })
    await p.connect({ onLost })
    const queued = p.connect({ onLost })
    await p.close()
    await expect(queued).rejects.toThrow('fake adapter: closed (adapter.close() was called)')
    await expect(p.connect({ onLost })).rejects.toThrow('fake adapter: closed')
    await a.release({ destroy: false })
    expect(made[0]?.ended).toEqual([true])
  })

  it('close() while a session opens rejects that connect and ends the session', async () => {
    const { pool: p, made } = pool()
    const opening = p.connect({ onLost })
    await p.close()
    await expect(opening).rejects.toThrow('fake adapter: closed')
    expect(made[0]?.ended).toEqual([true])
  })

  it('lends cancel only when the session has one', async () => {
    const cancel = vi.fn(() => Promise.resolve())
    const plain = await pool().pool.connect({ onLost })
    expect(plain.cancel).toBeUndefined()
    const { pool: p } = pool({
      open: () => ({ query: () => Promise.resolve([]), cancel, end: () => Promise.resolve() }),
    })
    const c = await p.connect({ onLost })
    await c.cancel?.()
    expect(cancel).toHaveBeenCalledOnce()
  })

  it('rejects bad options with InvalidOptionsError', () => {
    const base: SessionPoolOptions = {
      name: 'fake',
      max: 1,
      idleTimeoutMs: 0,
      open: () => expect.unreachable(),
    }
    const cases: [string, Partial<SessionPoolOptions>][] = [
      ['max', { max: 0 }],
      ['max', { max: 1.5 }],
      ['idleTimeoutMs', { idleTimeoutMs: -1 }],
      ['idleTimeoutMs', { idleTimeoutMs: Number.NaN }],
      ['openTimeoutMs', { openTimeoutMs: Number.POSITIVE_INFINITY }],
    ]
    for (const [option, bad] of cases) {
      let thrown: unknown
      try {
        sessionPool({ ...base, ...bad })
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidOptionsError)
      expect((thrown as Error).message).toContain(option)
    }
  })
})
