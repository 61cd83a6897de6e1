import { runAdapterConformance } from '@pglock/conformance'
import { drizzlePgHarness, drizzlePostgresjsHarness } from './harness.js'

runAdapterConformance({ name: 'drizzle 0.45 node-postgres', harness: drizzlePgHarness('0.45') })

runAdapterConformance({ name: 'drizzle 1.0.0-rc.4 node-postgres', harness: drizzlePgHarness('1-rc') })

runAdapterConformance({ name: 'drizzle 0.45 postgres-js', harness: drizzlePostgresjsHarness('0.45') })

runAdapterConformance({ name: 'drizzle 1.0.0-rc.4 postgres-js', harness: drizzlePostgresjsHarness('1-rc') })
