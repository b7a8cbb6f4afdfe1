import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'

const RECORDS = 10_000
describe.each(['funnel', 'transport'] as const)('%s: process.exit(0) right after logging', (mode) => {
  it(`the writer is up but slow: all ${RECORDS} records arrive once, in order`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, [], undefined, 10)
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, mode, exitAtOnce: true, producer: { maxBatchBytes: 16 * 1024 } })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 60_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    expect(summary.records).toBe(RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
    expect(readdirSync(join(dir, 'w.sock.spool')).filter((f) => !f.endsWith('.torn'))).toEqual([])
  })

  it(`the writer is down and starts after the producer exited: all ${RECORDS} records arrive`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const producer = spawnProducer({ endpoint, records: RECORDS, mode, exitAtOnce: true })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(readdirSync(join(dir, 'w.sock.spool')).length).toBeGreaterThan(0)

    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 30_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(summary.spool.torn).toBe(0)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, ok: true })
    expect(readdirSync(join(dir, 'w.sock.spool'))).toEqual([])
  })
}, 120_000)

/**
 * README's transport example (a script that logs and just ends) with no writer listening and more
 * than `highWaterMark` logged: the sender has no room, and the transport's worker stopped reading
 * until the wait for room reached `blockTimeoutMs`, while pino's thread-stream kept the process
 * alive until the worker had read everything: the script took `blockTimeoutMs` to end (10 s by
 * default). funnel() spools and ends at once.
 */
describe.each(['funnel', 'transport'] as const)('%s: more than highWaterMark logged with no writer, and the script just ends', (mode) => {
  it('ends well within blockTimeoutMs (60 s here), everything in the spool; a writer started later writes exactly every record, in order', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // ~3 MB of records against a 1 MiB highWaterMark; within funnel()'s ring and thread-stream's buffer (4 MiB).
    const records = 12_000
    const started = Date.now()
    const producer = spawnProducer({ endpoint, records, sizes: [200], mode, endOnItsOwn: true, producer: { highWaterMark: 1024 * 1024, blockTimeoutMs: 60_000 } })
    expect(await exitCode(producer, 20_000), producer.describe()).toBe(0)
    expect(Date.now() - started, 'the script waited for blockTimeoutMs').toBeLessThan(15_000)

    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records, duplicates: 0, spool: { torn: 0, rejected: 0 } })
    expect(await verifyFile(writer.file, { expect: records })).toMatchObject({ lines: records, producers: 1, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, torn: 0 })
  })
}, 120_000)

/**
 * The application ends by an exception of its own right after logging (an uncaught throw, an
 * unhandled rejection): the process exits 1, with its own error on stderr, and every record
 * logged before it reaches the file (the exit handler spools what has no receipt).
 */
describe.each([['funnel', 'throw', 'up'], ['transport', 'reject', 'up'], ['funnel', 'reject', 'down'], ['transport', 'throw', 'down']] as const)('%s: the application ends by %s', (mode, crash, writerState) => {
  it(`writer ${writerState}: exit 1 with the application's error, all ${RECORDS} records arrive once`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    let writer = writerState === 'up' ? await startWriterChild(dir) : undefined
    const producer = spawnProducer({ endpoint, records: RECORDS, mode, crashAtOnce: crash })
    expect(await exitCode(producer), producer.describe()).toBe(1)
    expect(producer.stderr()).toContain(crash === 'throw' ? 'test crash: uncaught exception' : 'test crash: unhandled rejection')
    writer ??= await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 30_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    expect(summary.records).toBe(RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0 })
  })
}, 120_000)

/**
 * A transport script that calls `log.flush(cb)` with no writer up (pino's usual "flush, then
 * end"; an `afterAll` in a test run without a writer): the flush answers once the writer is
 * judged away (`spoolAfterMs`) and what has no receipt is in the spool, with a
 * LOGFUNNEL_ERR_FLUSH_TIMEOUT warning saying so; the script ends. With `spoolAfterMs: 0` (no
 * such judgement) it answers after `flushTimeoutMs`. Before, the callback was never called and
 * the script never ended; later it was called only after `flushTimeoutMs` (10 s by default,
 * vitest's hook timeout: its `afterAll` failed).
 */
describe.each([
  ['the writer judged away', { flushTimeoutMs: 30_000 }, /LOGFUNNEL_ERR_FLUSH_TIMEOUT: flush ended before its 30000 ms deadline: the writer does not answer: 1000 records still without a receipt, copied to the spool/],
  ['flushTimeoutMs with spoolAfterMs 0', { flushTimeoutMs: 500, spoolAfterMs: 0 }, /LOGFUNNEL_ERR_FLUSH_TIMEOUT: flush took longer than 500 ms: 1000 records still without a receipt, copied to the spool/]
] as const)('transport: log.flush(cb) with no writer, ended by %s', (_, producer, warning) => {
  it('calls back with the records in the spool; the script ends, exit 0, well before 30 s; a writer started later writes them all once', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const started = Date.now()
    const child = spawnProducer({ endpoint, records: 1000, mode: 'transport', producer })
    const done = await child.waitForLine((l) => l.event === 'done', 30_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(Date.now() - started, 'the flush waited for flushTimeoutMs').toBeLessThan(15_000)
    expect(done.closeError).toBe(null)
    expect(child.stderr()).toMatch(warning)
    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= 1000, 30_000, () => `${lineCount(writer.file)} lines in the file`)
    await writer.stop()
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 1000, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
})

/**
 * funnel(): a script that logs, flushes (pino's `log.flush(cb)`, or `await dest.flush(ms)`) with
 * no writer up, and ends. The flush rejects with LOGFUNNEL_ERR_FLUSH_TIMEOUT after its deadline;
 * the script then has nothing left to do and must end by itself as it would without the flush
 * (beforeExit: the records go to the spool). Before, the flush's request to the sender thread
 * stayed pending past its deadline and kept the thread ref'd: the process lived on until the
 * thread answered it, 14 s later with connectTimeoutMs 0, never with connectTimeoutMs equal to
 * flushTimeoutMs (both 10 s by default: `log.flush(cb)` with no writer hung for good).
 */
describe.each([['log.flush(cb)', 500], ['await dest.flush(500)', 0]] as const)('funnel: %s with no writer (connectTimeoutMs %i)', (how, connectTimeoutMs) => {
  it('rejects with LOGFUNNEL_ERR_FLUSH_TIMEOUT, then the script ends by itself (exit 0) with its 1000 records in the spool; a writer started later writes them once', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const flush = how === 'log.flush(cb)'
      ? 'await new Promise((resolve) => log.flush((err) => resolve(err)))'
      : 'await dest.flush(500).then(() => undefined, (err) => err)'
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const dest = funnel({ endpoint: ${JSON.stringify(endpoint)}, flushTimeoutMs: 500, connectTimeoutMs: ${connectTimeoutMs} })
      dest.on('error', () => {})
      let seq = 0
      const log = pino({ mixin: () => ({ seq: seq++ }) }, dest)
      for (let i = 0; i < 1000; i++) log.info({ i }, 'flushed with no writer')
      const err = ${flush}
      const flushedAt = performance.now()
      console.log(JSON.stringify({ event: 'flushed', code: err?.code ?? null }))
      process.on('exit', () => console.log(JSON.stringify({ event: 'exit', afterFlushMs: Math.round(performance.now() - flushedAt) })))`
    const producer = spawnNode(['--input-type=module', '-e', code], { cwd: ROOT })
    expect((await producer.waitForLine((l) => l.event === 'flushed', 30_000)).code).toBe('LOGFUNNEL_ERR_FLUSH_TIMEOUT')
    // With the writer away, the beforeExit close ends once the records are in the spool (about
    // spoolAfterMs); 5 s leaves room for a loaded machine, not for the thread's late answer.
    expect(await exitCode(producer, 20_000), producer.describe()).toBe(0)
    const exit = await producer.waitForLine((l) => l.event === 'exit', 1000)
    expect(exit.afterFlushMs, producer.describe()).toBeLessThan(5000)
    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= 1000, 30_000, () => `${lineCount(writer.file)} lines in the file`)
    expect((await writer.stop()).records).toBe(1000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 1000, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
}, 60_000)

describe('process.exit(0) with a spool it cannot write', () => {
  for (const [mode, writerState] of [['funnel', 'down'], ['funnel', 'up'], ['transport', 'down']] as const) {
    it(`${mode}, writer ${writerState}: says on stderr how many records were lost (before, nothing)`, async () => {
      const dir = tempDir()
      const writer = writerState === 'up' ? await startWriterChild(dir) : undefined
      // A spool directory below a plain file: it cannot be made (ENOTDIR), as on a read-only or full disk.
      writeFileSync(join(dir, 'a-file'), '')
      // The transport then waits closeTimeoutMs for receipts, as with no spool at all.
      const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, mode, exitAtOnce: true, producer: { spoolDir: join(dir, 'a-file', 'spool'), closeTimeoutMs: 300 } })
      expect(await exitCode(producer), producer.describe()).toBe(0)
      const said = mode === 'funnel'
        ? /LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended with (\d+) records without a receipt that could not be spooled/.exec(producer.stderr())
        : /LOGFUNNEL_ERR_CLOSE_TIMEOUT: close took longer than 300 ms: (\d+) records without a receipt may be lost/.exec(producer.stderr())
      expect(said, producer.describe()).not.toBe(null)
      const lost = Number(said?.[1])
      if (writer === undefined) {
        expect(lost).toBe(RECORDS)
        return
      }
      // Records written whose receipt had not come back are counted lost too: at least the rest.
      const { records } = await writer.stop()
      expect(lost).toBeGreaterThan(0)
      expect(records + lost).toBeGreaterThanOrEqual(RECORDS)
      expect(await verifyFile(writer.file)).toMatchObject({ lines: records, torn: 0, duplicates: 0, gaps: 0 })
    })
  }
})


/**
 * A record over `maxFrameBytes` is refused with a process warning (RecordTooLargeError). Node
 * prints a warning on the next tick, so a script that calls process.exit() right after logging
 * ended before it was said: the record was dropped without a word.
 */
it('funnel(): a record over maxFrameBytes, then process.exit(0) at once: the LOGFUNNEL_ERR_RECORD_TOO_LARGE warning is on stderr once, the other records in the file', async () => {
  const dir = tempDir()
  const writer = await startWriterChild(dir)
  // Records 0 and 2 of 100 bytes, record 1 of 4,000 against a maxFrameBytes of 1,024.
  const producer = spawnProducer({ endpoint: writer.endpoint, records: 3, sizes: [100, 4000], exitAtOnce: true, producer: { maxFrameBytes: 1024 } })
  expect(await exitCode(producer), producer.describe()).toBe(0)
  expect(producer.stderr().match(/LOGFUNNEL_ERR_RECORD_TOO_LARGE/g) ?? [], producer.describe()).toHaveLength(1)
  expect(producer.stderr(), producer.describe()).toMatch(/record of \d+ bytes exceeds maxFrameBytes \(1024 bytes\); it was not sent/)
  await waitFor(() => lineCount(writer.file) >= 2, 30_000, () => `${lineCount(writer.file)} lines in the file`)
  const summary = await writer.stop()
  expect(summary).toMatchObject({ records: 2, duplicates: 0 })
})
