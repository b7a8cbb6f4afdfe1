import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ProducerOptions } from '../shared/options.js'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, spawnNode, stderrEvents, tempDir, type Child } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * While the spool holds batches the writer has not taken yet, the writer must take them before
 * any later batch. With the writer away, later batches follow them there; with it connected,
 * they wait in memory until its receipt says it has taken the spool, then go through the socket.
 * Past `highWaterMark` in that state what is held goes to the spool, whatever `onFull` says.
 */

const MiB = 1024 * 1024
const KiB = 1024
const PAYLOAD_BYTES = 200
const MAX_BATCH_BYTES = 256 * KiB
// spoolAfterMs 5 s: once connected, the writer is not judged away by the heartbeat rule, which a
// loaded machine's writer can meet at the default 100 ms (then later batches rightly follow into
// the spool, and a count of what went there says nothing about this rule: 41,800 of 41,700 once).
const SPOOLING: ProducerOptions = { onFull: 'spool', highWaterMark: 4 * MiB, threadBufferBytes: 1 * MiB, maxBatchBytes: MAX_BATCH_BYTES, spoolAfterMs: 5000 }
/** More records than the ring, `highWaterMark` and two batches hold (each line is longer than its payload). */
const SPOOL_AFTER = Math.ceil((4 * MiB + 1 * MiB + 2 * MAX_BATCH_BYTES) / PAYLOAD_BYTES)
/** Records logged after the writer has taken the spool. */
const AFTER = 20_000
const DEADLINE_MS = 60_000

function seqsIn (file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line).seq)
}

function spawnWithStdin (name: string, params: object): Child {
  return spawnNode([fixture(name), JSON.stringify(params)], { stdio: ['pipe', 'pipe', 'pipe'] })
}

describe('the spool and a writer that comes back', () => {
  it(`onFull 'spool', logging on across the writer's start: once the writer has taken the spool, the ${AFTER} records after go through the socket; every record once, in order`, async () => {
    const dir = tempDir()
    const producer = spawnWithStdin('producer-logs-across-writer-start', {
      endpoint: `ipc://${join(dir, 'w.sock')}`, producer: SPOOLING, payloadBytes: PAYLOAD_BYTES, round: 100, pauseMs: 5, spoolAfter: SPOOL_AFTER, after: AFTER, deadlineMs: DEADLINE_MS
    })
    await producer.waitForLine((l) => l.event === 'spooling', DEADLINE_MS)
    const writer = await startWriterChild(dir)
    producer.proc.stdin?.write('up\n')
    const taken = await producer.waitForLine((l) => l.event === 'taken', DEADLINE_MS)
    const done = await producer.waitForLine((l) => l.event === 'done', DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const { stats, logged } = done
    expect(done.closeError).toBe(null)
    expect(stats).toMatchObject({ records: logged, dropped: 0, abandoned: 0, spoolErrors: 0 })
    // The writer away, records went to the spool: at most those logged before it had taken the
    // records logged before its start. (Before, every record did: each new batch followed the
    // spooled ones there while one of them had no receipt, which under continuous logging lasted
    // as long as the logging: 105,600 of 105,600 in a run that logged 60,000 after.)
    expect(stats.spooledRecords).toBeGreaterThan(0)
    expect(stats.spooledRecords, JSON.stringify(done)).toBeLessThanOrEqual(taken.logged)

    const summary = await writer.stop({ spoolTaken: true })
    const [final] = stderrEvents(writer.child, 'stats').filter((l) => l.final === true)
    // They came through the socket: at least one message per batch of them.
    expect(final.frames).toBeGreaterThanOrEqual(Math.ceil((logged - taken.logged) * PAYLOAD_BYTES / MAX_BATCH_BYTES))
    expect(summary).toMatchObject({ records: logged, rejected: {} })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: logged, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
    expect(seqsIn(writer.file)).toEqual(Array.from({ length: logged }, (_v, i) => i))
  })

  // spoolAfterMs 0: the stopped writer never counts as away, so later batches wait in memory
  // behind the spooled ones; 100 (the default): it counts as away, they follow them there.
  for (const spoolAfterMs of [0, 100]) {
    it(`onFull 'block', spoolAfterMs ${spoolAfterMs}, a writer stopped (SIGSTOP) but connected: one log call waits blockTimeoutMs, not one per highWaterMark; every record once, in order`, async () => {
      const BLOCK_MS = 1000
      const RECORDS = 3000 // about 12 times highWaterMark
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const producer = spawnWithStdin('producer-blocks-on-stopped-writer', {
        endpoint: writer.endpoint,
        producer: { onFull: 'block', blockTimeoutMs: BLOCK_MS, spoolAfterMs, highWaterMark: 256 * KiB, maxFrameBytes: 64 * KiB, maxBatchBytes: 16 * KiB, threadBufferBytes: 64 * KiB },
        records: RECORDS,
        payloadBytes: 1000,
        waitMs: BLOCK_MS / 2,
        deadlineMs: DEADLINE_MS
      })
      await producer.waitForLine((l) => l.event === 'connected', DEADLINE_MS)
      writer.child.proc.kill('SIGSTOP')
      let logged
      try {
        producer.proc.stdin?.write('stopped\n')
        logged = await producer.waitForLine((l) => l.event === 'logged', DEADLINE_MS)
      } finally {
        writer.child.proc.kill('SIGCONT')
      }
      producer.proc.stdin?.write('go on\n')
      const done = await producer.waitForLine((l) => l.event === 'done', DEADLINE_MS)
      expect(await exitCode(producer), producer.describe()).toBe(0)
      expect(logged.waits, producer.describe()).toBe(1)
      expect(done.closeError).toBe(null)
      expect(done.stats).toMatchObject({ records: RECORDS, dropped: 0, abandoned: 0, spoolErrors: 0 })
      expect(done.stats.spooledRecords).toBeGreaterThan(0)
      expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: RECORDS, rejected: {} })
      expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
      expect(seqsIn(writer.file)).toEqual(Array.from({ length: RECORDS }, (_v, i) => i))
    })
  }
}, 180_000)
