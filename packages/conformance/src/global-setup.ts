/**
 * vitest global setup: starts the test database once per run (see `database.ts` for how it is
 * chosen) and hands its URL to the test files:
 *
 * ```ts
 * import { inject } from 'vitest'
 * const url = inject('pglockDatabaseUrl')
 * ```
 *
 * vitest accepts a named `setup` export that returns the teardown function, like a default export.
 */
import type { TestProject } from 'vitest/node'
import { maskUrl, startTestDatabase, type TestDatabase } from './database.js'
import './provided-context.js'

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const db = await startTestDatabase()
  process.stderr.write(`[pglock] test database: ${describeDatabase(db)}\n`)
  project.provide('pglockDatabaseUrl', db.url)
  project.provide('pglockDatabaseVersion', db.version)
  return async () => {
    await db.stop()
  }
}

function describeDatabase(db: TestDatabase): string {
  switch (db.source) {
    case 'embedded':
      return `embedded PostgreSQL ${db.version} on ${new URL(db.url).host}`
    case 'testcontainers':
      return `PostgreSQL ${db.version} in a testcontainers container on ${new URL(db.url).host}`
    case 'url':
      return `PostgreSQL ${db.version} at ${maskUrl(db.url)} (PGLOCK_TEST_DATABASE_URL)`
  }
}
