/**
 * Types the values that the pglock global setup hands to test files through vitest's
 * `provide`/`inject`: `inject('pglockDatabaseUrl')` is a `string` in every program that includes this
 * module (it is imported by `database.ts` and `global-setup.ts`).
 */
import type {} from 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection URL of the PostgreSQL server the test run uses (contains the password). */
    pglockDatabaseUrl: string
    /** `server_version` of that server, first word only, e.g. `'18.4'`. */
    pglockDatabaseVersion: string
  }
}
