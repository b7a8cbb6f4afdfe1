import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/children.js'
import { batches, openSink } from './helpers/faulty-fs.js'

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
    await waitFor(() => h.sink.stats.fileErrors >= 5, 5000, () => `${h.sink.stats.fileErrors} errors`)
    // A short write, then failures at 0, 100, 300, 700 and 1500 ms (the next one at 3100 ms):
    // one write call per failure, no more.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500)
    expect(h.fs.calls.write).toBe(1 + 1 + h.sink.stats.fileErrors)
    expect(h.errors.slice(0, 5).map((e) => e.retryInMs)).toEqual([100, 200, 400, 800, 1600])

    expect(h.sink.pendingBytes).toBe(10 * before[0]!.length)
    const unwritten = await h.sink.end(100)
    expect(unwritten).toBe(10 * before[0]!.length)
    // Given up, they no longer count as waiting for the file (the writer's queueBytes gauge).
    expect(h.sink.pendingBytes).toBe(0)
    // The 10 batches given up (one line each, the first partly written and cut off): none is in the file.
    expect(h.sink.unwrittenRecords).toBe(10)
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
