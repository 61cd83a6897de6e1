import { appPgPool, appPostgresOptions, type ConformanceHarness } from '@pglock/conformance'
import type { Row } from '@pglock/core'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePjs } from 'drizzle-orm/postgres-js'
import { drizzle as drizzleRc } from 'drizzle-orm-1-rc/node-postgres'
import { drizzle as drizzlePjsRc } from 'drizzle-orm-1-rc/postgres-js'
import postgres from 'postgres'
import { type DrizzleTransactionLike, drizzleAdapter } from '../src/index.js'

/** The drizzle-orm versions under test: the current release and the 1.0 candidate. */
export type DrizzleVersion = '0.45' | '1-rc'

/** drizzle's execute() resolves with a pg QueryResult on node-postgres, a row list on postgres-js. */
const rowsOf = (result: unknown): readonly Row[] =>
  Array.isArray(result) ? [...result] : (result as { rows: Row[] }).rows

/** The slice of a drizzle database (or tx) the harness uses; execute takes raw SQL as each version spells it. */
interface Db {
  readonly $client: unknown
  execute(query: never): PromiseLike<unknown>
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>
}

/** Raw SQL as app code passes it to `execute`: an `sql.raw` chunk in 0.45, a plain string in 1.0. */
function rawSql(version: DrizzleVersion, text: string): never {
  return (version === '0.45' ? sql.raw(text) : text) as never
}

/** The harness's side of a drizzle db: transactions, the root db, raw queries. */
function sides(db: Db, version: DrizzleVersion) {
  const run = async (target: Db, text: string) => rowsOf(await target.execute(rawSql(version, text)))
  return {
    transaction: <T>(
      fn: (tx: DrizzleTransactionLike, run: (text: string) => Promise<readonly Row[]>) => Promise<T>,
    ) => db.transaction((tx) => fn(tx, (text) => run(tx, text))),
    // The mistake to catch: the root db (any pool connection) instead of the transaction.
    outsideTransaction: <T>(fn: (tx: DrizzleTransactionLike) => Promise<T>) => fn(db),
    query: (text: string) => run(db, text),
  }
}

/** drizzle on node-postgres over the app's pg.Pool. */
export function drizzlePgHarness(version: DrizzleVersion): ConformanceHarness<DrizzleTransactionLike> {
  return {
    async create(options) {
      const pool = appPgPool(options)
      const db = (version === '0.45'
        ? drizzle({ client: pool })
        : drizzleRc({ client: pool })) as unknown as Db
      return { adapter: drizzleAdapter(db), ...sides(db, version), close: () => pool.end() }
    },
  }
}

/**
 * drizzle on postgres-js over the app's postgres.js `sql` (settings as startup parameters), with
 * `options` added (`{ prepare: false }` behind a pooler that keeps no prepared statements).
 */
export function drizzlePostgresjsHarness(
  version: DrizzleVersion,
  options: postgres.Options<Record<string, never>> = {},
): ConformanceHarness<DrizzleTransactionLike> {
  return {
    async create(created) {
      const client = postgres(created.url, appPostgresOptions(created, options))
      const db = (version === '0.45' ? drizzlePjs({ client }) : drizzlePjsRc({ client })) as unknown as Db
      const adapter = drizzleAdapter(db)
      return {
        adapter,
        ...sides(db, version),
        async close() {
          // The adapter's own lock connections first (the locker is closed by then), then the app's.
          await adapter.close()
          await client.end()
        },
      }
    },
  }
}
