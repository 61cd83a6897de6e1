import { defineConfig } from 'vitest/config'

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources, so tests need no build.
  resolve: { conditions: ['@pglock/source'] },
  ssr: { resolve: { conditions: ['@pglock/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'stress/test/**/*.test.ts'],
    globalSetup: ['./packages/conformance/src/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Tests of one file run in order; files run in parallel against the one server.
    sequence: { concurrent: false },
  },
})
