/**
 * Faults that need a server of their own (they would disturb every other test on the shared one).
 * pg is the vehicle; what is tested is the core's handling.
 */

import { Admin, randomKey } from '@pglock/conformance'
import { startTestDatabase, type TestDatabase } from '@pglock/conformance/database'
import { createLocker, LockTableFullError } from '@pglock/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgAdapter } from '../src/index.js'

describe('a full lock table (SQLSTATE 53200)', () => {
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
    expect(await hog.query('SELECT pg_advisory_unlock_all()')).toBeTruthy()
    await hog.end()
    expect(await admin.heldBy('pglock-exhaustion')).toBe(0)
    expect(await admin.locks(key)).toEqual([])
    const handle = await locker.acquire(key, { timeoutMs: 2_000 })
    expect(handle.held).toBe(true)
    await handle.release()
    await locker.close()
  })
})
