import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

// `pnpm test:pgbouncer`: the tests that need PgBouncer (packages/*/test-pgbouncer), same setup as `pnpm test`.
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['packages/*/test-pgbouncer/**/*.test.ts'] },
})
