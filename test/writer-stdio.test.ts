import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN, exitCode, ROOT, spawnCommand, tempDir } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { PYTHON } from './helpers/programs.js'

const FULL_STDERR = join(ROOT, 'test', 'fixtures', 'full-stderr-pipe.py')
const RECORDS = 5000

describe('the writer with a stderr pipe nobody reads', () => {
  it(`writes ${RECORDS} records and exits 0 within 5 s of SIGTERM, its stopped line printed`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // Stats every 100 ms fill the 4 KiB pipe in about 2 s.
    const run = spawnCommand(PYTHON, [FULL_STDERR, process.execPath, BIN, 'writer', '--file', join(dir, 'app.log'), '--endpoint', endpoint, '--stats-interval-ms', '100'])
    const { pid } = await run.waitForLine((l) => l.event === 'child')
    await run.waitForLine((l) => l.event === 'ready')
    await run.waitForLine((l) => l.event === 'pipe-full', 30_000)
    await runProducers(1, { endpoint, records: RECORDS })
    const started = performance.now()
    process.kill(pid, 'SIGTERM')
    // Before, the writer printed its stopped line and never exited (Node waited to write the
    // stderr lines nobody read): a service manager waited its stop timeout, then SIGKILLed it.
    const exit = await run.waitForLine((l) => l.event === 'child-exit', 5000)
    expect(exit.code, run.describe()).toBe(0)
    expect(performance.now() - started).toBeLessThan(5000)
    const stopped = await run.waitForLine((l) => l.event === 'stopped')
    expect(stopped).toMatchObject({ reason: 'SIGTERM', records: RECORDS, duplicates: 0 })
    expect(await exitCode(run), run.describe()).toBe(0)
  })
})
