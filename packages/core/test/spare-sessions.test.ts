/*
 * A session that comes to hold nothing is kept until the end of the turn of the event loop for an
 * acquire that follows at once, unless somebody waits for the pool (Adapter.poolHasWaiters). Checked
 * here against a fake adapter that counts connects and releases and plays the server's part,
 * including a backend that changes between two leases (a pooler in transaction mode).
 */
import { describe, expect, it } from 'vitest'
import { type Adapter, ConnectionLostError, createLocker, type Row } from '../src/index.js'

interface FakeServer {
  adapter: Adapter<never>
  /** Connections lent, and handed back, so far. */
  readonly counts: { connects: number; releases: number }
  /** Of those handed back, how many the core asked to destroy. */
  destroyed: number
  /** The driver's word that the connection lent last has died (its `onLost`). */
  loseLast(cause: Error): void
  /** The backend the next statement runs on. */
  pid: number
  /** What poolHasWaiters() answers; undefined leaves the method out. */
  waiters: boolean | undefined
  /** Keys whose zero-wait tries fail (as if taken elsewhere); their blocking locks are granted. */
  readonly refuseTries: Set<string>
}

function fakeServer(): FakeServer {
  const server: FakeServer = {
    counts: { connects: 0, releases: 0 },
    destroyed: 0,
    loseLast: () => {
      throw new Error('nothing lent yet')
    },
    pid: 1,
    waiters: false,
    refuseTries: new Set(),
    adapter: undefined as never,
  }
  const held = new Map<string, number>()
  const query = async (text: string, params: readonly string[]): Promise<readonly Row[]> => {
    const key = params[0] ?? ''
    if (text.includes('pg_advisory_unlock')) {
      // The guarded unlock: NULL on another backend than the one named.
      if (text.includes('pg_backend_pid() =') && params.at(-1) !== String(server.pid))
        return [{ released: null }]
      const released = held.get(key) === server.pid
      held.delete(key)
      return [{ released }]
    }
    if (text.includes('pg_try_advisory_lock') && server.refuseTries.has(key)) {
      return [{ acquired: false, pid: server.pid }]
    }
    if (text.includes('advisory_lock')) {
      held.set(key, server.pid)
      return [{ acquired: true, pid: server.pid }]
    }
    throw new Error(`the fake server does not know: ${text}`)
  }
  const adapter: Adapter<never> = {
    name: 'fake',
    async connect({ onLost }) {
      server.counts.connects++
      server.loseLast = onLost
      return {
        query,
        async release({ destroy }) {
          server.counts.releases++
          if (destroy) server.destroyed++
        },
      }
    },
    transaction() {
      throw new TypeError('no transactions here')
    },
    sqlState: () => undefined,
    isConnectionError: () => false,
  }
  server.adapter = new Proxy(adapter, {
    get(target, property, receiver) {
      if (property === 'poolHasWaiters') {
        return server.waiters === undefined ? undefined : () => server.waiters
      }
      return Reflect.get(target, property, receiver)
    },
  })
  return server
}

const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('sessions that come to hold nothing', () => {
  it('serve an acquire later in the same turn, and go back to the pool at its end', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    await (await locker.acquire(1n)).release()
    expect(server.counts).toEqual({ connects: 1, releases: 0 })
    await (await locker.acquire(2n)).release()
    expect(server.counts).toEqual({ connects: 1, releases: 0 })
    await endOfTurn()
    expect(server.counts).toEqual({ connects: 1, releases: 1 })
    await (await locker.acquire(3n)).release()
    expect(server.counts).toEqual({ connects: 2, releases: 1 })
    await locker.close()
    expect(server.counts).toEqual({ connects: 2, releases: 2 })
  })

  it('go back at once when somebody waits for the pool, or when the adapter cannot tell', async () => {
    for (const waiters of [true, undefined]) {
      const server = fakeServer()
      server.waiters = waiters
      const locker = createLocker(server.adapter)
      await (await locker.acquire(1n)).release()
      expect(server.counts).toEqual({ connects: 1, releases: 1 })
      await locker.close()
    }
  })

  it('are not reused once their connection died, and go back destroyed', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    await (await locker.acquire(1n)).release()
    expect(server.counts).toEqual({ connects: 1, releases: 0 })
    server.loseLast(new Error('the socket closed'))
    expect(server).toMatchObject({ counts: { connects: 1, releases: 1 }, destroyed: 1 })
    // Later in the same turn: a fresh connection, not the dead spare.
    const handle = await locker.acquire(2n)
    expect(server.counts.connects).toBe(2)
    await handle.release()
    expect(handle.held).toBe(false)
    await endOfTurn()
    // The end of the turn hands back only the live spare: the dead one went back once, already.
    expect(server).toMatchObject({ counts: { connects: 2, releases: 2 }, destroyed: 1 })
    await locker.close()
    expect(server.counts).toEqual({ connects: 2, releases: 2 })
  })

  it('are not taken for a blocking wait once their connection died', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    // A failed try marks the key contended: its next acquire skips the try (and the retry on another
    // connection that comes with it) and takes a session for its wait at once.
    server.refuseTries.add('2')
    await (await locker.acquire(2n)).release()
    expect(server.counts).toEqual({ connects: 1, releases: 0 })
    server.loseLast(new Error('the socket closed'))
    const handle = await locker.acquire(2n)
    expect(server).toMatchObject({ counts: { connects: 2, releases: 1 }, destroyed: 1 })
    await handle.release()
    await locker.close()
    expect(server.counts).toEqual({ connects: 2, releases: 2 })
  })

  it('are handed back by close() before it resolves', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    await (await locker.acquire(1n)).release()
    await locker.close()
    expect(server.counts).toEqual({ connects: 1, releases: 1 })
  })

  it('take their next first lock on whichever backend answers, as a fresh one would', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    await (await locker.acquire(1n)).release()
    // The pooler sends the kept connection's next statement to another backend.
    server.pid = 2
    const handle = await locker.acquire(2n)
    expect(server.counts.connects).toBe(1)
    // Only a move while a lock is held is refused: the unlock must run where the lock was taken.
    const second = await locker.acquire(3n)
    server.pid = 3
    await handle.release()
    expect(handle.signal.reason).toMatchObject({ code: 'LOCK_LOST' })
    await second.release()
    await locker.close()
  })

  it('a kept session whose first lock lands elsewhere than a lock still held there is refused', async () => {
    const server = fakeServer()
    const locker = createLocker(server.adapter)
    const held = await locker.acquire(1n)
    server.pid = 2
    await expect(locker.acquire(2n)).rejects.toBeInstanceOf(ConnectionLostError)
    expect(held.held).toBe(false)
    await locker.close()
  })
})
