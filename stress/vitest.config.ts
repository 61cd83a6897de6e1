/**
 * `pnpm test:stress`: only the stress test, with the long budget (20 s per adapter unless
 * PGLOCK_STRESS_SECONDS says otherwise), on the same test database setup as the root config.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import root from '../vitest.config.js'

export default defineConfig({
  ...root,
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    ...root.test,
    include: ['stress/test/**/*.test.ts'],
    env: { PGLOCK_STRESS_SECONDS: process.env.PGLOCK_STRESS_SECONDS ?? '20' },
  },
})
