import type { ConformanceHarness } from '@pglock/conformance'
import pg from 'pg'
import { pgAdapter } from '../src/index.js'

/** The conformance harness for pg: the app's own pg.Pool, as an app configures it. */
export const pgHarness: ConformanceHarness<pg.PoolClient> = {
  async create({ url, max, applicationName, settings }) {
    const options = settings
      ? Object.entries(settings)
          .map(([name, value]) => `-c ${name}=${value}`)
          .join(' ')
      : undefined
    const pool = new pg.Pool({
      connectionString: url,
      max,
      application_name: applicationName,
      ...(options === undefined ? {} : { options }),
    })
    // What every app with a pg.Pool should do: idle clients can die too.
    pool.on('error', () => {})
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
