import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cleanUpChildren, exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { startWriterWith } from './helpers/writer-cli.js'
import { freePortPair } from './helpers/ports.js'

/**
 * A worker thread's sender thread started by the thread that made the worker (its host, when it
 * has loaded logfunnel), so that it outlives the worker: a pool that terminates a thread as soon
 * as its task has answered (Piscina's and tinypool's `destroy()`) loses nothing of what the task
 * logged, with or without a spool. Before, the sender thread ended with its worker, and the
 * records it had not sent yet went with it (35,000 of 40,000 kept with Piscina, by hand).
 */

const WORKERS = 4
const RECORDS = 20_000
/** Larger than a ring slot (256 KiB): it travels beside the ring (ring-reader.ts). */
const BIG_BYTES = 300 * 1024

afterEach(cleanUpChildren)

/** Each worker's records in the file, in file order: asserts every one of 0..count-1 is there once and in order. */
function expectAllInOrder (file: string, workers: number, count: number): void {
  const seqs = new Map<number, number[]>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    const { w, seq } = JSON.parse(line) as { w: number, seq: number }
    const list = seqs.get(w) ?? []
    list.push(seq)
    seqs.set(w, list)
  }
  const expected = Array.from({ length: count }, (_, i) => i)
  for (let w = 0; w < workers; w++) {
    const got = seqs.get(w) ?? []
    // One comparison per worker (not per record): the first difference is what it shows.
    const firstWrong = got.findIndex((seq, i) => seq !== i)
    expect({ w, records: got.length, firstWrong }).toEqual({ w, records: count, firstWrong: -1 })
    expect(got).toEqual(expected)
  }
}

describe('worker threads terminated as soon as their task answers (no flush, no close)', () => {
  it(`ipc, connected first: ${WORKERS} x ${RECORDS} records and one of 300 KiB each, all in the file once, in order; the pool's process ends by itself`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pool = spawnNode([fixture('hosted-pool'), writer.endpoint, 'host', String(WORKERS), String(RECORDS), String(BIG_BYTES)])
    expect(await exitCode(pool, 90_000), pool.describe()).toBe(0)
    const summary = await writer.stop({ spoolTaken: true })
    expectAllInOrder(writer.file, WORKERS, RECORDS + 1)
    // Each terminated thread's sender waits for its receipts before it ends: no batch reaches the
    // writer twice (before, what had no receipt was spooled at once: duplicate batches, counted).
    expect(summary.duplicates, JSON.stringify(summary)).toBe(0)
  }, 150_000)

  it(`tcp without a spool, logging at once: ${WORKERS} x ${RECORDS} records, all in the file once, in order`, async () => {
    const dir = tempDir()
    const file = join(dir, 'app.log')
    const endpoint = `tcp://127.0.0.1:${await freePortPair()}`
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint])
    const pool = spawnNode([fixture('hosted-pool'), endpoint, 'host-at-start', String(WORKERS), String(RECORDS)])
    expect(await exitCode(pool, 90_000), pool.describe()).toBe(0)
    await writer.stop()
    expectAllInOrder(file, WORKERS, RECORDS)
  }, 150_000)
})

describe('a host whose event loop is busy', () => {
  it('is passed by: each worker starts its own sender and its flush resolves while the host is still blocked', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pool = spawnNode([fixture('hosted-pool'), writer.endpoint, 'busy-host', '2', '100'])
    expect(await exitCode(pool, 90_000), pool.describe()).toBe(0)
    await writer.stop()
    const { blockedUntil, flushedAt } = JSON.parse(pool.stdout()) as { blockedUntil: number, flushedAt: Record<string, number> }
    expect(Object.keys(flushedAt).sort()).toEqual(['0', '1'])
    for (const at of Object.values(flushedAt)) expect(at).toBeLessThan(blockedUntil)
    expectAllInOrder(writer.file, 2, 100)
  }, 150_000)
})
