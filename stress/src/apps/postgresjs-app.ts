import { postgresjsAdapter } from '@pglock/adapter-postgresjs'
import { createLocker } from '@pglock/core'
import postgres from 'postgres'
import { counterOf, countOf, LOCKS_HELD, type StressApp, type StressAppOptions } from '../app.js'

/** The stress app on postgres.js: transactions are `sql.begin`. */
export function postgresjsApp({
  url,
  max,
  applicationName,
  run,
}: StressAppOptions): StressApp<postgres.TransactionSql> {
  const sql = postgres(url, { max, connection: { application_name: applicationName }, onnotice: () => {} })
  // Both are tagged-template functions, but TypeScript cannot call a union of their overloaded types.
  const on = (tx: postgres.TransactionSql | undefined): postgres.Sql => (tx ?? sql) as postgres.Sql
  return {
    locker: createLocker(postgresjsAdapter(sql)),
    read: async (key, tx) =>
      counterOf(
        await on(tx)`SELECT value FROM pglock_stress_counter WHERE run = ${run} AND key = ${key}`,
        key,
      ),
    async write(key, value, tx) {
      await on(tx)`UPDATE pglock_stress_counter SET value = ${value} WHERE run = ${run} AND key = ${key}`
    },
    locksHeld: async (tx) => countOf(await tx.unsafe(LOCKS_HELD)),
    async inTransaction(fn) {
      // begin's own return type unwraps arrays; keep fn's value as it is.
      const box: { value?: Awaited<ReturnType<typeof fn>> } = {}
      await sql.begin(async (tx) => {
        box.value = await fn(tx)
      })
      return box.value as Awaited<ReturnType<typeof fn>>
    },
    // locker.close() has closed the adapter's own lock connections; these are the app's.
    close: () => sql.end(),
  }
}
