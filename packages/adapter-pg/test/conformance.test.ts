import { runAdapterConformance } from '@pglock/conformance'
import { pgHarness } from './harness.js'

runAdapterConformance({ name: 'pg', harness: pgHarness })
