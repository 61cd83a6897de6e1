/**
 * Transaction-scoped locks on drizzle through PgBouncer in transaction pooling mode
 * (`pnpm test:pgbouncer`): the suite's transaction part on both drivers. On node-postgres the lock
 * statements go through drizzle's `tx.execute` (unnamed statements); on postgres-js through the tx's
 * own `sql`, where the core sends the savepoint, the lock and its release as one simple-protocol query.
 * The app's postgres.js `sql` has `prepare: false`, as PgBouncer before 1.21 keeps no prepared statements.
 */

import { runAdapterConformance } from '@pglock/conformance'
import { TRANSACTION_POOLING_LIMITS, throughPgBouncer } from '@pglock/conformance/pgbouncer'
import { inject } from 'vitest'
import { drizzlePgHarness, drizzlePostgresjsHarness } from '../test/harness.js'

const serverUrl = inject('pglockDatabaseUrl')
const limits = TRANSACTION_POOLING_LIMITS

// Short names: a suite's name goes into application_name, which the server cuts at 63 bytes.
runAdapterConformance({
  name: 'drizzle node-postgres via PgBouncer',
  harness: throughPgBouncer(serverUrl, drizzlePgHarness('0.45')).harness,
  limits,
})

runAdapterConformance({
  name: 'drizzle postgres-js via PgBouncer',
  harness: throughPgBouncer(serverUrl, drizzlePostgresjsHarness('0.45', { prepare: false })).harness,
  limits,
})
