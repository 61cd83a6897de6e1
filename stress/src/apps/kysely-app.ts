import { kyselyAdapter } from '@pglock/adapter-kysely'
import { createLocker } from '@pglock/core'
import { Kysely, type Transaction as KyselyTx, PostgresDialect, sql } from 'kysely'
import { counterOf, countOf, LOCKS_HELD, type StressApp, type StressAppOptions } from '../app.js'
import { newPgPool } from './pg-pool.js'

interface KyselySchema {
  pglock_stress_counter: { run: string; key: number; value: number }
}

/** The stress app on Kysely (PostgresDialect over a pg Pool): transactions are `db.transaction()`. */
export function kyselyApp(options: StressAppOptions): StressApp<KyselyTx<KyselySchema>> {
  const pool = newPgPool(options)
  const db = new Kysely<KyselySchema>({ dialect: new PostgresDialect({ pool }) })
  const { run } = options
  return {
    locker: createLocker(kyselyAdapter(db, { pool })),
    read: async (key, tx) =>
      counterOf(
        await (tx ?? db)
          .selectFrom('pglock_stress_counter')
          .select('value')
          .where('run', '=', run)
          .where('key', '=', key)
          .execute(),
        key,
      ),
    async write(key, value, tx) {
      await (tx ?? db)
        .updateTable('pglock_stress_counter')
        .set({ value })
        .where('run', '=', run)
        .where('key', '=', key)
        .execute()
    },
    locksHeld: async (tx) => countOf((await sql.raw<{ n: number }>(LOCKS_HELD).execute(tx)).rows),
    inTransaction: (fn) => db.transaction().execute(fn),
    close: () => db.destroy(),
  }
}
