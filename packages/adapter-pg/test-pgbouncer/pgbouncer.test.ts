/**
 * Through PgBouncer in transaction pooling mode (`pnpm test:pgbouncer`; CI installs PgBouncer from
 * Debian). Transaction-scoped locks must pass the suite's transaction part; session locks cannot work
 * there, and the core must say so rather than orphan or steal a lock in silence.
 */

import { Admin, randomKey, runAdapterConformance } from '@pglock/conformance'
import { TRANSACTION_POOLING_LIMITS, throughPgBouncer } from '@pglock/conformance/pgbouncer'
import { createLocker, LockLostError, SessionMovedError } from '@pglock/core'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { pgAdapter } from '../src/index.js'
import { pgHarness } from '../test/harness.js'

const serverUrl = inject('pglockDatabaseUrl')
const bouncer = throughPgBouncer(serverUrl, pgHarness)

runAdapterConformance({
  name: 'pg through PgBouncer (transaction pooling)',
  harness: bouncer.harness,
  limits: TRANSACTION_POOLING_LIMITS,
})

describe('session locks through PgBouncer in transaction mode', () => {
  it('an unlock that lands on another backend is refused and reported as a loss, never run there', async () => {
    const admin = await Admin.connect(serverUrl)
    const pool = new pg.Pool({ connectionString: bouncer.url(), max: 4 })
    pool.on('error', () => {})
    const other = new pg.Pool({ connectionString: bouncer.url(), max: 4 })
    other.on('error', () => {})
    try {
      const locker = createLocker(pgAdapter(pool))
      const key = randomKey()
      const handle = await locker.acquire(key)
      const [row] = await admin.locks(key)
      expect(row?.granted).toBe(true)
      // Another client's long statement takes the server session that ran the lock (PgBouncer
      // reuses the most recent one), so the unlock goes to another one.
      const busy = other.query('SELECT pg_sleep(1.5), pg_backend_pid() AS pid')
      await new Promise((resolve) => setTimeout(resolve, 200))
      const [busyRow] = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%' AND state = 'active'`,
      )
      expect(busyRow?.pid).toBe(row?.pid)
      await handle.release()
      expect(handle.held).toBe(false)
      expect(handle.signal.reason).toBeInstanceOf(LockLostError)
      expect((handle.signal.reason as Error).cause).toBeInstanceOf(SessionMovedError)
      // The lock is still on the first server session (the pooler keeps it): pglock did not unlock on
      // a session that was not its own, where the key could have been someone else's lock.
      expect((await admin.locks(key)).map((l) => l.pid)).toEqual([row?.pid])
      await busy
      await locker.close()
    } finally {
      await pool.end()
      await other.end()
      await admin.close()
    }
  })
})
