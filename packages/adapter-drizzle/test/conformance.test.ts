import { appPgPool, type HarnessOptions, runAdapterConformance } from '@pglock/conformance'
import type { Row } from '@pglock/core'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePjs } from 'drizzle-orm/postgres-js'
import { drizzle as drizzleRc } from 'drizzle-orm-1-rc/node-postgres'
import { drizzle as drizzlePjsRc } from 'drizzle-orm-1-rc/postgres-js'
import postgres from 'postgres'
import { type DrizzleTransactionLike, drizzleAdapter } from '../src/index.js'

/** The app's postgres.js sql, configured as the suite asks (settings as startup parameters). */
function newSql({ url, max, applicationName, settings }: HarnessOptions): postgres.Sql {
  return postgres(url, {
    max,
    connection: { application_name: applicationName, ...settings },
    onnotice: () => {},
  })
}

/** drizzle's execute() resolves with a pg QueryResult on node-postgres, a row list on postgres-js. */
const rowsOf = (result: unknown): readonly Row[] =>
  Array.isArray(result) ? [...result] : (result as { rows: Row[] }).rows

runAdapterConformance<DrizzleTransactionLike>({
  name: 'drizzle 0.45 node-postgres',
  harness: {
    async create(options) {
      const pool = appPgPool(options)
      const db = drizzle({ client: pool })
      return {
        adapter: drizzleAdapter(db),
        transaction: (fn) =>
          db.transaction((tx) => fn(tx, async (text) => rowsOf(await tx.execute(sql.raw(text))))),
        outsideTransaction: (fn) => fn(db),
        query: async (text) => rowsOf(await db.execute(sql.raw(text))),
        close: () => pool.end(),
      }
    },
  },
})

runAdapterConformance<DrizzleTransactionLike>({
  name: 'drizzle 1.0.0-rc.4 node-postgres',
  harness: {
    async create(options) {
      const pool = appPgPool(options)
      const db = drizzleRc({ client: pool })
      return {
        adapter: drizzleAdapter(db),
        transaction: (fn) => db.transaction((tx) => fn(tx, async (text) => rowsOf(await tx.execute(text)))),
        outsideTransaction: (fn) => fn(db),
        query: async (text) => rowsOf(await db.execute(text)),
        close: () => pool.end(),
      }
    },
  },
})

runAdapterConformance<DrizzleTransactionLike>({
  name: 'drizzle 0.45 postgres-js',
  harness: {
    async create(options) {
      const client = newSql(options)
      const db = drizzlePjs({ client })
      const adapter = drizzleAdapter(db)
      return {
        adapter,
        transaction: (fn) =>
          db.transaction((tx) => fn(tx, async (text) => rowsOf(await tx.execute(sql.raw(text))))),
        outsideTransaction: (fn) => fn(db),
        query: async (text) => rowsOf(await db.execute(sql.raw(text))),
        async close() {
          // The adapter's own lock connections first (the locker is closed by then), then the app's.
          await adapter.close()
          await client.end()
        },
      }
    },
  },
})

runAdapterConformance<DrizzleTransactionLike>({
  name: 'drizzle 1.0.0-rc.4 postgres-js',
  harness: {
    async create(options) {
      const client = newSql(options)
      const db = drizzlePjsRc({ client })
      const adapter = drizzleAdapter(db)
      return {
        adapter,
        transaction: (fn) => db.transaction((tx) => fn(tx, async (text) => rowsOf(await tx.execute(text)))),
        outsideTransaction: (fn) => fn(db),
        query: async (text) => rowsOf(await db.execute(text)),
        async close() {
          // The adapter's own lock connections first (the locker is closed by then), then the app's.
          await adapter.close()
          await client.end()
        },
      }
    },
  },
})
