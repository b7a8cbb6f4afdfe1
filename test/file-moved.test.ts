import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile, verifyFiles } from '../shared/verify.js'
import { FileSink } from '../writer/sink/file-sink.js'
import { nodeSinkFs } from '../writer/sink/sink-fs.js'
import { exitCode, lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { cannotMountTmpfs, mountTmpfs, unmountLazily } from './helpers/tmpfs.js'
import { batches, FaultyFs } from './helpers/faulty-fs.js'
import { spawnProducer, startWriterChild, type ProducerParams, type WriterChild } from './helpers/cluster.js'

/**
 * The log file moved away under a running writer without a SIGHUP. Before, a rename (an
 * operator's `mv`, logrotate without `postrotate`) left the writer in the renamed file for good,
 * saying nothing, and a file system unmounted under it (`umount -l`, another mounted in its
 * place) took every later record with it, all receipted: the path held nothing.
 */

const PRODUCERS = 2
const RECORDS = 4000
const HALF = 2000

/**
 * Runs the producers in two halves: the first is in the file before `between()` runs, the
 * second (paced to last about 2 s, past the writer's MOVED_GRACE_MS) is logged after it, while
 * `whileLogging()` runs.
 */
async function logAround (endpoint: string, file: string, dir: string, between: () => void, whileLogging?: () => Promise<void>): Promise<void> {
  const go = join(dir, 'go')
  const params: ProducerParams = { endpoint, records: RECORDS, announceAfter: HALF, waitForFile: go, pauseEvery: 50, pauseMs: 50 }
  const producers = Array.from({ length: PRODUCERS }, () => spawnProducer(params))
  await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging', 60_000)))
  await waitFor(() => lineCount(file) === PRODUCERS * HALF, 30_000, () => `${lineCount(file)} lines in ${file}`)
  between()
  writeFileSync(go, '')
  await whileLogging?.()
  for (const p of producers) {
    expect(await exitCode(p, 60_000), p.describe()).toBe(0)
    expect((await p.waitForLine((l) => l.event === 'done')).closeError ?? null, p.describe()).toBe(null)
  }
}

/** Per producer (pid): the lowest and highest seq in `file`, and how many lines. */
function seqRuns (file: string): Map<number, { min: number, max: number, count: number }> {
  const runs = new Map<number, { min: number, max: number, count: number }>()
  for (const line of readFileSync(file, 'utf8').split('\n').slice(0, -1)) {
    const { pid, seq } = JSON.parse(line) as { pid: number, seq: number }
    const run = runs.get(pid) ?? { min: seq, max: seq, count: 0 }
    runs.set(pid, { min: Math.min(run.min, seq), max: Math.max(run.max, seq), count: run.count + 1 })
  }
  return runs
}

describe('the log file renamed away without a SIGHUP', () => {
  it('the writer says so (moved), makes a new file at the path after 1 s; the two files hold every record once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const renamed = `${writer.file}.old`
    await logAround(writer.endpoint, writer.file, dir, () => renameSync(writer.file, renamed))
    const summary = await writer.stop({ spoolTaken: true })

    expect(stderrEvents(writer.child, 'moved')).toEqual([{ event: 'moved', file: writer.file, newFile: false, reopenInMs: 1000 }])
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, fileErrors: 0 })
    expect(lineCount(writer.file)).toBeGreaterThan(0)
    expect(await verifyFiles([renamed, writer.file])).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, ok: true })
  })

  it('a new file made at the path (logrotate create, no postrotate) is reopened at once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const renamed = `${writer.file}.1`
    await logAround(writer.endpoint, writer.file, dir, () => {
      renameSync(writer.file, renamed)
      writeFileSync(writer.file, '')
    })
    const summary = await writer.stop({ spoolTaken: true })

    expect(stderrEvents(writer.child, 'moved')).toEqual([{ event: 'moved', file: writer.file, newFile: true, reopenInMs: 0 }])
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, fileErrors: 0 })
    expect(lineCount(writer.file)).toBeGreaterThan(0)
    expect(await verifyFiles([renamed, writer.file])).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, ok: true })
  })
}, 120_000)

describe('a file system whose stat(path) and fstat(fd) disagree on the file', () => {
  it('gets no path checks: no moved event, no reopen, every batch written once', async () => {
    const fs = new FaultyFs()
    // As overlayfs before Linux 4.19: the path's device is not the descriptor's.
    fs.stat = async (path: string) => ({ ...await nodeSinkFs.stat(path), dev: -1 })
    const file = join(tempDir(), 'logs', 'app.log')
    const sink = new FileSink(file, { fs })
    const moved: unknown[] = []
    const errors: unknown[] = []
    sink.on('moved', (info: unknown) => moved.push(info))
    sink.on('error', (err: unknown) => errors.push(err))
    await sink.ready()
    const lines = batches(200, 100)
    for (const line of lines) sink.append(line)
    await sink.flushed()
    expect(await sink.end()).toBe(0)

    expect({ moved, errors, opens: fs.calls.open }).toEqual({ moved: [], errors: [], opens: 1 })
    expect(readFileSync(file)).toEqual(Buffer.concat(lines))
  })
})

const cannotMount = cannotMountTmpfs()
if (cannotMount !== undefined) console.log(`skipping the unmount test: ${cannotMount}`)

describe('the file system of the log file unmounted under the writer (umount -l, a new tmpfs in its place)', () => {
  it.skipIf(cannotMount !== undefined)('the writer reports it and recreates the file on the new one: every record logged after, in order', async () => {
    await onTmpfs(async (writer, logs, dir) => {
      await logAround(writer.endpoint, writer.file, dir, () => {
        unmountLazily(logs)
        mountTmpfs(logs, '16m')
      })
      const summary = await writer.stop({ spoolTaken: true })

      expect(stderrEvents(writer.child, 'error').map((e) => [e.code, e.op, e.fsCode, e.retryInMs])).toEqual([['LOGFUNNEL_ERR_FILE', 'write', 'ENOENT', 0]])
      expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, fileErrors: 1 })
      expectTailsWhole(writer.file)
      expect(await verifyFile(writer.file, { fromFirst: true })).toMatchObject({ torn: 0, duplicates: 0, reordered: 0, gaps: 0 })
    })
  })
}, 120_000)

describe('a file system that fails every write, unmounted and replaced under the writer', () => {
  it.skipIf(cannotMount !== undefined)('the writer leaves the failing descriptor for a file on the new one: every batch it held is written there, in order', async () => {
    await onTmpfs(async (writer, logs, dir) => {
      await logAround(writer.endpoint, writer.file, dir, () => {
        // Fill what is left: every later write fails with ENOSPC, retried on the open descriptor.
        try {
          writeFileSync(join(logs, 'filler'), Buffer.alloc(16 * 1024 * 1024))
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
        }
      }, async () => {
        await waitFor(() => stderrEvents(writer.child, 'error').length >= 2, 30_000, () => writer.child.describe())
        // Before, the writer retried on the descriptor of the old file system for good.
        unmountLazily(logs)
        mountTmpfs(logs, '16m')
      })
      const summary = await writer.stop({ spoolTaken: true })

      const errors = stderrEvents(writer.child, 'error')
      expect(errors.slice(0, -1).every((e) => e.fsCode === 'ENOSPC' && e.op === 'write'), writer.child.describe()).toBe(true)
      expect(errors.at(-1)).toMatchObject({ code: 'LOGFUNNEL_ERR_FILE', op: 'write', fsCode: 'ENOENT', retryInMs: 0 })
      expect(stderrEvents(writer.child, 'resumed')).toHaveLength(1)
      expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, unwrittenBytes: 0 })
      expectTailsWhole(writer.file)
    })
  })
}, 120_000)

/** A writer on a 16 MiB tmpfs mounted at `<dir>/logs`, unmounted after `run`, pass or fail. */
async function onTmpfs (run: (writer: WriterChild, logs: string, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir()
  const logs = join(dir, 'logs')
  mkdirSync(logs)
  mountTmpfs(logs, '16m')
  try {
    await run(await startWriterChild(dir, [], join(logs, 'app.log')), logs, dir)
  } finally {
    unmountLazily(logs)
  }
}

/**
 * The first halves went with the old file system; each producer's second half, and anything of
 * the first not yet confirmed there, is in the new file without a gap.
 */
function expectTailsWhole (file: string): void {
  const runs = seqRuns(file)
  expect(runs.size).toBe(PRODUCERS)
  for (const run of runs.values()) {
    expect(run.min).toBeLessThanOrEqual(HALF)
    expect(run).toMatchObject({ max: RECORDS - 1, count: run.max - run.min + 1 })
  }
}
