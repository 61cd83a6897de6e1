import { appPostgresOptions, type ConformanceHarness } from '@pglock/conformance'
import postgres from 'postgres'
import { type PostgresSqlLike, postgresjsAdapter } from '../src/index.js'

/**
 * The conformance harness for postgres.js: the app's own instance, as an app configures it, with
 * `options` added (`{ prepare: false }` behind a pooler that keeps no prepared statements).
 */
export function postgresjsHarness(
  options: postgres.Options<Record<string, never>> = {},
): ConformanceHarness<PostgresSqlLike> {
  return {
    async create(created) {
      const sql = postgres(created.url, appPostgresOptions(created, options))
      const adapter = postgresjsAdapter(sql)
      return {
        adapter,
        async transaction(fn) {
          // begin's own return type unwraps arrays; the suite wants fn's value as it is.
          const box: { value?: Awaited<ReturnType<typeof fn>> } = {}
          await sql.begin(async (tx) => {
            box.value = await fn(tx, (text) => tx.unsafe(text))
          })
          return box.value as Awaited<ReturnType<typeof fn>>
        },
        async outsideTransaction(fn) {
          // A single connection outside any transaction: the adapter cannot tell, so the server must.
          const reserved = await sql.reserve()
          try {
            return await fn(reserved)
          } finally {
            reserved.release()
          }
        },
        query: (text) => sql.unsafe(text),
        async close() {
          await adapter.close()
          await sql.end()
        },
      }
    },
  }
}
