import pg from 'pg'
import type { StressAppOptions } from '../app.js'

/** The app's pg Pool (for the pg, Kysely and Drizzle apps). */
export function newPgPool({ url, max, applicationName }: StressAppOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName })
  // What every app with a pg.Pool should do: idle clients can die too.
  pool.on('error', () => {})
  return pool
}
