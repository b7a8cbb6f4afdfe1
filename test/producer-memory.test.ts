import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'

const RECORDS = 1_000_000
/** README, "Memory": the bound for these buffer sizes (1,000,000 records are about 150 MB). */
const PRODUCER_RSS_BOUND_BYTES = 160 * 1024 * 1024
const BUFFERS = { highWaterMark: 4 * 1024 * 1024, threadBufferBytes: 1024 * 1024 }

/** CPU ticks (user + system) the process has used so far. */
function cpuTicks (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(fields[11]) + Number(fields[12])
}

function rssBytes (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1]) * 1024
}

describe('producer memory against a stopped writer (SIGSTOP)', () => {
  it(`onFull 'block': the log call blocks, memory stays bounded, all ${RECORDS} records arrive after SIGCONT`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    // blockTimeoutMs 0: the log call waits for the writer however long it takes.
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, announceAfter: 10_000, closeDeadlineMs: 240_000, producer: { ...BUFFERS, blockTimeoutMs: 0 } })
    await producer.waitForLine((l) => l.event === 'logging', 60_000)
    // Blocked means no CPU used: wait until the count stays put over three 100 ms looks.
    const pid = producer.proc.pid as number
    const samples: number[] = []
    await waitFor(() => {
      samples.push(cpuTicks(pid))
      return samples.length >= 4 && samples.at(-1) === samples.at(-4)
    }, 60_000, () => `producer CPU ticks still rising: ${samples.slice(-4).join(', ')}`)
    const blockedRss = rssBytes(pid)
    expect(producer.stdout()).not.toContain('"done"')
    expect(blockedRss).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)

    writer.child.proc.kill('SIGCONT')
    const done = await producer.waitForLine((l) => l.event === 'done', 240_000)
    expect(await exitCode(producer)).toBe(0)
    expect(done).toMatchObject({ closeError: null, stats: { records: RECORDS, dropped: 0 } })
    expect(done.maxRssBytes).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)
    const summary = await writer.stop({ spoolTaken: true, spoolDeadlineMs: 60_000 })
    expect(summary.records).toBe(RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, ok: true })
  })

  it(`onFull 'drop': the log call never waits for the writer, memory stays bounded, drops are counted and reported`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    const producer = spawnProducer({
      endpoint: writer.endpoint, records: RECORDS, announceAfter: RECORDS, closeDeadlineMs: 60_000, producer: { ...BUFFERS, onFull: 'drop' }
    })
    await producer.waitForLine((l) => l.event === 'logging', 120_000)
    expect(rssBytes(producer.proc.pid as number)).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)
    writer.child.proc.kill('SIGCONT')
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer)).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.maxRssBytes).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)
    const { records, dropped } = done.stats
    expect(records + dropped).toBe(RECORDS)
    expect(dropped).toBeGreaterThan(RECORDS / 2)
    // The kept records plus the one notice line, which close() may have put in the spool (sent
    // last, it can lack its receipt when the sender closes): the writer takes it from there.
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary.records).toBe(records + 1)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records + 1, unkeyed: 1, torn: 0, duplicates: 0, reordered: 0 })
  })

  it(`onFull 'block' with no writer: the log calls wait blockTimeoutMs, then what is held goes to the spool and logging goes on; every record arrives once a writer starts`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const records = 100_000 // about 15 MB: over highWaterMark + the ring several times
    const producer = spawnProducer({ endpoint, records, closeDeadlineMs: 500, producer: { ...BUFFERS, blockTimeoutMs: 500 } })
    // Before blockTimeoutMs this never ended: the log call waited for a writer that was not there.
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer)).toBe(0)
    expect(done.stats).toMatchObject({ records, dropped: 0 })
    expect(done.stats.spooled).toBeGreaterThan(0)
    expect(done.maxRssBytes).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)
    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= records, 60_000, () => `${lineCount(writer.file)} lines`)
    expect((await writer.stop()).records).toBe(records)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records, producers: 1, ok: true })
  })

  it(`onFull 'block' with no writer: SIGTERM to a producer whose log calls wait ends it within blockTimeoutMs, its records spooled, none torn or out of order`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // A server's logging: it yields to the event loop every 1,000 records, where the handler runs.
    const producer = spawnProducer({ endpoint, records: 50_000_000, announceAfter: 10_000, pauseEvery: 1000, pauseMs: 1, producer: { ...BUFFERS, blockTimeoutMs: 1000 } })
    await producer.waitForLine((l) => l.event === 'logging', 60_000)
    producer.proc.kill('SIGTERM')
    const sent = Date.now()
    expect(await exitCode(producer, 20_000)).toBe('SIGTERM')
    expect(Date.now() - sent).toBeLessThan(10_000)
    const writer = await startWriterChild(dir)
    const summary = await writer.stop({ spoolTaken: true, spoolDeadlineMs: 60_000 })
    expect(summary.records).toBeGreaterThanOrEqual(10_000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: summary.records, producers: 1, ok: true })
  })
}, 300_000)
