import { pgAdapter } from '@pglock/adapter-pg'
import { createLocker } from '@pglock/core'
import type pg from 'pg'
import {
  COUNTER_TABLE,
  counterOf,
  countOf,
  LOCKS_HELD,
  type StressApp,
  type StressAppOptions,
} from '../app.js'
import { newPgPool } from './pg-pool.js'

const READ = `SELECT value FROM ${COUNTER_TABLE} WHERE run = $1 AND key = $2`
const WRITE = `UPDATE ${COUNTER_TABLE} SET value = $3 WHERE run = $1 AND key = $2`

/** The stress app on pg (node-postgres): transactions are BEGIN … COMMIT on a pool client. */
export function pgApp(options: StressAppOptions): StressApp<pg.PoolClient> {
  const pool = newPgPool(options)
  const { run } = options
  return {
    locker: createLocker(pgAdapter(pool)),
    read: async (key, tx) => counterOf((await (tx ?? pool).query(READ, [run, key])).rows, key),
    async write(key, value, tx) {
      await (tx ?? pool).query(WRITE, [run, key, value])
    },
    locksHeld: async (tx) => countOf((await tx.query(LOCKS_HELD)).rows),
    async inTransaction(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn(client)
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    close: () => pool.end(),
  }
}
