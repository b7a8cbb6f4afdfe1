import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor, type Child } from './helpers/children.js'
import { runProducers, startWriterChild, type WriterChild } from './helpers/cluster.js'
import { spoolFilesWaiting } from './helpers/writer-cli.js'
import { verifyFile } from '../shared/verify.js'

/**
 * A worker thread that logs through funnel() and is terminated before its sender thread has
 * connected (about 0.2 s; 0.8 s for four threads starting together on 2 cores), as a pool ends
 * its idle threads, loses nothing it logged: in that early phase each line goes to the spool
 * from the logging thread (producer/early-spool.ts), and the writer takes such a segment, and
 * removes it, once its thread is gone, the process living on. Before, every such record was
 * lost; then the segments stayed in the spool directory until the process ended, and the writer
 * read each again then.
 */

/** How long the writer may take to have every record once the threads have ended: a segment unchanged for 1 s, then a scan. */
const TAKEN_DEADLINE_MS = 20_000

interface Params { endpoint: string, records: number, afterMs: number, threads: number, rounds: number, againAfterMs?: number, live?: boolean, host?: boolean }

function spawnThreads (params: Params): Child {
  return spawnNode([fixture('terminate-early'), JSON.stringify(params)], { stdio: ['pipe', 'pipe', 'pipe'] })
}

/**
 * Waits, while the threads' process lives on, until the file holds `total` lines and no spool
 * file is left (the writer removes a terminated thread's segment once it has taken it); then
 * ends the process and stops the writer. Returns the writer's summary.
 */
async function takenWhileAlive (host: Child, writer: WriterChild, total: number): Promise<any> {
  await waitFor(() => existsSync(writer.file) && lineCount(writer.file) >= total && spoolFilesWaiting(writer.spoolDir).length === 0, TAKEN_DEADLINE_MS,
    () => `${lineCount(writer.file)} of ${total} lines; spool: ${spoolFilesWaiting(writer.spoolDir).join(', ')}\n${writer.child.describe()}`)
  expect(host.proc.exitCode, 'taken while the process lives on').toBe(null)
  host.proc.stdin?.end()
  expect(await exitCode(host), host.describe()).toBe(0)
  return await writer.stop()
}

async function expectAll (file: string, threads: number, records: number): Promise<void> {
  expect(await verifyFile(file, { producerKey: 'w', seqKey: 'seq', expect: records })).toMatchObject({
    lines: threads * records, producers: threads, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, ok: true
  })
}

describe('worker threads terminated before their sender connected (early spool)', () => {
  for (const afterMs of [0, 20, 100]) {
    it(`writer up, terminated ${afterMs} ms after logging 500 records: all 500 in the file, once and in order`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const host = spawnThreads({ endpoint: writer.endpoint, records: 500, afterMs, threads: 1, rounds: 1 })
      await host.waitForLine((l) => l.event === 'terminated', 30_000)
      const stopped = await takenWhileAlive(host, writer, 500)
      expect(stopped.records).toBe(500)
      await expectAll(writer.file, 1, 500)
    })
  }

  it('writer down, then started: the records of two terminated threads reach the file while their process lives on', async () => {
    const dir = tempDir()
    const host = spawnThreads({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 500, afterMs: 0, threads: 2, rounds: 1 })
    await host.waitForLine((l) => l.event === 'terminated', 30_000)
    const writer = await startWriterChild(dir)
    const stopped = await takenWhileAlive(host, writer, 1000)
    expect(stopped.records).toBe(1000)
    await expectAll(writer.file, 2, 500)
  })

  it('writer down: threads whose sender ended the early phase (no writer within spoolAfterMs) and copied what came later to the spool, terminated, then the writer started: all in the file, in order', async () => {
    const dir = tempDir()
    // Terminated 300 ms after their last records: those are no longer in flight (the ring, a batch being filled).
    const host = spawnThreads({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 500, afterMs: 300, threads: 2, rounds: 1, againAfterMs: 1500 })
    await host.waitForLine((l) => l.event === 'terminated', 30_000)
    const writer = await startWriterChild(dir)
    const stopped = await takenWhileAlive(host, writer, 2000)
    expect(stopped.records).toBe(2000)
    await expectAll(writer.file, 2, 1000)
  })

  // 12 threads at once; a pool of 4 threads, each terminated right after its task, 5 rounds; the
  // same where the main thread has not loaded logfunnel (each thread's sender ends with it: the
  // early phase alone keeps the records).
  for (const { threads, rounds, hosted } of [{ threads: 12, rounds: 1, hosted: true }, { threads: 4, rounds: 5, hosted: true }, { threads: 4, rounds: 5, hosted: false }]) {
    const total = threads * rounds * 1000
    it(`${threads} threads terminated right after logging 1,000 records each, ${rounds} round${rounds === 1 ? '' : 's'}${hosted ? '' : ', the main thread no host'}: all ${total.toLocaleString('en')} in the file`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const host = spawnThreads({ endpoint: writer.endpoint, records: 1000, afterMs: 0, threads, rounds, host: hosted })
      await host.waitForLine((l) => l.event === 'terminated', 60_000)
      const stopped = await takenWhileAlive(host, writer, total)
      expect(stopped.records).toBe(total)
      await expectAll(writer.file, threads * rounds, 1000)
    })
  }

  it('4 threads terminated in the middle of logging (writer down, the early phase lasting, 1 KiB entries): each record whose log call returned is in the file once, in order, and nothing torn', async () => {
    const dir = tempDir()
    const host = spawnNode([fixture('terminate-mid-logging'), JSON.stringify({ endpoint: `ipc://${join(dir, 'w.sock')}`, threads: 4, maxAfterMs: 200, maxBatchBytes: 1024 })], { stdio: ['pipe', 'pipe', 'pipe'] })
    const { logged } = await host.waitForLine((l) => l.event === 'terminated', 30_000) as { logged: number[] }
    const writer = await startWriterChild(dir)
    const least = logged.reduce((a, b) => a + b, 0)
    await waitFor(() => existsSync(writer.file) && lineCount(writer.file) >= least && spoolFilesWaiting(writer.spoolDir).length === 0, TAKEN_DEADLINE_MS,
      () => `${existsSync(writer.file) ? lineCount(writer.file) : 0} of at least ${least} lines; spool: ${spoolFilesWaiting(writer.spoolDir).join(', ')}\n${writer.child.describe()}`)
    host.proc.stdin?.end()
    expect(await exitCode(host), host.describe()).toBe(0)
    const stopped = await writer.stop()
    expect(stopped.spool).toMatchObject({ torn: 0, rejected: 0 })
    const seqs = new Map<number, number[]>()
    for (const line of readFileSync(writer.file, 'utf8').split('\n').filter((l) => l !== '')) {
      const { w, seq } = JSON.parse(line) as { w: number, seq: number }
      seqs.set(w, [...(seqs.get(w) ?? []), seq])
    }
    logged.forEach((n, w) => {
      const got = seqs.get(w) ?? []
      // The call in progress at the termination may have written its line before it returned.
      expect([n, n + 1], `thread ${w}: ${got.length} records, ${n} calls returned`).toContain(got.length)
      expect(got.every((seq, i) => seq === i), `thread ${w}: in order, none twice or missing`).toBe(true)
    })
  })

  it('threads that live on: once their records have receipts no spool file is left', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const host = spawnThreads({ endpoint: writer.endpoint, records: 500, afterMs: 0, threads: 4, rounds: 1, live: true })
    const { spoolFiles } = await host.waitForLine((l) => l.event === 'flushed', 30_000)
    expect(spoolFiles, 'each early segment is removed once receipted').toEqual([])
    expect(await exitCode(host), host.describe()).toBe(0)
    const stopped = await writer.stop()
    expect(stopped.records).toBe(2000)
    await expectAll(writer.file, 4, 500)
  })

  it('the main thread has no early phase: nothing goes to the spool with the writer up', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    await runProducers(1, { endpoint: writer.endpoint, records: 2000 })
    expect(existsSync(writer.spoolDir), 'no spool directory made').toBe(false)
    expect((await writer.stop()).records).toBe(2000)
  })
})
