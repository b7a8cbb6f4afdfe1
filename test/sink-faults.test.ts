import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FileError } from '../shared/errors.js'
import { FileSink, type FileSinkOptions } from '../writer/file-sink.js'
import { tempDir, waitFor } from './helpers/children.js'
import { FaultyFs } from './helpers/faulty-fs.js'

/** `n` lines of `size` bytes each, numbered, as separate batches. */
function batches (n: number, size = 1000): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(`${JSON.stringify({ seq: i, pad: 'x'.repeat(size) })}\n`))
}

interface Harness {
  sink: FileSink
  fs: FaultyFs
  file: string
  errors: FileError[]
  resumed: unknown[]
}

async function openSink (opts: FileSinkOptions = {}): Promise<Harness> {
  const fs = new FaultyFs()
  const file = join(tempDir(), 'logs', 'app.log')
  const sink = new FileSink(file, { fs, ...opts })
  const errors: FileError[] = []
  const resumed: unknown[] = []
  sink.on('error', (err: FileError) => errors.push(err))
  sink.on('resumed', (info: unknown) => resumed.push(info))
  await sink.ready()
  return { sink, fs, file, errors, resumed }
}

describe.each(['ENOSPC', 'EACCES', 'EIO'])('a write failing with %s', (code) => {
  it('is retried with backoff from the first unwritten byte: the file holds every byte once', async () => {
    const h = await openSink({ fsync: 'off' })
    h.fs.fail('write', code, 4, 700)
    const data = batches(50)
    let end = 0
    for (const b of data) end = h.sink.append(b)
    await waitFor(() => h.resumed.length === 1, 10_000, () => `${h.errors.length} errors, written ${h.sink.bytesWritten}`)
    await h.sink.waitBelow(0)
    expect(h.sink.bytesWritten).toBe(end)
    expect(await h.sink.end()).toBe(0)

    expect(readFileSync(h.file)).toEqual(Buffer.concat(data))
    expect(h.errors.map((e) => [e.code, e.op, e.fsCode, e.retryInMs])).toEqual([
      ['LOGFUNNEL_ERR_FILE', 'write', code, 100],
      ['LOGFUNNEL_ERR_FILE', 'write', code, 200],
      ['LOGFUNNEL_ERR_FILE', 'write', code, 400]
    ])
    expect(h.sink.stats).toMatchObject({ fileErrors: 3, lastFileError: { op: 'write', fsCode: code } })
    expect(h.resumed).toEqual([{ event: 'resumed', file: h.file, failures: 3 }])
  })
})

describe('a file that stays unwritable', () => {
  it('is retried with backoff, not in a busy loop, and given up at the end deadline without a torn line', async () => {
    const h = await openSink({ fsync: 'off' })
    const before = batches(3)
    for (const b of before) h.sink.append(b)
    await h.sink.waitBelow(0)
    h.fs.fail('write', 'ENOSPC', 1_000_000, 500)
    const start = Date.now()
    for (const b of batches(10)) h.sink.append(b)
    await waitFor(() => h.sink.stats.fileErrors === 5, 5000, () => `${h.sink.stats.fileErrors} errors`)
    // A short write, then failures at 0, 100, 300, 700 and 1500 ms; the next one is due at 3100 ms.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500)
    expect(h.fs.calls.write).toBe(1 + 6)
    expect(h.errors.map((e) => e.retryInMs)).toEqual([100, 200, 400, 800, 1600])

    const unwritten = await h.sink.end(100)
    expect(unwritten).toBe(10 * before[0]!.length)
    expect(readFileSync(h.file)).toEqual(Buffer.concat(before))
  })
})

describe('reopen (SIGHUP after logrotate renamed the file) while open fails with EACCES', () => {
  it('keeps writing to the renamed file, retries the open, then writes to the new file: nothing lost', async () => {
    const h = await openSink({ fsync: 'off' })
    const data = batches(30)
    for (const b of data.slice(0, 10)) h.sink.append(b)
    await h.sink.waitBelow(0)
    renameSync(h.file, `${h.file}.1`)
    h.fs.fail('open', 'EACCES', 2)
    h.sink.reopen()
    for (const b of data.slice(10, 20)) h.sink.append(b)
    await waitFor(() => h.resumed.length === 1, 10_000, () => `${h.fs.calls.open} opens, ${h.errors.length} errors`)
    for (const b of data.slice(20)) h.sink.append(b)
    await h.sink.end()

    expect(h.errors.map((e) => [e.op, e.fsCode, e.retryInMs])).toEqual([['reopen', 'EACCES', 100], ['reopen', 'EACCES', 200]])
    expect(readFileSync(`${h.file}.1`)).toEqual(Buffer.concat(data.slice(0, 20)))
    expect(readFileSync(h.file)).toEqual(Buffer.concat(data.slice(20)))
  })
})

describe('the log file removed while open', () => {
  it('is noticed after the next write, which is written again into a recreated file', async () => {
    const h = await openSink({ fsync: 'off' })
    const data = batches(20)
    for (const b of data.slice(0, 5)) h.sink.append(b)
    await h.sink.waitBelow(0)
    const dir = join(h.file, '..')
    renameSync(dir, `${dir}.gone`)
    rmSync(`${dir}.gone`, { recursive: true })
    for (const b of data.slice(5)) h.sink.append(b)
    await h.sink.end()

    expect(existsSync(h.file)).toBe(true)
    expect(readFileSync(h.file)).toEqual(Buffer.concat(data.slice(5)))
    expect(h.errors.map((e) => [e.code, e.op, e.fsCode, e.retryInMs])).toEqual([['LOGFUNNEL_ERR_FILE', 'write', 'ENOENT', 0]])
  })
})

describe('fsync policy', () => {
  it("'batch': bytes count as written only after the fsync that covers them", async () => {
    const h = await openSink({ fsync: 'batch' })
    h.fs.holdFsyncs()
    const end = h.sink.append(batches(1)[0]!)
    await waitFor(() => h.fs.calls.fsync === 1, 5000, () => `${h.fs.calls.fsync} fsyncs`)
    expect(h.fs.bytesWritten).toBe(end)
    expect(h.sink.bytesWritten).toBe(0)
    // Batches that arrive during the fsync go out together: one write, one fsync.
    let last = 0
    for (const b of batches(20)) last = h.sink.append(b)
    h.fs.releaseFsyncs()
    await h.sink.waitBelow(0)
    expect(h.sink.bytesWritten).toBe(last)
    expect([h.fs.calls.write, h.sink.stats.fsyncs]).toEqual([2, 2])
    await h.sink.end()
    expect(h.sink.stats.fsyncs).toBe(3)
  })

  it("'off': bytes count as written after the write; one fsync at the end", async () => {
    const h = await openSink({ fsync: 'off' })
    h.fs.holdFsyncs()
    const end = h.sink.append(batches(1)[0]!)
    await h.sink.waitBelow(0)
    expect([h.sink.bytesWritten, h.fs.calls.fsync]).toEqual([end, 0])
    h.fs.releaseFsyncs()
    await h.sink.end()
    expect(h.sink.stats.fsyncs).toBe(1)
  })

  it('a number of ms: bytes count as written at once; fsyncs at most that often', async () => {
    const h = await openSink({ fsync: 50 })
    for (const round of [0, 1, 2]) {
      for (const b of batches(5)) h.sink.append(b)
      await h.sink.waitBelow(0)
      await waitFor(() => h.sink.stats.fsyncs === round + 1, 2000, () => `${h.sink.stats.fsyncs} fsyncs`)
    }
    const [first, second, third] = h.fs.fsyncTimes as [number, number, number]
    expect(second - first).toBeGreaterThanOrEqual(50)
    expect(third - second).toBeGreaterThanOrEqual(50)
    await h.sink.end()
    expect(h.sink.stats.fsyncs).toBe(4)
  })
})
