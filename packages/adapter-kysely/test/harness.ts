import { appPgPool, appPostgresOptions, type ConformanceHarness } from '@pglock/conformance'
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
export function kyselyPgHarness(version: '0.29' | '0.28'): ConformanceHarness<KyselyLike> {
  return {
    async create(created) {
      const pool = appPgPool(created)
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

/**
 * The app's Kysely 0.29 on kysely-postgres-js over a postgres.js `sql`, with `options` added to that
 * `sql` (`{ prepare: false }` behind a pooler that keeps no prepared statements).
 */
export function kyselyPostgresjsHarness(
  options: postgres.Options<Record<string, never>> = {},
): ConformanceHarness<KyselyLike> {
  return {
    async create(created) {
      const pool = postgres(created.url, appPostgresOptions(created, options))
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
}
