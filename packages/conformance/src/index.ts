export { Admin, appName, randomKey, randomPairKey, type ServerLock, waitFor } from './admin.js'
export { appPgPool, appPostgresOptions } from './app-pool.js'
export type {
  AdapterInstance,
  ConformanceHarness,
  ConformanceLimits,
  ConformanceOptions,
  HarnessOptions,
} from './harness.js'
export { SilentProxy } from './silent-proxy.js'
export { runAdapterConformance } from './suite.js'
