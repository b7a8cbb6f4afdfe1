import { defineConfig } from 'vitest/config'
import PythonLast from './test/helpers/python-last.js'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    // Tests start many real processes; on 2 cores, files run one at a time.
    fileParallelism: false,
    // ...all in one worker, which saves starting a process and loading vitest, zeromq and pino
    // again for each file. Test files share module state there: the cleanup after each test
    // is registered per file by the setup file, not when children.ts is first imported.
    isolate: false,
    setupFiles: ['./test/helpers/cleanup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // Under `npm test`, the Python suite starts at once beside them (test/python.test.ts reports it).
    globalSetup: ['./test/helpers/python-early.ts'],
    sequence: { sequencer: PythonLast }
  }
})
