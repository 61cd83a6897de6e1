/**
 * Transaction-scoped locks on postgres.js through PgBouncer in transaction pooling mode
 * (`pnpm test:pgbouncer`): the suite's transaction part, where the core sends the savepoint, the lock
 * and its release as one simple-protocol query (`sql.begin` cannot tell its state). The app's instance
 * has `prepare: false`, as PgBouncer before 1.21 keeps no prepared statements in this mode.
 */

import { runAdapterConformance } from '@pglock/conformance'
import { TRANSACTION_POOLING_LIMITS, throughPgBouncer } from '@pglock/conformance/pgbouncer'
import { inject } from 'vitest'
import type { PostgresSqlLike } from '../src/index.js'
import { postgresjsHarness } from '../test/harness.js'

const { harness } = throughPgBouncer(inject('pglockDatabaseUrl'), postgresjsHarness({ prepare: false }))

runAdapterConformance<PostgresSqlLike>({
  // Short: the name goes into application_name, which the server cuts at 63 bytes.
  name: 'postgres.js via PgBouncer',
  harness,
  limits: TRANSACTION_POOLING_LIMITS,
})
