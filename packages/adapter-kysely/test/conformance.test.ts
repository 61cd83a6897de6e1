import { appPgPool, type ConformanceHarness, runAdapterConformance } from '@pglock/conformance'
import type { Row } from '@pglock/core'
import { Kysely, PostgresDialect, sql } from 'kysely'
import { Kysely as Kysely028, PostgresDialect as PostgresDialect028, sql as sql028 } from 'kysely-0.28'
import { PostgresJSDialect } from 'kysely-postgres-js'
import postgres from 'postgres'
import { type KyselyLike, kyselyAdapter } from '../src/index.js'

type Db = Kysely<unknown> | Kysely028<unknown>

/** Raw SQL through Kysely, as app code runs it. */
async function run(db: Db, text: string): Promise<Row[]> {
  const { rows } =
    db instanceof Kysely ? await sql.raw<Row>(text).execute(db) : await sql028.raw<Row>(text).execute(db)
  return rows
}

/** The app's Kysely over a pg Pool, in one of the Kysely versions under test. */
function pgHarness(version: '0.29' | '0.28'): ConformanceHarness<KyselyLike> {
  return {
    async create(options) {
      const pool = appPgPool(options)
      const db: Db =
        version === '0.29'
          ? new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
          : new Kysely028<unknown>({ dialect: new PostgresDialect028({ pool }) })
      return {
        adapter: kyselyAdapter(db, { pool }),
        transaction: (fn) => db.transaction().execute((trx) => fn(trx, (text) => run(trx, text))),
        // The mistake to catch: the root db (any pool connection) instead of the transaction.
        outsideTransaction: (fn) => fn(db),
        query: (text) => run(db, text),
        close: () => db.destroy(),
      }
    },
  }
}

runAdapterConformance({ name: 'kysely-0.29-pg', harness: pgHarness('0.29') })

runAdapterConformance({
  name: 'kysely-0.28-pg',
  harness: pgHarness('0.28'),
  limits: {
    noTransactionCancel:
      'Kysely 0.28 cannot cancel a query running in a transaction (inflightQueryAbortStrategy came in 0.29)',
  },
})

/** The app's Kysely 0.29 on kysely-postgres-js over a postgres.js `sql`. */
const postgresjsHarness: ConformanceHarness<KyselyLike> = {
  async create({ url, max, applicationName, settings }) {
    const pool = postgres(url, {
      max,
      connection: { application_name: applicationName, ...settings },
      onnotice: () => {},
    })
    const db = new Kysely<unknown>({ dialect: new PostgresJSDialect({ postgres: pool }) })
    const adapter = kyselyAdapter(db, { pool })
    return {
      adapter,
      transaction: (fn) => db.transaction().execute((trx) => fn(trx, (text) => run(trx, text))),
      outsideTransaction: (fn) => fn(db),
      query: (text) => run(db, text),
      async close() {
        // The postgres.js adapter's own idle lock connections, then the app's.
        await adapter.close()
        await db.destroy()
      },
    }
  },
}

runAdapterConformance({
  name: 'kysely-0.29-postgresjs',
  harness: postgresjsHarness,
  limits: {
    noTransactionCancel:
      'kysely-postgres-js cancels through postgres.js query.cancel(), which does not tell when the request reached the server, so it could cancel a later statement of the transaction',
  },
})
