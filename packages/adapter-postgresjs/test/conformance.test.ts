import { runAdapterConformance } from '@pglock/conformance'
import type { PostgresSqlLike } from '../src/index.js'
import { postgresjsHarness } from './harness.js'

runAdapterConformance<PostgresSqlLike>({ name: 'postgres.js', harness: postgresjsHarness() })
