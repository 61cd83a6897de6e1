import databasesPg, { type Transaction as DatabasesTx, sql as databasesSql } from '@databases/pg'
import { databasesAdapter } from '@pglock/adapter-databases'
import { createLocker } from '@pglock/core'
import { counterOf, countOf, LOCKS_HELD, type StressApp, type StressAppOptions } from '../app.js'

/** Under NodeNext, TypeScript types this CommonJS package's default import as its module object. */
const createConnectionPool = databasesPg.default

/** The stress app on @databases/pg: transactions are `db.tx`. */
export function databasesApp({ url, max, applicationName, run }: StressAppOptions): StressApp<DatabasesTx> {
  // bigIntMode 'number' only silences the deprecation warning of the default: nothing here reads int8.
  const db = createConnectionPool({
    connectionString: url,
    poolSize: max,
    applicationName,
    bigIntMode: 'number',
  })
  return {
    locker: createLocker(databasesAdapter(db)),
    read: async (key, tx) =>
      counterOf(
        await (tx ?? db).query(
          databasesSql`SELECT value FROM pglock_stress_counter WHERE run = ${run} AND key = ${key}`,
        ),
        key,
      ),
    async write(key, value, tx) {
      await (tx ?? db).query(
        databasesSql`UPDATE pglock_stress_counter SET value = ${value} WHERE run = ${run} AND key = ${key}`,
      )
    },
    locksHeld: async (tx) => countOf(await tx.query(databasesSql.__dangerous__rawValue(LOCKS_HELD))),
    inTransaction: (fn) => db.tx(fn),
    close: () => db.dispose(),
  }
}
