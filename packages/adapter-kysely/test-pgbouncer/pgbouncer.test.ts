/**
 * Transaction-scoped locks on Kysely through PgBouncer in transaction pooling mode
 * (`pnpm test:pgbouncer`): the suite's transaction part on both dialects. The lock statements go
 * through the transaction's own `executeQuery`; Kysely cannot tell the transaction's state, so the
 * core probes with a savepoint. Those statements are never prepared on pg; the app's postgres.js `sql`
 * has `prepare: false`, as PgBouncer before 1.21 keeps no prepared statements in this mode. The aborts
 * are left out: Kysely on pg cannot cancel a wait through the pooler, kysely-postgres-js cannot anywhere.
 */

import { runAdapterConformance } from '@pglock/conformance'
import { TRANSACTION_POOLING_LIMITS, throughPgBouncer } from '@pglock/conformance/pgbouncer'
import { inject } from 'vitest'
import { kyselyPgHarness, kyselyPostgresjsHarness } from '../test/harness.js'

const serverUrl = inject('pglockDatabaseUrl')

// Short names: a suite's name goes into application_name, which the server cuts at 63 bytes.
runAdapterConformance({
  name: 'kysely pg via PgBouncer',
  harness: throughPgBouncer(serverUrl, kyselyPgHarness('0.29')).harness,
  limits: {
    ...TRANSACTION_POOLING_LIMITS,
    noTransactionCancel:
      'Kysely cancels with pg_cancel_backend on the backend pid pg was told at connect, which PgBouncer makes up: nothing is cancelled',
  },
})

runAdapterConformance({
  name: 'kysely postgres.js via PgBouncer',
  harness: throughPgBouncer(serverUrl, kyselyPostgresjsHarness({ prepare: false })).harness,
  limits: {
    ...TRANSACTION_POOLING_LIMITS,
    noTransactionCancel:
      'kysely-postgres-js cancels through postgres.js query.cancel(), which does not tell when the request reached the server, so it could cancel a later statement of the transaction',
  },
})
