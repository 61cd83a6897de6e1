/**
 * What an acquire costs on the wire: the statements the core sends and the pool checkouts it makes,
 * counted at the driver. These are the figures `pnpm bench` measures in time; here they are exact.
 */
import { Admin, randomKey } from '@pglock/conformance'
import { createLocker, type LockHandle } from '@pglock/core'
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

/** A locker over a pool whose checkouts and statements are recorded (the statement's function names only). */
function countingLocker(max = 4) {
  const pool = new pg.Pool({ connectionString: url, max })
  pool.on('error', () => {})
  const statements: string[] = []
  let checkouts = 0
  const wrapped = new WeakSet<object>()
  const counting: PgPoolLike = {
    async connect() {
      const client = await pool.connect()
      checkouts++
      if (!wrapped.has(client)) {
        wrapped.add(client)
        const query = client.query.bind(client) as (text: string, values: unknown[]) => Promise<unknown>
        ;(client as unknown as { query: typeof query }).query = (text, values) => {
          statements.push(lockFunction(text))
          return query(text, values)
        }
      }
      return client
    },
  }
  const locker = createLocker(pgAdapter(counting))
  onTestFinished(async () => {
    await locker.close()
    await pool.end()
  })
  return {
    locker,
    /** The statements and checkouts since the last call. */
    take() {
      const taken = { statements: statements.splice(0), checkouts }
      checkouts = 0
      return taken
    },
  }
}

/** The advisory-lock function a statement calls, which is what tells the statements apart. */
function lockFunction(text: string): string {
  return /pg_(try_)?advisory_(un)?lock(_shared)?/.exec(text)?.[0] ?? text
}

describe('round trips per acquire (pg)', () => {
  it('uncontended: acquire + release is one statement each, timed or not, tryAcquire too', async () => {
    const { locker, take } = countingLocker()
    for (const acquire of [
      () => locker.acquire(randomKey()),
      () => locker.acquire(randomKey(), { timeoutMs: 5_000 }),
      () => locker.acquire(randomKey(), { signal: new AbortController().signal }),
      async () => (await locker.tryAcquire(randomKey())) as LockHandle,
    ]) {
      const handle = await acquire()
      await handle.release()
      expect(take()).toEqual({
        statements: ['pg_try_advisory_lock', 'pg_advisory_unlock'],
        checkouts: 1,
      })
    }
  })

  it('locks taken while others are held cost one statement and no checkout', async () => {
    const { locker, take } = countingLocker()
    const first = await locker.acquire(randomKey())
    take()
    const more: LockHandle[] = []
    for (let i = 0; i < 20; i++) more.push(await locker.acquire(randomKey(), { timeoutMs: 1_000 }))
    expect(take()).toEqual({ statements: Array(20).fill('pg_try_advisory_lock'), checkouts: 0 })
    await Promise.all([first, ...more].map((h) => h.release()))
    expect(take().statements).toEqual(Array(21).fill('pg_advisory_unlock'))
  })

  it('contended: a try, then the wait; while the key stays contended, the wait alone', async () => {
    const { locker, take } = countingLocker()
    const key = randomKey()
    const blocker = await admin.hold(key)
    const first = locker.acquire(key)
    setTimeout(() => void blocker.release(), 50)
    await (await first).release()
    expect(take()).toEqual({
      statements: ['pg_try_advisory_lock', 'pg_advisory_lock', 'pg_advisory_unlock'],
      checkouts: 1,
    })
    const again = await locker.acquire(key)
    await again.release()
    expect(take()).toEqual({ statements: ['pg_advisory_lock', 'pg_advisory_unlock'], checkouts: 1 })
    // tryAcquire never waits, so it tries whatever the key's recent history.
    const tried = await locker.tryAcquire(key)
    expect(tried?.held).toBe(true)
    await tried?.release()
    expect(take().statements).toEqual(['pg_try_advisory_lock', 'pg_advisory_unlock'])
  })
})
