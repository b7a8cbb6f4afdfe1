import { defineConfig } from 'vitest/config'
import PythonLast from './test/helpers/python-last.js'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    // Tests start many real processes, and most of their time is spent waiting for them (deadlines,
    // receipts, a writer's start): two files at a time, whatever the machine, keep 2 cores busy
    // without crowding them (one at a time used a third of them: 562 s of wall time for 352 s of
    // CPU; two: 354 s, the Python suite beside them as before).
    fileParallelism: true,
    maxWorkers: 2,
    // Each worker runs its files in one process, which saves starting a process and loading
    // vitest, zeromq and pino again for each file. Test files share module state there: the cleanup
    // after each test is registered per file by the setup file, not when children.ts is first imported.
    isolate: false,
    setupFiles: ['./test/helpers/cleanup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // Under `npm test`, the Python suite starts at once beside them (test/python.test.ts reports it).
    globalSetup: ['./test/helpers/python-early.ts'],
    sequence: { sequencer: PythonLast }
  }
})
