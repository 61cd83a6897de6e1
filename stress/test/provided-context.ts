/**
 * Types `inject('pglockDatabaseUrl')` in the stress test, as packages/conformance/src/provided-context.ts
 * does for the packages (stress/ cannot import that package: it is not a workspace package).
 */
import type {} from 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection URL of the test run's PostgreSQL, set by the pglock global setup. */
    pglockDatabaseUrl: string
  }
}
