import { runAdapterConformance } from '@pglock/conformance'
import { kyselyPgHarness, kyselyPostgresjsHarness } from './harness.js'

runAdapterConformance({ name: 'kysely-0.29-pg', harness: kyselyPgHarness('0.29') })

runAdapterConformance({
  name: 'kysely-0.28-pg',
  harness: kyselyPgHarness('0.28'),
  limits: {
    noTransactionCancel:
      'Kysely 0.28 cannot cancel a query running in a transaction (inflightQueryAbortStrategy came in 0.29)',
  },
})

runAdapterConformance({
  name: 'kysely-0.29-postgresjs',
  harness: kyselyPostgresjsHarness(),
  limits: {
    noTransactionCancel:
      'kysely-postgres-js cancels through postgres.js query.cancel(), which does not tell when the request reached the server, so it could cancel a later statement of the transaction',
  },
})
