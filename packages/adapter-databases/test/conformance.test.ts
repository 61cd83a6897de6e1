import { runAdapterConformance } from '@pglock/conformance'
import { databasesHarness } from './harness.js'

runAdapterConformance({ name: '@databases/pg', harness: databasesHarness })
