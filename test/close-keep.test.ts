import { writeFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'
import { startWriterChild, type WriterChild } from './helpers/cluster.js'

/**
 * A logger made and closed per request (`funnel()`, log, `await dest.close()`): the last
 * destination's close() keeps the sender (thread, ring, connection) for the next destination with
 * the same options, KEEP_MS (funnel.ts), once every record has its receipt. Before, each close()
 * ended the sender and the next request started a thread again: 70-95 ms of CPU per request.
 */

const REQUESTS = 20
const RECORDS = 5
/** Large, so that "well before the deadline" holds on a loaded machine too. */
const DEADLINE_MS = 20_000
/** The keep, shortened (LOGFUNNEL_TEST_KEEP_MS) so that a test can wait it out. */
const KEEP_MS = 1000
/** Past the sum of a producer socket's dialling waits (50 + 100 + 200 + 400 + 800 ms): each wait is 1 s from there on. */
const RECONNECT_BACKOFF_MS = 2000

/** A receipted close of `records` records: the stats a new sender would have. */
const OWN_STATS = (records: number): object => ({ records, batches: 1, receipted: 0, heldBytes: 0, spooled: 0, spooledRecords: 0, abandoned: 0, dropped: 0, tooLarge: 0 })

function perRequest (params: object, env: Record<string, string> = {}): ReturnType<typeof spawnNode> {
  return spawnNode([fixture('close-per-request'), JSON.stringify(params)], { env: { ...process.env, ...env } })
}

/**
 * `spoolTaken`: the batch the stopped writer had in its socket's buffer came again from the spool;
 * the writer drops it as a duplicate (its summary counts it), the file has it once.
 */
async function expectAllOnceInOrder (writer: WriterChild, records: number, producers: number, spoolTaken = false): Promise<void> {
  expect(await writer.stop({ spoolTaken })).toMatchObject({ records, producers, ...(spoolTaken ? {} : { duplicates: 0 }) })
  expect(await verifyFile(writer.file, { producerKey: 'who', seqKey: 'seq' })).toMatchObject({ ok: true, lines: records, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
}

describe('a funnel() destination made and closed per request', () => {
  it(`${REQUESTS} requests of ${RECORDS} records, each close() awaited: one sender thread started, still there after the last (kept); each close()'s stats are its own records, receipted, one 'stats' event each; the process ends by itself; the writer saw one producer; every record once, in order`, async () => {
    const writer = await startWriterChild(tempDir())
    const child = perRequest({ endpoint: writer.endpoint, requests: REQUESTS, records: RECORDS, then: 'end' })
    expect(await exitCode(child), child.describe()).toBe(0)
    const done = await child.waitForLine((l) => l.event === 'done')
    // Before, 20 threads started (one per request) and none was live after the last close().
    expect(done.threadsStarted, child.describe()).toBe(1)
    expect(done.threadsLive).toBe(1)
    expect(done.stats).toHaveLength(REQUESTS)
    for (const stats of done.stats) expect(stats).toMatchObject(OWN_STATS(RECORDS))
    expect(done.statsEvents).toBe(REQUESTS)
    expect(done.errors).toEqual([])
    // Before, 20 producers: a sender each.
    await expectAllOnceInOrder(writer, REQUESTS * RECORDS, 1)
  })

  it('process.exit(0) right after the last close(): exit 0, every record once, in order', async () => {
    const writer = await startWriterChild(tempDir())
    const child = perRequest({ endpoint: writer.endpoint, requests: REQUESTS, records: RECORDS, then: 'exit' })
    expect(await exitCode(child), child.describe()).toBe(0)
    const done = await child.waitForLine((l) => l.event === 'done')
    expect(done.threadsStarted, child.describe()).toBe(1)
    expect(done.errors).toEqual([])
    await expectAllOnceInOrder(writer, REQUESTS * RECORDS, 1)
  })

  it('a new destination with the same options right after a close(): the same sender; its close()\'s stats are its own records only', async () => {
    const writer = await startWriterChild(tempDir())
    const child = perRequest({ endpoint: writer.endpoint, requests: 1, records: RECORDS, then: 'again' })
    expect(await exitCode(child), child.describe()).toBe(0)
    const done = await child.waitForLine((l) => l.event === 'done')
    expect(done.threadsStarted, child.describe()).toBe(1)
    expect(done.stats).toEqual([expect.objectContaining(OWN_STATS(RECORDS)), expect.objectContaining(OWN_STATS(RECORDS))])
    expect(done.statsEvents).toBe(2)
    await expectAllOnceInOrder(writer, 2 * RECORDS, 1)
  })

  it(`the kept sender ends KEEP_MS (${KEEP_MS} ms here) after the last close(); a destination made after that starts a new one; every record once, in order`, async () => {
    const writer = await startWriterChild(tempDir())
    const child = perRequest({ endpoint: writer.endpoint, requests: 2, records: RECORDS, then: 'again-after-keep' }, { LOGFUNNEL_TEST_KEEP_MS: String(KEEP_MS) })
    expect(await exitCode(child), child.describe()).toBe(0)
    const letGo = await child.waitForLine((l) => l.event === 'let-go')
    expect(letGo.live, child.describe()).toBe(0)
    // Not before KEEP_MS (a timer's few ms of slack allowed); the fixture waits 60 s at most.
    expect(letGo.ms).toBeGreaterThanOrEqual(KEEP_MS - 20)
    expect(letGo.ms).toBeLessThan(60_000)
    const done = await child.waitForLine((l) => l.event === 'done')
    expect(done.threadsStarted, child.describe()).toBe(2)
    for (const stats of done.stats) expect(stats).toMatchObject(OWN_STATS(RECORDS))
    expect(done.errors).toEqual([])
    // Two senders, one after the other: two producers for the writer.
    await expectAllOnceInOrder(writer, 3 * RECORDS, 2)
  })

  it(`the writer stopped (SIGSTOP) while the sender is kept: the next close(${DEADLINE_MS}) ends by the spool well before its deadline, says so once (LOGFUNNEL_ERR_CLOSE_TIMEOUT), its stats count them spooled; the writer, continued, writes every record once, in order`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const go = join(dir, 'go')
    const child = perRequest({ endpoint: writer.endpoint, requests: 1, records: RECORDS, then: 'outage', go, closeDeadlineMs: DEADLINE_MS })
    try {
      expect(await child.waitForLine((l) => l.event === 'kept', 30_000)).toEqual({ event: 'kept', threadsLive: 1 })
      writer.child.proc.kill('SIGSTOP')
      writeFileSync(go, '')
      const done = await child.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(done.threadsStarted).toBe(1)
      expect(done.closeMs[1], child.describe()).toBeLessThan(DEADLINE_MS / 3)
      expect(done.stats[0]).toMatchObject(OWN_STATS(RECORDS))
      expect(done.stats[1]).toMatchObject({ records: RECORDS, spooledRecords: RECORDS, abandoned: 0, spoolErrors: 0 })
      expect(done.errors, child.describe()).toEqual(['LOGFUNNEL_ERR_CLOSE_TIMEOUT'])
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await expectAllOnceInOrder(writer, 2 * RECORDS, 1, true)
  })

  it('the same outage, the writer never judged away (spoolAfterMs 10 min): the next close(3000) spools at its deadline, says so once, its stats count them spooled; every record once, in order', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const go = join(dir, 'go')
    const deadlineMs = 3000
    const child = perRequest({ endpoint: writer.endpoint, requests: 1, records: RECORDS, then: 'outage', go, closeDeadlineMs: deadlineMs, producer: { spoolAfterMs: 600_000 } })
    try {
      expect(await child.waitForLine((l) => l.event === 'kept', 30_000)).toEqual({ event: 'kept', threadsLive: 1 })
      writer.child.proc.kill('SIGSTOP')
      writeFileSync(go, '')
      const done = await child.waitForLine((l) => l.event === 'done', 10 * deadlineMs)
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(done.threadsStarted).toBe(1)
      // The deadline, not the whole of it twice (the kept close's flush, then the close's own).
      expect(done.closeMs[1], child.describe()).toBeGreaterThanOrEqual(deadlineMs - 20)
      expect(done.closeMs[1], child.describe()).toBeLessThan(2 * deadlineMs)
      expect(done.stats[1]).toMatchObject({ records: RECORDS, spooledRecords: RECORDS, abandoned: 0, spoolErrors: 0 })
      expect(done.errors, child.describe()).toEqual(['LOGFUNNEL_ERR_CLOSE_TIMEOUT'])
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await expectAllOnceInOrder(writer, 2 * RECORDS, 1, true)
  })

  it('the writer restarted while the sender is kept: the next request connects at once, its close() gets its receipts (nothing spooled, nothing reported); every record once, in order', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    const go = join(dir, 'go')
    const child = perRequest({ endpoint: first.endpoint, requests: 1, records: RECORDS, then: 'outage', go, closeDeadlineMs: DEADLINE_MS })
    expect(await child.waitForLine((l) => l.event === 'kept', 30_000)).toEqual({ event: 'kept', threadsLive: 1 })
    expect(await first.stop()).toMatchObject({ records: RECORDS, producers: 1 })
    // Long enough for the kept sender's dialling to back off to its longest wait (1 s,
    // producer/zmtp/socket.ts): before, the next request's records waited for its next dial,
    // the writer was judged away after spoolAfterMs (100 ms) and they went to the spool.
    await delay(RECONNECT_BACKOFF_MS)
    const second = await startWriterChild(dir)
    writeFileSync(go, '')
    const done = await child.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(done.stats[1], child.describe()).toMatchObject(OWN_STATS(RECORDS))
    expect(done.errors, child.describe()).toEqual([])
    // A new sender for it: the kept one had lost its connection.
    expect(done.threadsStarted).toBe(2)
    // (The kept sender may have dialled the new writer before it was let go: a producer with no records.)
    expect(await second.stop()).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(await verifyFile(second.file, { producerKey: 'who', seqKey: 'seq' })).toMatchObject({ ok: true, lines: 2 * RECORDS, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })

  it('in a worker thread, terminate()d right after its last close(): one sender thread started (its host\'s), every record once, in order', async () => {
    const writer = await startWriterChild(tempDir())
    const child = perRequest({ endpoint: writer.endpoint, requests: REQUESTS, records: RECORDS, then: 'worker' })
    expect(await exitCode(child), child.describe()).toBe(0)
    const done = await child.waitForLine((l) => l.event === 'done')
    await child.waitForLine((l) => l.event === 'terminated')
    expect(done.threadsStarted, child.describe()).toBe(1)
    for (const stats of done.stats) expect(stats).toMatchObject({ records: RECORDS, spooledRecords: 0, abandoned: 0 })
    expect(done.errors).toEqual([])
    await expectAllOnceInOrder(writer, REQUESTS * RECORDS, 1)
  })
})
