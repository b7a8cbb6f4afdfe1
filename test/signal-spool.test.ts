import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { defaultSpoolDir } from '../shared/spool.js'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { readSpooled } from './helpers/spool-files.js'

/**
 * A producer stopped the standard way (SIGTERM, SIGINT) while no writer answers loses nothing,
 * and ends by that signal, as it would without logfunnel. funnel() spools from the signal
 * itself (the application has no handler of its own); the transport target, which has no code
 * in the logging thread, has copied its batches to the spool once receipts stalled
 * (`spoolAfterMs`): the signal comes half a second after the last log call, as in a pool's
 * stop, and for the transport no sooner than its copies are all in the spool (how long copying
 * takes depends on the machine's load: a time, not a guarantee, so the test waits for it).
 */
const RECORDS = 10_000
/** A pool or supervisor stops the process this long after its last log call. */
const STOP_AFTER_MS = 500

async function stopWith (signal: NodeJS.Signals, mode: 'funnel' | 'transport', endpoint: string, afterMs: number): Promise<void> {
  const producer = spawnProducer({ endpoint, records: RECORDS, mode, holdUntilSignal: true })
  await producer.waitForLine((l) => l.event === 'logged', 30_000)
  if (afterMs > 0) await delay(afterMs)
  if (mode === 'transport') {
    const dir = defaultSpoolDir(endpoint) as string
    const spooled = (): number => readSpooled(dir).seqs.length
    await waitFor(() => spooled() >= RECORDS, 30_000, () => `${spooled()} of ${RECORDS} records copied to the spool`)
  }
  producer.proc.kill(signal)
  expect(await exitCode(producer), producer.describe()).toBe(signal)
}

async function expectAll (file: string, stop: () => Promise<any>): Promise<void> {
  await waitFor(() => lineCount(file) >= RECORDS, 30_000, () => `${lineCount(file)} of ${RECORDS} lines in the file`)
  const summary = await stop()
  expect(summary.records).toBe(RECORDS)
  expect(await verifyFile(file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, torn: 0, ok: true })
}

describe.each(['funnel', 'transport'] as const)('%s: stopped by a signal while no writer answers', (mode) => {
  it(`SIGTERM ${STOP_AFTER_MS} ms after logging, writer stopped (SIGSTOP): ends by SIGTERM (143); after SIGCONT all ${RECORDS} records arrive once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    try {
      await stopWith('SIGTERM', mode, writer.endpoint, STOP_AFTER_MS)
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await expectAll(writer.file, writer.stop)
  })

  it(`SIGINT ${STOP_AFTER_MS} ms after logging, no writer: ends by SIGINT (130); a writer started later gets all ${RECORDS}`, async () => {
    const dir = tempDir()
    await stopWith('SIGINT', mode, `ipc://${join(dir, 'w.sock')}`, STOP_AFTER_MS)
    const writer = await startWriterChild(dir)
    await expectAll(writer.file, writer.stop)
  })
})

describe('funnel(): the signal itself spools', () => {
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} right after the last log call, writer stopped: ends by ${signal}; all ${RECORDS} records arrive once`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      writer.child.proc.kill('SIGSTOP')
      try {
        await stopWith(signal, 'funnel', writer.endpoint, 0)
      } finally {
        writer.child.proc.kill('SIGCONT')
      }
      await expectAll(writer.file, writer.stop)
    })
  }
})
