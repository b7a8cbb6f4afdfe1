import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeHeader } from '../shared/protocol.js'
import { encodeSpoolEntry } from '../shared/spool.js'
import { verifyFile } from '../shared/verify.js'
import type { ProducerOptions } from '../shared/options.js'
import { exitCode, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'

const RECORDS = 1_000_000
/**
 * README, "Memory": with highWaterMark 4 MiB and threadBufferBytes 1 MiB a producer stays under
 * this however much it logs; keeping the 1,000,000 records (about 150 MB) would not fit.
 */
const PRODUCER_RSS_BOUND_BYTES = 160 * 1024 * 1024
const PRODUCER: ProducerOptions = { onFull: 'spool', highWaterMark: 4 * 1024 * 1024, threadBufferBytes: 1024 * 1024 }

describe("onFull 'spool'", () => {
  it(`the writer stopped (SIGSTOP) while a producer logs ${RECORDS} records: memory bounded, all arrive in order after SIGCONT`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    const producer = spawnProducer({
      endpoint: writer.endpoint, records: RECORDS, announceAfter: RECORDS, closeDeadlineMs: 240_000, producer: PRODUCER
    })
    await producer.waitForLine((l) => l.event === 'logging', 240_000)
    expect(readdirSync(join(dir, 'w.sock.spool')).length).toBeGreaterThan(0)
    writer.child.proc.kill('SIGCONT')
    const done = await producer.waitForLine((l) => l.event === 'done', 240_000)
    expect(await exitCode(producer)).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats.spooled).toBeGreaterThan(0)
    process.stdout.write(`spool overflow: producer max RSS ${Math.round(done.maxRssBytes / 1048576)} MiB, ${done.stats.spooled} batches spooled\n`)
    expect(done.maxRssBytes).toBeLessThan(PRODUCER_RSS_BOUND_BYTES)

    // close() may end before the writer answers again (it was away when the close began), with
    // the rest in the spool: the writer takes those files before it is stopped.
    const summary = await writer.stop({ spoolTaken: true, spoolDeadlineMs: 240_000 })
    expect(summary.records).toBe(RECORDS)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0, ok: true })
  })

  it('a spool file cut short mid-batch is ingested up to its last whole batch; the rest is moved aside and reported', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir)
    const producerId = randomBytes(16)
    const entries = [0, 1, 2].map((seq) => {
      const payload = Buffer.from(`{"pid":1,"seq":${seq * 2}}\n{"pid":1,"seq":${seq * 2 + 1}}\n`)
      return Buffer.concat(encodeSpoolEntry(encodeHeader({ records: 2, seq, base: 0, producerId }), payload))
    })
    const torn = entries[2]!.subarray(0, entries[2]!.length - 7)
    const name = `${producerId.toString('hex')}-1-0000000000.spool`
    writeFileSync(join(spoolDir, name), Buffer.concat([entries[0]!, entries[1]!, torn]))

    const writer = await startWriterChild(dir)
    const lines = (): number => readFileSync(writer.file, 'utf8').split('\n').length - 1
    await waitFor(() => lines() >= 4, 20_000, () => `${lines()} lines`)
    const summary = await writer.stop()
    const [tornEvent] = stderrEvents(writer.child, 'spool-torn')
    expect(summary.records).toBe(4)
    expect(summary.spool).toEqual({ files: 1, entries: 2, torn: 1, rejected: 0, foreign: 0, leftAtStop: 0 })
    expect(readFileSync(writer.file, 'utf8')).toBe('{"pid":1,"seq":0}\n{"pid":1,"seq":1}\n{"pid":1,"seq":2}\n{"pid":1,"seq":3}\n')
    expect(readFileSync(join(spoolDir, `${name}.torn`))).toEqual(torn)
    expect(readdirSync(spoolDir)).toEqual([`${name}.torn`])
    expect(tornEvent).toMatchObject({ event: 'spool-torn', tornBytes: torn.length, reason: 'truncated' })
  })
}, 300_000)
