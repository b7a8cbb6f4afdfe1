import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { cannotMountTmpfs, mountTmpfs, unmountLazily } from './helpers/tmpfs.js'
import { runProducers, spawnProducer, startWriterChild } from './helpers/cluster.js'

const cannotMount = cannotMountTmpfs()
if (cannotMount !== undefined) console.log(`skipping the full-disk test: ${cannotMount}`)

const MiB = 1024 * 1024

describe('the disk fills up (a real 16 MiB tmpfs, ENOSPC)', () => {
  it.skipIf(cannotMount !== undefined)('the writer reports the error with backoff, holds the data, and writes it all once there is room', async () => {
    const dir = tempDir()
    mountTmpfs(dir, '16m', '0700')
    try {
      const filler = join(dir, 'filler')
      writeFileSync(filler, Buffer.alloc(16 * MiB - 512 * 1024))
      const writer = await startWriterChild(dir)
      const producing = runProducers(2, { endpoint: writer.endpoint, records: 30_000, sizes: [100] })
      await waitFor(() => stderrEvents(writer.child, 'error').length >= 4, 30_000, () => writer.child.describe())

      const errors = stderrEvents(writer.child, 'error')
      expect(errors.slice(0, 4).map((e) => [e.code, e.op, e.fsCode, e.retryInMs])).toEqual([
        ['LOGFUNNEL_ERR_FILE', 'write', 'ENOSPC', 100],
        ['LOGFUNNEL_ERR_FILE', 'write', 'ENOSPC', 200],
        ['LOGFUNNEL_ERR_FILE', 'write', 'ENOSPC', 400],
        ['LOGFUNNEL_ERR_FILE', 'write', 'ENOSPC', 800]
      ])
      expect(writer.child.proc.exitCode).toBe(null)
      rmSync(filler)
      await producing
      await waitFor(() => stderrEvents(writer.child, 'resumed').length === 1, 10_000, () => writer.child.describe())
      const summary = await writer.stop({ spoolTaken: true })

      const report = await verifyFile(writer.file)
      expect(report).toMatchObject({ lines: 60_000, producers: 2, ok: true })
      expect(summary).toMatchObject({ records: 60_000, unwrittenBytes: 0, lastFileError: { op: 'write', fsCode: 'ENOSPC' } })
      expect(summary.fileErrors).toBe(stderrEvents(writer.child, 'error').length)
    } finally {
      unmountLazily(dir)
    }
  })
})

describe('SIGTERM while the disk stays full', () => {
  it.skipIf(cannotMount !== undefined)('exits 0 after the drain timeouts; the file has whole lines and unwrittenBytes says what is missing', async () => {
    const dir = tempDir()
    mountTmpfs(dir, '4m', '0700')
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(4 * MiB - 256 * 1024))
      const writer = await startWriterChild(dir, ['--drain-timeout-ms', '500', '--drain-idle-ms', '100', '--stats-interval-ms', '100'])
      const producers = Array.from({ length: 2 }, () => spawnProducer({ endpoint: writer.endpoint, records: 30_000, sizes: [100], announceAfter: 30_000 }))
      // Both have logged everything (11 MB together); past 8 MiB held the receive loop is paused,
      // and stop must not wait for the disk.
      await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging', 60_000)))
      // The disk refused, and the write queue is past its 8 MiB bound (the stats lines say so).
      const queueFull = (): boolean => stderrEvents(writer.child, 'stats').some((line) => (line.queueBytes as number) > 8 * MiB)
      await waitFor(() => stderrEvents(writer.child, 'error').length >= 1 && queueFull(), 30_000, () => writer.child.describe())
      const summary = await writer.stop()

      // The queue passed its 8 MiB bound; at most the 256 KiB the disk had free reached the file.
      expect(summary.unwrittenBytes).toBeGreaterThan(8 * MiB - 256 * 1024)
      // records and bytes are what the file holds: the batches given up are not counted.
      expect(statSync(writer.file).size).toBe(summary.bytes)
      const report = await verifyFile(writer.file)
      expect(report).toMatchObject({ lines: summary.records, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    } finally {
      unmountLazily(dir)
    }
  })
})

describe('the log file\'s directory removed while the writer runs', () => {
  it('is recreated; the new file goes on from the batch that went to the removed file', async () => {
    const dir = tempDir()
    const logs = join(dir, 'logs')
    const writer = await startWriterChild(dir, [], join(logs, 'app.log'))
    const records = 40_000
    const producing = runProducers(4, { endpoint: writer.endpoint, records })
    const size = (): number => existsSync(writer.file) ? statSync(writer.file).size : 0
    await waitFor(() => size() > 3 * MiB, 30_000, () => `log file has ${size()} bytes`)
    // Rename first, so the writer cannot recreate the directory while rm is still emptying it.
    renameSync(logs, `${logs}.gone`)
    rmSync(`${logs}.gone`, { recursive: true })
    await producing
    const summary = await writer.stop({ spoolTaken: true })

    expect(stderrEvents(writer.child, 'error').map((e) => [e.code, e.fsCode])).toEqual([['LOGFUNNEL_ERR_FILE', 'ENOENT']])
    expect(summary).toMatchObject({ fileErrors: 1, lastFileError: { fsCode: 'ENOENT' } })
    // Each producer's records in the new file run without a gap up to its last one.
    const runs = new Map<number, { min: number, max: number, count: number }>()
    for (const line of readFileSync(writer.file, 'utf8').split('\n').slice(0, -1)) {
      const { pid, seq } = JSON.parse(line) as { pid: number, seq: number }
      const run = runs.get(pid) ?? { min: seq, max: seq, count: 0 }
      runs.set(pid, { min: Math.min(run.min, seq), max: Math.max(run.max, seq), count: run.count + 1 })
    }
    expect(runs.size).toBe(4)
    for (const run of runs.values()) {
      expect(run).toMatchObject({ max: records - 1, count: run.max - run.min + 1 })
    }
    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({ torn: 0, duplicates: 0, reordered: 0 })
  })
})

describe('a directory that cannot be created', () => {
  it('fails the writer at start with LOGFUNNEL_ERR_FILE', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'not-a-dir'), '')
    await expect(startWriterChild(dir, [], join(dir, 'not-a-dir', 'app.log'))).rejects.toThrow(/LOGFUNNEL_ERR_FILE/)
  })
})
