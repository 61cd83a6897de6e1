/**
 * Faults that need a server of their own (they would disturb every other test on the shared one).
 * pg is the vehicle; what is tested is the core's handling. Skipped against PGLOCK_TEST_DATABASE_URL,
 * which is the one server every test file shares (and maybe not only the tests).
 */

import { Admin, randomKey, waitFor } from '@pglock/conformance'
import { startTestDatabase, type TestDatabase, testDatabaseSource } from '@pglock/conformance/database'
import { ConnectionLostError, createLocker, LockLostError, LockTableFullError } from '@pglock/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgAdapter } from '../src/index.js'

const source = testDatabaseSource()

// Filling the lock table of a shared server would fail whatever else runs on it meanwhile.
describe.skipIf(source === 'url')('a full lock table (SQLSTATE 53200)', () => {
  let db: TestDatabase
  let admin: Admin
  let pool: pg.Pool

  beforeAll(async () => {
    // A small lock table: max_locks_per_transaction × (max_connections + ...) slots for the server.
    db = await startTestDatabase({ settings: { max_locks_per_transaction: 10, max_connections: 20 } })
    admin = await Admin.connect(db.url)
    pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: 'pglock-exhaustion' })
    pool.on('error', () => {})
  }, 120_000)
  afterAll(async () => {
    await pool?.end()
    await admin?.close()
    await db?.stop()
  })

  it('rejects with LockTableFullError naming max_locks_per_transaction, holding nothing; works again once freed', async () => {
    const locker = createLocker(pgAdapter(pool))
    // Opened first: once the table is full, even a new session cannot start.
    const client = await pool.connect()
    const hog = new pg.Client({ connectionString: db.url, application_name: 'pglock-hog' })
    hog.on('error', () => {})
    await hog.connect()
    // Another session fills the table (its locks up to the failure stay held: drivers.md A8).
    await expect(
      hog.query('SELECT count(pg_advisory_lock(g)) FROM generate_series(1, 1000000) AS g'),
    ).rejects.toThrow(/out of shared memory/)
    const key = randomKey()
    for (const attempt of [
      () => locker.acquire(key),
      () => locker.acquire(key, { timeoutMs: 500 }),
      () => locker.tryAcquire(key),
    ]) {
      const error = await attempt().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(LockTableFullError)
      expect(error).toMatchObject({ code: 'LOCK_TABLE_FULL', name: 'LockTableFullError', key })
      expect(String((error as Error).message)).toMatch(/max_locks_per_transaction/)
      expect((error as Error).cause).toMatchObject({ code: '53200' })
    }
    try {
      await client.query('BEGIN')
      await expect(locker.transaction(client).acquire(key)).rejects.toBeInstanceOf(LockTableFullError)
      await client.query('ROLLBACK')
    } finally {
      client.release()
    }
    // While the table is full even the admin's view of pg_locks fails; free the hog's locks (which
    // does not touch the locker's sessions), then check that the failed calls left nothing held.
    await hog.query('SELECT pg_advisory_unlock_all()')
    await hog.end()
    expect(await admin.heldBy('pglock-exhaustion')).toBe(0)
    expect(await admin.locks(key)).toEqual([])
    const handle = await locker.acquire(key, { timeoutMs: 2_000 })
    expect(handle.held).toBe(true)
    await handle.release()
    await locker.close()
  })
})

// Only an embedded server can be restarted by the tests.
describe.skipIf(source !== 'embedded')('a server restart', () => {
  let db: TestDatabase

  beforeAll(async () => {
    db = await startTestDatabase()
  }, 120_000)
  afterAll(async () => {
    await db?.stop()
  })

  it('reports every held lock lost, rejects every pending wait with ConnectionLostError, and recovers', async () => {
    const pools = [0, 1].map((i) => {
      const pool = new pg.Pool({ connectionString: db.url, max: 6, application_name: `pglock-restart-${i}` })
      pool.on('error', () => {})
      return pool
    })
    const [holder, waiter] = pools.map((pool) => createLocker(pgAdapter(pool)))
    try {
      const keys = [randomKey(), randomKey(), randomKey()]
      const held = await Promise.all(keys.map((key) => holder!.acquire(key)))
      const pending = [
        waiter!.acquire(keys[0]!),
        waiter!.acquire(keys[1]!, { timeoutMs: 60_000 }),
        waiter!.acquire(keys[2]!, { shared: true, signal: new AbortController().signal }),
      ].map((p) =>
        p.then(
          (handle) => ({ status: 'fulfilled' as const, handle }),
          (reason: unknown) => ({ status: 'rejected' as const, reason }),
        ),
      )
      const admin = await Admin.connect(db.url)
      await waitFor(
        'three waits on the server',
        async () => (await admin.waiting('pglock-restart-1')).length === 3,
      )
      await admin.close()

      await db.restart!()

      await waitFor('every held lock to be reported lost', () => held.every((h) => h.signal.aborted))
      for (const handle of held) {
        expect(handle.held).toBe(false)
        expect(handle.signal.reason).toBeInstanceOf(LockLostError)
      }
      for (const outcome of await Promise.all(pending)) {
        expect(outcome.status).toBe('rejected')
        expect((outcome as { reason: unknown }).reason).toBeInstanceOf(ConnectionLostError)
      }
      await Promise.all(held.map((h) => h.release()))
      // Back to normal: the pools open new sessions and the locks are free.
      const again = await Promise.all(keys.map((key) => waiter!.acquire(key, { timeoutMs: 5_000 })))
      expect(await holder!.tryAcquire(keys[0]!)).toBeNull()
      await Promise.all(again.map((h) => h.release()))
      const check = await Admin.connect(db.url)
      expect(await check.heldBy('pglock-restart-0')).toBe(0)
      expect(await check.heldBy('pglock-restart-1')).toBe(0)
      await check.close()
    } finally {
      await holder!.close()
      await waiter!.close()
      await Promise.all(pools.map((pool) => pool.end()))
    }
  }, 60_000)
})
