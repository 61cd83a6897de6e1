import createConnectionPool, { type Queryable } from '@databases/pg'
import type { ConformanceHarness } from '@pglock/conformance'
import { databasesAdapter } from '../src/index.js'

/** The pool options @databases/pg has for the session settings the suite asks for. */
const SETTING_OPTIONS = {
  lock_timeout: 'lockTimeoutMilliseconds',
  statement_timeout: 'statementTimeoutMilliseconds',
  idle_in_transaction_session_timeout: 'idleInTransactionSessionTimeoutMilliseconds',
} as const

function milliseconds(value: string): number {
  const match = /^(\d+)\s*(ms|s|min)?$/.exec(value)
  if (match === null) throw new Error(`harness: cannot express ${value} in milliseconds`)
  return Number(match[1]) * (match[2] === 's' ? 1_000 : match[2] === 'min' ? 60_000 : 1)
}

/** The conformance harness for @databases/pg: the app's own connection pool, as an app configures it. */
export const databasesHarness: ConformanceHarness<Queryable> = {
  async create({ url, max, applicationName, settings = {} }) {
    const timeouts = Object.fromEntries(
      Object.entries(settings).map(([name, value]) => {
        const option = SETTING_OPTIONS[name as keyof typeof SETTING_OPTIONS]
        if (option === undefined) throw new Error(`harness: @databases/pg cannot set ${name}`)
        return [option, milliseconds(value)]
      }),
    )
    // bigIntMode 'number' is today's default (lossy numbers), set explicitly only to silence the
    // deprecation warning: pglock never reads int8.
    const db = createConnectionPool.default({
      connectionString: url,
      bigIntMode: 'number',
      poolSize: max,
      applicationName,
      ...timeouts,
    })
    return {
      adapter: databasesAdapter(db),
      transaction: (fn) => db.tx((tx) => fn(tx, (text) => tx.query(tx.sql.__dangerous__rawValue(text)))),
      outsideTransaction: (fn) => db.task((conn) => fn(conn)),
      query: (text) => db.query(db.sql.__dangerous__rawValue(text)),
      close: () => db.dispose(),
    }
  },
}
