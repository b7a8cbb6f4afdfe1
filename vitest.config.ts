import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    // Tests start many real processes; on 2 cores, files run one at a time.
    fileParallelism: false,
    reporters: ['default', './test/helpers/summary-reporter.ts']
  }
})
