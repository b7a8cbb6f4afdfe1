import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { verifyFile } from '../shared/verify.js'
import { type Child, exitCode, fixture, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild, type ProducerParams } from './helpers/cluster.js'
import { reports, spooledAndLost } from './helpers/thread-reports.js'

/** DESTROY_TIMEOUT_MS (5 s) in these children, shortened by its test hook. */
const DESTROY_TIMEOUT_MS = 500
/** SILENT_THREAD_MS (30 s), shortened by its test hook. */
const SILENT_THREAD_MS = 1000

/**
 * An exception inside the sender (the test hook LOGFUNNEL_TEST_SENDER_FAULT) is reported with
 * LOGFUNNEL_ERR_SENDER_FAILED; the process goes on; what the failed sender held goes to the
 * spool, and a new sender sends the rest: every record reaches the file once.
 */
const RECORDS = 10_000

function producerWithFault (params: ProducerParams, fault: string, env: Record<string, string> = {}): ReturnType<typeof spawnNode> {
  return spawnNode([fixture('producer-logs'), JSON.stringify(params)], { env: { ...process.env, ...env, LOGFUNNEL_TEST_SENDER_FAULT: fault } })
}

async function expectAllOnce (file: string, stop: () => Promise<any>): Promise<void> {
  await waitFor(() => lineCount(file) >= RECORDS, 30_000, () => `${lineCount(file)} of ${RECORDS} lines in the file`)
  const summary = await stop()
  expect(summary.records).toBe(RECORDS)
  expect(await verifyFile(file)).toMatchObject({ lines: RECORDS, gaps: 0, duplicates: 0, torn: 0 })
}

describe.each(['funnel', 'transport'] as const)('%s: an exception inside the sender', (mode) => {
  it(`after its third batch: reported with a code, the process goes on and exits 0, all ${RECORDS} records arrive once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producer = producerWithFault({ endpoint: writer.endpoint, records: RECORDS, mode, pauseEvery: 500, pauseMs: 5, producer: { maxBatchBytes: 16 * 1024 } }, '3')
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const done = await producer.waitForLine((l) => l.event === 'done')
    expect(done.closeError, producer.describe()).toBe(null)
    expect(producer.stderr()).toMatch(mode === 'funnel' ? /SenderFailedError: the sender failed \(test fault/ : /LOGFUNNEL_ERR_SENDER_FAILED: the sender failed \(test fault/)
    expect(done.stats.records).toBe(RECORDS)
    await expectAllOnce(writer.file, writer.stop)
  })
})

describe('funnel(): a sender failure that keeps coming back (LOGFUNNEL_TEST_SENDER_FAULT=always: every sender throws at its first batch)', () => {
  /** 20,000 records in batches of 4 KiB with pauses: the sixth failure within a minute stops sending. */
  const failing = (endpoint: string, extra: Partial<ProducerParams> = {}): Child =>
    producerWithFault({ endpoint, records: 20_000, pauseEvery: 200, pauseMs: 5, producer: { maxBatchBytes: 4096 }, ...extra }, 'always')

  /** The file holds exactly `records` lines, none twice or torn (the failed senders' spool files may come in any order). */
  async function expectInFile (writer: Awaited<ReturnType<typeof startWriterChild>>, records: number): Promise<void> {
    await waitFor(() => lineCount(writer.file) >= records, 20_000, () => `${lineCount(writer.file)} of ${records} lines in the file`)
    expect((await writer.stop()).records).toBe(records)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records, duplicates: 0, torn: 0 })
  }

  it('close() ends at once, not at its deadline; its report counts what went to the spool (the file holds exactly that) and what is lost, 20,000 in all', async () => {
    const writer = await startWriterChild(tempDir())
    // A deadline longer than the child's own: waiting it out fails the test.
    const producer = failing(writer.endpoint, { closeDeadlineMs: 60_000 })
    expect(await exitCode(producer, 30_000), producer.describe()).toBe(0)
    const done = await producer.waitForLine((l) => l.event === 'done')
    // Rejected when records are lost (those logged after the sender stopped); else a warning says it.
    const message: string = done.closeMessage ?? /CloseTimeoutError: (.*)$/m.exec(producer.stderr())?.[1] ?? ''
    const m = /^close: the sender stopped taking records \(it failed too often\): (\d+) records without a receipt went to the spool in [^,]+, where the writer ingests them(?:; (\d+) records without a receipt are lost)?$/.exec(message)
    expect(m, producer.describe()).not.toBe(null)
    const [spooled, lost] = [Number(m?.[1]), Number(m?.[2] ?? 0)]
    expect(done.closeError, producer.describe()).toBe(lost > 0 ? 'LOGFUNNEL_ERR_CLOSE_TIMEOUT' : null)
    // Before, the broken sender's stats counted its last failed sender twice.
    expect(spooled + lost, message).toBe(20_000)
    expect(done.stats.spooledRecords + done.stats.dropped, producer.describe()).toBeLessThanOrEqual(20_000)
    await expectInFile(writer, spooled)
  })

  it('process.exit(): what the ring still held goes to the spool, and what was lost is said with its count (before, nothing)', async () => {
    const writer = await startWriterChild(tempDir())
    const producer = failing(writer.endpoint, { exitAtOnce: true })
    expect(await exitCode(producer, 30_000), producer.describe()).toBe(0)
    // Records logged after the sender stopped are lost, and said; on a machine slow enough that all
    // were logged before, none is, and nothing is said.
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
    expect(said.length, producer.describe()).toBeLessThanOrEqual(1)
    let lost = 0
    for (const line of said) {
      const m = /^logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended with (\d+) records that no sender thread took \(it never started, it ended, or it failed too often\): lost(?:; \d+ went to the spool, where the writer ingests them)?$/.exec(line)
      expect(m, line).not.toBe(null)
      lost = Number(m?.[1])
    }
    await expectInFile(writer, 20_000 - lost)
  })
})

describe('transport: end() fails and thread-stream terminates the worker, sockets open', () => {
  it(`a script that logs and just ends exits 0; the ${RECORDS} records reach the file from the spool`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    try {
      const producer = producerWithFault({ endpoint: writer.endpoint, records: RECORDS, mode: 'transport', endOnItsOwn: true }, 'end')
      expect(await exitCode(producer), producer.describe()).toBe(0)
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await expectAllOnce(writer.file, writer.stop)
  })
})

describe('funnel(): the sender thread does not answer at exit', () => {
  it('process.exit() waits DESTROY_TIMEOUT_MS for it, then ends (exit 0) and says on stderr that records may be lost', async () => {
    const dir = tempDir()
    const producer = producerWithFault({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 1000, exitAtOnce: true }, 'stall-exit', { LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS: String(DESTROY_TIMEOUT_MS) })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
    expect(said).toEqual([`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended while the sender thread had not spooled within ${DESTROY_TIMEOUT_MS} ms: records without a receipt may be lost`])
  })
})

describe('funnel(): the wall clock steps back an hour', () => {
  it('while log calls wait for room with no writer: the wait still ends after blockTimeoutMs (a monotonic clock), the records go to the spool, all arrive once a writer starts', async () => {
    // The logging thread fills the sender (1 MiB) and its 64 KiB buffer at once, then waits;
    // the clock of every thread steps back 1 s after it started, in the middle of that wait.
    // Timed by the wall clock, the wait would last an hour and the process would not even end
    // on SIGTERM (its main thread waits in Atomics.wait).
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const params: ProducerParams = {
      endpoint,
      records: 5000,
      sizes: [1000],
      producer: { highWaterMark: 1024 * 1024, maxFrameBytes: 1024 * 1024, threadBufferBytes: 64 * 1024, blockTimeoutMs: 2000, closeTimeoutMs: 1000 }
    }
    // The sender thread runs neither -r nor NODE_OPTIONS preloads: clock-back.cjs gives it a file
    // of its own (clock-back-sender.mjs), which says so on stderr.
    const clockBack = join(ROOT, 'test', 'fixtures', 'clock-back.cjs')
    const child = spawnNode(['-r', clockBack, fixture('producer-logs'), JSON.stringify(params)], { env: { ...process.env, CLOCK_BACK_AFTER_MS: '1000' } })
    const done = await child.waitForLine((l) => l.event === 'done', 20_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(child.stderr(), child.describe()).toContain('clock-back: in the sender thread\n')
    expect(done.stats).toMatchObject({ records: 5000, dropped: 0, spooledRecords: 5000 })
    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= 5000, 20_000, () => `${lineCount(writer.file)} of 5000 lines in the file`)
    expect((await writer.stop()).records).toBe(5000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 5000, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })
})

describe('funnel(): close() with a sender thread that gives no sign of life', () => {
  it('stuck in a loop at the close request (LOGFUNNEL_TEST_SENDER_FAULT=stall-close): close() ends it after SILENT_THREAD_MS and says so once; exit 0; every record, receipted before, in the file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    // KEEP_MS 0: close() closes the sender thread. Kept (the default), every record receipted, it
    // asks the thread nothing more; the close request comes at 'beforeExit', nothing held then.
    const producer = producerWithFault({ endpoint: writer.endpoint, records: 1000 }, 'stall-close', { LOGFUNNEL_TEST_SILENT_THREAD_MS: String(SILENT_THREAD_MS), LOGFUNNEL_TEST_KEEP_MS: '0' })
    // Before, close() waited for the answer for good: the process never ended.
    expect(await exitCode(producer, 20_000), producer.describe()).toBe(0)
    const done = await producer.waitForLine((l) => l.event === 'done')
    expect(done.closeError, producer.describe()).toBe(null)
    expect(reports(producer), producer.describe()).toEqual([expect.stringMatching(new RegExp(`LOGFUNNEL_ERR_CLOSE_TIMEOUT\\] CloseTimeoutError: close: the sender thread gave no sign of life for ${SILENT_THREAD_MS} ms and was ended$`))])
    await expectAllOnceOf(1000, writer)
  })

  it('stuck before it takes its first slot (LOGFUNNEL_TEST_SENDER_FAULT=stuck), the ring full: log calls stop waiting after SILENT_THREAD_MS and drop; close() ends it; the ring\'s lines go to the spool; spooled + lost = 20,000, the file holds the spooled', async () => {
    const writer = await startWriterChild(tempDir())
    // 64 KiB of ring: full after ~350 records. Before, the log call waited for the thread for good.
    const producer = producerWithFault({ endpoint: writer.endpoint, records: 20_000, closeDeadlineMs: 1000, producer: { threadBufferBytes: 64 * 1024 } }, 'stuck',
      { LOGFUNNEL_TEST_SILENT_THREAD_MS: String(SILENT_THREAD_MS) })
    expect(await exitCode(producer, 30_000), producer.describe()).toBe(0)
    const done = await producer.waitForLine((l) => l.event === 'done')
    expect(done.closeError, producer.describe()).toBe('LOGFUNNEL_ERR_CLOSE_TIMEOUT')
    const m = new RegExp(`^close: the sender thread gave no sign of life for ${SILENT_THREAD_MS} ms and was ended: (\\d+) records without a receipt went to the spool in [^,]+, where the writer ingests them; (\\d+) records without a receipt are lost$`).exec(done.closeMessage)
    expect(m, done.closeMessage).not.toBe(null)
    const [spooled, lost] = [Number(m?.[1]), Number(m?.[2])]
    expect(spooled + lost, done.closeMessage).toBe(20_000)
    expect(spooled, done.closeMessage).toBeGreaterThan(0)
    await expectAllOnceOf(spooled, writer)
  })

  it('stuck the same way, then process.exit(): the exit waits DESTROY_TIMEOUT_MS, then the ring\'s lines go to the spool from the logging thread; spooled + lost = 20,000, said on stderr, the file holds the spooled', async () => {
    const writer = await startWriterChild(tempDir())
    const producer = producerWithFault({ endpoint: writer.endpoint, records: 20_000, exitAtOnce: true, producer: { threadBufferBytes: 64 * 1024 } }, 'stuck',
      { LOGFUNNEL_TEST_SILENT_THREAD_MS: String(SILENT_THREAD_MS), LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS: String(DESTROY_TIMEOUT_MS) })
    expect(await exitCode(producer, 30_000), producer.describe()).toBe(0)
    const said = reports(producer)
    expect(said, producer.describe()).toHaveLength(1)
    const m = new RegExp(`^logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended while the sender thread had not spooled within ${DESTROY_TIMEOUT_MS} ms: records without a receipt may be lost; (\\d+) it had not taken went to the spool, where the writer ingests them; (\\d+) that no sender thread took are lost$`).exec(said[0] as string)
    expect(m, said[0]).not.toBe(null)
    const [spooled, lost] = [Number(m?.[1]), Number(m?.[2])]
    expect(spooled + lost, said[0]).toBe(20_000)
    await expectAllOnceOf(spooled, writer)
  })

  it('one that never ran (sender-thread-never-answers.cjs): close() ends it after its deadline and SILENT_THREAD_MS, and the 1,000 records the ring holds go to the spool from the logging thread: all 1,000 in the file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)}, closeTimeoutMs: 1000 })
      const log = pino(dest)
      for (let seq = 0; seq < 1000; seq++) log.info({ seq }, 'x')
      await dest.close()
      console.log(JSON.stringify({ event: 'closed' }))`
    const child = spawnNode(['-r', join(ROOT, 'test', 'fixtures', 'sender-thread-never-answers.cjs'), '--input-type=module', '-e', code], {
      cwd: ROOT, env: { ...process.env, LOGFUNNEL_TEST_SILENT_THREAD_MS: String(SILENT_THREAD_MS) }
    })
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    await child.waitForLine((l) => l.event === 'closed')
    const { spooled, lost } = spooledAndLost(child, `the sender thread gave no sign of life for ${SILENT_THREAD_MS} ms and was ended`)
    expect([spooled, lost], child.describe()).toEqual([1000, 0])
    await expectAllOnceOf(1000, writer)
  })
})

/** The writer's file holds exactly `records` lines, each once and whole; the writer stops. */
async function expectAllOnceOf (records: number, writer: Awaited<ReturnType<typeof startWriterChild>>): Promise<void> {
  await waitFor(() => lineCount(writer.file) >= records, 20_000, () => `${lineCount(writer.file)} of ${records} lines in the file`)
  expect((await writer.stop()).records).toBe(records)
  expect(await verifyFile(writer.file, { expectTotal: records })).toMatchObject({ ok: true, lines: records, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
}
