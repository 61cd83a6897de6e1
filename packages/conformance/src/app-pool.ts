import pg from 'pg'
import type { HarnessOptions } from './harness.js'

/**
 * The app's own pg Pool, configured as the suite asks: `max`, `application_name`, and `settings` as
 * `-c name=value` startup options. For the harnesses of every adapter that runs on pg.
 */
export function appPgPool({ url, max, applicationName, settings }: HarnessOptions): pg.Pool {
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
  return pool
}

/**
 * The options of the app's own postgres.js instance (`postgres(url, options)`), configured as the suite
 * asks: `max`, `application_name`, and `settings` as startup parameters, plus `extra` (`{ prepare:
 * false }` behind a pooler that keeps no prepared statements). For the harnesses of every adapter that
 * runs on postgres.js; this package does not load postgres.js itself.
 */
export function appPostgresOptions<Extra extends object>(
  { max, applicationName, settings }: HarnessOptions,
  extra: Extra,
) {
  return {
    ...extra,
    max,
    connection: { application_name: applicationName, ...settings },
    onnotice: () => {},
  }
}
