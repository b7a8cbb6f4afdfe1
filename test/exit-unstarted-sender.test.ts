import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/** How long each sender thread takes to start (slow-sender-thread.mjs): far past the kill below. */
const SLOW_SENDER_MS = 3000
/** Test runners' workers get SIGKILL this long after their SIGTERM (vitest's forks and tinypool: 0.5 s); here 1.5 s. */
const KILL_AFTER_MS = 1500
const DESTINATIONS = 4
const RECORDS = 1000

/**
 * A process that ends (SIGTERM, process.exit()) while its destinations' sender threads are still
 * starting. Before, the exit waited for each such thread to start and spool (0.1 to 0.5 s per
 * process on an idle 2-core machine, growing with the destinations: 501 ms with 6), and test
 * runners SIGKILL a worker 0.5 s after its SIGTERM: vitest's forks pool lost whole test files'
 * records (40,686 and 60,000 of 180,000 in 2 of 9 runs). Now the logging thread puts the ring in
 * the spool at once. And a destination collected (a logger made per test or per job and dropped)
 * whose collection was not handled yet had no exit or signal hook at all: its records were lost
 * without a word once nothing else held the exit.
 */
function program (writerEndpoint: string, dropped: boolean, end: string): string {
  return `
    import pino from 'pino'
    import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
    globalThis.__bundlerPathsOverrides = { 'logfunnel-sender-thread': ${JSON.stringify(join(ROOT, 'test', 'fixtures', 'slow-sender-thread.mjs'))} }
    const kept = []
    const probes = []
    function logger (k) {
      const dest = funnel({ endpoint: ${JSON.stringify(writerEndpoint)} })
      probes.push(new WeakRef(dest))
      if (!${String(dropped)}) kept.push(dest)
      const log = pino({ base: { pid: process.pid + '-' + k } }, dest)
      for (let seq = 0; seq < ${RECORDS}; seq++) log.info({ seq }, 'before the end')
    }
    for (let k = 0; k < ${DESTINATIONS}; k++) logger(k)
    await new Promise((resolve) => setImmediate(resolve))
    ${dropped ? 'gc()' : ''}
    console.log(JSON.stringify({ event: 'logged', collected: probes.filter((p) => p.deref() === undefined).length }))
    ${end}`
}

describe('the process ends while its sender threads are still starting', () => {
  it(`SIGTERM (no handler of the application's), SIGKILL ${KILL_AFTER_MS} ms later as a test runner does: the process ends by SIGTERM before that; all ${DESTINATIONS * RECORDS} records in the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode(['--input-type=module', '-e', program(writer.endpoint, false, 'setInterval(() => {}, 60_000)')], {
      cwd: ROOT, env: { ...process.env, SLOW_SENDER_MS: String(SLOW_SENDER_MS) }
    })
    await child.waitForLine((l) => l.event === 'logged', 30_000)
    child.proc.kill('SIGTERM')
    const kill = setTimeout(() => child.proc.kill('SIGKILL'), KILL_AFTER_MS)
    try {
      expect(await exitCode(child, 30_000), child.describe()).toBe('SIGTERM')
    } finally {
      clearTimeout(kill)
    }
    expect(child.stderr(), child.describe()).toBe('')
    await waitFor(() => lineCount(writer.file) >= DESTINATIONS * RECORDS, 15_000, () => `${lineCount(writer.file)} of ${DESTINATIONS * RECORDS} lines\n${child.describe()}`)
    expect((await writer.stop({ spoolTaken: true })).records).toBe(DESTINATIONS * RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: DESTINATIONS * RECORDS, producers: DESTINATIONS, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })

  it('process.exit() right after its loggers were dropped and collected (gc(), their collection not handled yet): all records in the file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode(['--expose-gc', '--input-type=module', '-e', program(writer.endpoint, true, 'process.exit(0)')], {
      cwd: ROOT, env: { ...process.env, SLOW_SENDER_MS: String(SLOW_SENDER_MS) }
    })
    const logged = await child.waitForLine((l) => l.event === 'logged', 30_000)
    expect(await exitCode(child, 30_000), child.describe()).toBe(0)
    // At least one was collected: its records were the ones lost.
    expect(logged.collected, child.describe()).toBeGreaterThan(0)
    await waitFor(() => lineCount(writer.file) >= DESTINATIONS * RECORDS, 15_000, () => `${lineCount(writer.file)} of ${DESTINATIONS * RECORDS} lines\n${child.describe()}`)
    expect((await writer.stop({ spoolTaken: true })).records).toBe(DESTINATIONS * RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: DESTINATIONS * RECORDS, producers: DESTINATIONS, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })
}, 90_000)
