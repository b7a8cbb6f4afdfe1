import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild, type WriterChild } from './helpers/cluster.js'

const PRODUCERS = 8
/** 200 pauses of 25 ms: each producer logs for about 5 s, across every restart below. */
const RECORDS = 20_000
/** Resends start soon after a writer comes back. */
const PRODUCER = { receiptTimeoutMs: 300, highWaterMark: 1024 * 1024, closeTimeoutMs: 60_000 }
/** Per producer and writer crash, at most the records it holds without a receipt get written twice. */
const MIN_LINE_BYTES = 100
const DUPLICATES_PER_CRASH = PRODUCERS * Math.floor(PRODUCER.highWaterMark / MIN_LINE_BYTES)

async function restartWhileLogging (dir: string, restarts: number, everyMs: number, stop: (w: WriterChild) => Promise<void>): Promise<{ producersDone: any[], file: string }> {
  let writer = await startWriterChild(dir, ['--drain-timeout-ms', '300', '--drain-idle-ms', '50', '--state-persist-ms', '100'])
  const producers = Array.from({ length: PRODUCERS }, () => spawnProducer({
    endpoint: writer.endpoint, records: RECORDS, pauseEvery: 100, pauseMs: 25, producer: PRODUCER
  }))
  for (let i = 0; i < restarts; i++) {
    await new Promise((resolve) => setTimeout(resolve, everyMs))
    await stop(writer)
    writer = await startWriterChild(dir, ['--drain-timeout-ms', '300', '--drain-idle-ms', '50', '--state-persist-ms', '100'])
  }
  const producersDone = await Promise.all(producers.map(async (p) => {
    const done = await p.waitForLine((l) => l.event === 'done', 120_000)
    expect(await exitCode(p)).toBe(0)
    return done
  }))
  // A producer's close() may end while the writer is away (a restart), with the rest in the
  // spool: the last writer takes those files before it is stopped.
  await writer.stop({ spoolTaken: true, spoolDeadlineMs: 60_000 })
  return { producersDone, file: writer.file }
}

describe('writer restarts while 8 producers log', () => {
  it('graceful restart every 400 ms, 10 times: zero gaps, zero duplicates', async () => {
    const dir = tempDir()
    const { producersDone, file } = await restartWhileLogging(dir, 10, 400, async (w) => { await w.stop() })
    for (const d of producersDone) expect(d.closeError).toBe(null)
    expect(await verifyFile(file)).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })

  it(`kill -9 of the writer 5 times: zero gaps, duplicates within ${DUPLICATES_PER_CRASH} per crash`, async () => {
    const dir = tempDir()
    const { producersDone, file } = await restartWhileLogging(dir, 5, 700, async (w) => {
      w.child.proc.kill('SIGKILL')
      await exitCode(w.child)
    })
    for (const d of producersDone) expect(d.closeError).toBe(null)
    const report = await verifyFile(file)
    expect(report).toMatchObject({ producers: PRODUCERS, torn: 0, gaps: 0, reordered: 0 })
    process.stdout.write(`kill -9 x5: ${report.duplicates} duplicate lines (bound ${5 * DUPLICATES_PER_CRASH})\n`)
    expect(report.duplicates).toBeLessThanOrEqual(5 * DUPLICATES_PER_CRASH)
    expect(report.lines).toBe(PRODUCERS * RECORDS + report.duplicates)
  })

  it('kill -9 after a producer copied batches to the spool that the writer then wrote itself: the next writer ingests the copies, and the producer gets its receipts', async () => {
    const dir = tempDir()
    const lines = (file: string): number => existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0
    const spooled = (): string[] => existsSync(join(dir, 'w.sock.spool')) ? readdirSync(join(dir, 'w.sock.spool')).filter((n) => n.endsWith('.spool')) : []
    // It saves its state and scans the spool rarely: when it is killed, its receipts are ahead
    // of its saved state and the producer's copies are still in the spool.
    const first = await startWriterChild(dir, ['--state-persist-ms', '600000', '--spool-poll-ms', '600000'])
    const producer = spawnProducer({
      endpoint: first.endpoint, records: 6000, pauseEvery: 100, pauseMs: 25, announceAfter: 1000, producer: { receiptTimeoutMs: 300, closeTimeoutMs: 30_000 }
    })
    await producer.waitForLine((l) => l.event === 'logging')
    // Stopped: it does not answer, so the producer copies what waits for receipts to the spool.
    first.child.proc.kill('SIGSTOP')
    await waitFor(() => spooled().length > 0, 10_000, () => 'no spool file')
    const copies = spooled()
    first.child.proc.kill('SIGCONT')
    // It writes and receipts those batches itself; the producer's window moves past them.
    const before = lines(first.file)
    await waitFor(() => lines(first.file) >= before + 500, 10_000, () => `${lines(first.file)} lines`)
    first.child.proc.kill('SIGKILL')
    await exitCode(first.child)
    const second = await startWriterChild(dir)
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer)).toBe(0)
    expect(done.closeError).toBe(null)
    // close() may end while the second writer is not connected yet, with the rest in the spool:
    // the writer takes those files too before it is stopped.
    const summary = await second.stop({ spoolTaken: true, spoolDeadlineMs: 60_000 })
    expect(summary.conflicts).toBe(0)
    expect(copies.some((name) => spooled().includes(name))).toBe(false)
    const report = await verifyFile(second.file)
    expect(report).toMatchObject({ producers: 1, torn: 0, gaps: 0, reordered: 0 })
    expect(report.lines).toBe(6000 + report.duplicates)
  })
}, 180_000)
