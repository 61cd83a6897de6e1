import { Admin, randomKey, SilentProxy } from '@pglock/conformance'
import { createLocker, LockLostError, LockTimeoutError, NotInTransactionError } from '@pglock/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type PgPoolLike, pgAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

function newPool(max = 2): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max })
  pool.on('error', () => {})
  onTestFinished(() => pool.end())
  return pool
}

/** A pool that remembers the clients it lends, so a test can act behind the library's back. */
function spyingPool(pool: pg.Pool): { pool: PgPoolLike; lent: pg.PoolClient[] } {
  const lent: pg.PoolClient[] = []
  return {
    lent,
    pool: {
      async connect() {
        const client = await pool.connect()
        lent.push(client)
        return client
      },
    },
  }
}

describe('pg adapter', () => {
  it('an unlock that finds nothing to unlock reports the lock lost and discards the connection', async () => {
    const spy = spyingPool(newPool())
    const locker = createLocker(pgAdapter(spy.pool))
    const key = randomKey()
    const handle = await locker.acquire(key)
    const client = spy.lent.at(-1)!
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
    // Something else on that session frees the lock (a stray unlock_all, a pooler's DISCARD ALL...).
    await client.query('SELECT pg_advisory_unlock_all()')
    await handle.release()
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    expect(String(handle.signal.reason.message)).toMatch(/pg_advisory_unlock returned false/)
    await expect
      .poll(async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length)
      .toBe(0)
    await expect(
      locker.withLock(key, async () => {
        await spy.lent.at(-1)!.query('SELECT pg_advisory_unlock_all()')
        return 'done'
      }),
    ).rejects.toBeInstanceOf(LockLostError)
    await locker.close()
  })

  it('tries given up on a silent backend that holds nothing else destroy its client: the pool ends while the server is still silent', async () => {
    const proxy = await SilentProxy.start(url)
    onTestFinished(() => proxy.close())
    const pool = new pg.Pool({ connectionString: proxy.url, max: 2 })
    pool.on('error', () => {})
    const locker = createLocker(pgAdapter(pool), { abandonAfterMs: 200 })
    await (await locker.acquire(randomKey())).release()
    // Back in the pool at the end of the turn.
    await new Promise((resolve) => setImmediate(resolve))
    expect(pool.idleCount).toBe(1)
    // That backend stops: the next acquires' tries, both on the idle client, are never answered.
    proxy.silenceExisting()
    const outcomes = await Promise.allSettled([
      locker.acquire(randomKey(), { timeoutMs: 100 }),
      locker.acquire(randomKey(), { timeoutMs: 150 }),
    ])
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected')
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockTimeoutError)
    }
    await locker.close()
    expect(pool.totalCount).toBe(0)
    await pool.end()
  })

  it('a client freed by a release goes back to the pool at the end of the turn, or at once to a waiter', async () => {
    const pool = newPool(1)
    const locker = createLocker(pgAdapter(pool))
    await (await locker.acquire(randomKey())).release()
    // Kept for an acquire later in this turn of the event loop…
    expect(pool.idleCount).toBe(0)
    await new Promise((resolve) => setImmediate(resolve))
    // …and back in the pool after it.
    expect([pool.totalCount, pool.idleCount]).toEqual([1, 1])
    // The app waits for the pool's only client while a lock holds it: the release hands the client
    // to the app, and the acquire that follows in the same turn waits its turn in the pool.
    const held = await locker.acquire(randomKey())
    const app = pool.query('SELECT 1')
    expect(pool.waitingCount).toBe(1)
    await held.release()
    const next = locker.acquire(randomKey())
    const first = await Promise.race([app.then(() => 'app'), next.then(() => 'lock')])
    await (await next).release()
    await app
    expect(first).toBe('app')
    // close() right after a release hands the kept client back before it resolves.
    await (await locker.acquire(randomKey())).release()
    await locker.close()
    expect([pool.totalCount, pool.idleCount]).toEqual([1, 1])
  })

  it('keeps no listeners behind: an error listener only while a client is lent', async () => {
    const pool = newPool(1)
    const spy = spyingPool(pool)
    const locker = createLocker(pgAdapter(spy.pool))
    const first = await locker.acquire(randomKey())
    const client = spy.lent[0]!
    expect(client.listenerCount('error')).toBeGreaterThanOrEqual(1)
    await first.release()
    const idleErrorListeners = client.listenerCount('error')
    const idleEndListeners = client.listenerCount('end')
    for (let i = 0; i < 30; i++) await (await locker.acquire(randomKey())).release()
    expect(new Set(spy.lent)).toEqual(new Set([client]))
    expect(client.listenerCount('error')).toBe(idleErrorListeners)
    expect(client.listenerCount('end')).toBe(idleEndListeners)
    await locker.close()
  })

  it('without getTransactionStatus (pg < 8.21) it probes with a savepoint: refuses outside BEGIN, locks inside', async () => {
    const pool = newPool()
    const locker = createLocker(pgAdapter(pool))
    const key = randomKey()
    const client = await pool.connect()
    onTestFinished(() => client.release())
    // The client as older pg versions shape it.
    const oldClient = {
      query: client.query.bind(client),
      on: client.on.bind(client),
      removeListener: client.removeListener.bind(client),
    }
    const tl = locker.transaction(oldClient as unknown as pg.PoolClient)
    await expect(tl.acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await expect(tl.tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    expect(await admin.locks(key)).toEqual([])
    await client.query('BEGIN')
    await tl.acquire(key)
    expect(await tl.tryAcquire(randomKey(), { shared: true })).toBe(true)
    await tl.acquire(randomKey(), { timeoutMs: 500 })
    expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
    await client.query('COMMIT')
    expect(await admin.locks(key)).toEqual([])
  })

  it('refuses a pool as a transaction without sending anything', async () => {
    const pool = newPool()
    const locker = createLocker(pgAdapter(pool))
    await expect(locker.transaction(pool as never).acquire(randomKey())).rejects.toBeInstanceOf(
      NotInTransactionError,
    )
    expect(pool.totalCount).toBe(0)
  })

  it('rejects things that are not a pool or a client with a TypeError', async () => {
    expect(() => pgAdapter({} as never)).toThrow(TypeError)
    const locker = createLocker(pgAdapter(newPool()))
    await expect(locker.transaction({} as never).acquire(randomKey())).rejects.toBeInstanceOf(TypeError)
  })
})

describe('usage shapes from the API', () => {
  it('`await using` releases the lock at the end of the block', async () => {
    const locker = createLocker(pgAdapter(newPool()))
    const key = randomKey()
    {
      await using lock = await locker.acquire(key, { timeoutMs: 5_000 })
      expect(lock.held).toBe(true)
      expect(await admin.locks(key)).toHaveLength(1)
    }
    expect(await admin.locks(key)).toEqual([])
    await locker.close()
  })
})

describe('connections that cannot be destroyed (the core cleans them)', () => {
  it('a discarded session is cleaned with unlock_all and goes back to the pool holding nothing', async () => {
    const spy = spyingPool(newPool(1))
    const inner = pgAdapter(spy.pool)
    const releases: boolean[] = []
    // The shape of a driver without destroy (@databases/pg): every connection goes back to the pool.
    const adapter: typeof inner = {
      ...inner,
      async connect(options) {
        const conn = await inner.connect(options)
        return {
          query: conn.query,
          destroyable: false,
          release: ({ destroy }) => {
            releases.push(destroy)
            return conn.release({ destroy: false })
          },
        }
      },
    }
    const locker = createLocker(adapter)
    const [lost, stray] = [randomKey(), randomKey()]
    const handle = await locker.acquire(lost)
    const client = spy.lent[0]!
    // Behind the library's back: drop its lock and take another one on the same session.
    await client.query('SELECT pg_advisory_unlock_all()')
    await client.query('SELECT pg_advisory_lock($1::bigint)', [
      String(stray.kind === 'bigint' ? stray.key : 0),
    ])
    expect(await admin.locks(stray)).toHaveLength(1)
    await handle.release()
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    // The core ran ROLLBACK + pg_advisory_unlock_all() and then released it as clean.
    expect(releases).toEqual([false])
    expect(await admin.locks(stray)).toEqual([])
    const next = await locker.acquire(randomKey())
    expect(spy.lent.at(-1)).toBe(client)
    await next.release()
    await locker.close()
  })
})
