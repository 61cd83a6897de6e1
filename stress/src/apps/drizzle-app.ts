import { drizzleAdapter } from '@pglock/adapter-drizzle'
import { createLocker } from '@pglock/core'
import { sql as drizzleSql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { counterOf, countOf, LOCKS_HELD, type StressApp, type StressAppOptions } from '../app.js'
import { newPgPool } from './pg-pool.js'

/** The stress app on Drizzle (node-postgres driver over a pg Pool): transactions are `db.transaction`. */
export function drizzleApp(options: StressAppOptions) {
  const pool = newPgPool(options)
  const db = drizzle({ client: pool })
  type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0]
  const { run } = options
  const app: StressApp<Tx> = {
    locker: createLocker(drizzleAdapter(db)),
    read: async (key, tx) =>
      counterOf(
        (
          await (tx ?? db).execute(
            drizzleSql`SELECT value FROM pglock_stress_counter WHERE run = ${run} AND key = ${key}`,
          )
        ).rows,
        key,
      ),
    async write(key, value, tx) {
      await (tx ?? db).execute(
        drizzleSql`UPDATE pglock_stress_counter SET value = ${value} WHERE run = ${run} AND key = ${key}`,
      )
    },
    locksHeld: async (tx) => countOf((await tx.execute(drizzleSql.raw(LOCKS_HELD))).rows),
    inTransaction: (fn) => db.transaction(fn),
    close: () => pool.end(),
  }
  return app
}
