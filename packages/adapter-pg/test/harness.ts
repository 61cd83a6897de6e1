import { appPgPool, type ConformanceHarness } from '@pglock/conformance'
import type pg from 'pg'
import { pgAdapter } from '../src/index.js'

/** The conformance harness for pg: the app's own pg.Pool, as an app configures it. */
export const pgHarness: ConformanceHarness<pg.PoolClient> = {
  async create(options) {
    const pool = appPgPool(options)
    return {
      adapter: pgAdapter(pool),
      async transaction(fn) {
        const client = await pool.connect()
        try {
          await client.query('BEGIN')
          const result = await fn(client, async (sql) => (await client.query(sql)).rows)
          await client.query('COMMIT')
          return result
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          throw error
        } finally {
          client.release()
        }
      },
      async outsideTransaction(fn) {
        const client = await pool.connect()
        try {
          return await fn(client)
        } finally {
          client.release()
        }
      },
      query: async (sql) => (await pool.query(sql)).rows,
      close: () => pool.end(),
    }
  },
}
