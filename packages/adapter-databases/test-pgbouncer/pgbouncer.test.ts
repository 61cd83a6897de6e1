/**
 * Transaction-scoped locks on @databases/pg through PgBouncer in transaction pooling mode
 * (`pnpm test:pgbouncer`): the suite's transaction part, aborts included (the cancel is a protocol
 * CancelRequest from the pg client @databases keeps, which PgBouncer forwards).
 */

import { runAdapterConformance } from '@pglock/conformance'
import { TRANSACTION_POOLING_LIMITS, throughPgBouncer } from '@pglock/conformance/pgbouncer'
import { inject } from 'vitest'
import { databasesHarness } from '../test/harness.js'

runAdapterConformance({
  name: '@databases/pg via PgBouncer',
  harness: throughPgBouncer(inject('pglockDatabaseUrl'), databasesHarness).harness,
  limits: TRANSACTION_POOLING_LIMITS,
})
