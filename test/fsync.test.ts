import { afterEach, describe, expect, it, vi } from 'vitest'
import { FsyncSchedule } from '../writer/sink/fsync-policy.js'
import { tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { batches, openSink } from './helpers/faulty-fs.js'

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

describe('FsyncSchedule with a number of ms (fake timers)', () => {
  afterEach(() => { vi.useRealTimers() })

  it('syncs the first write at once, then at most every interval, and only when there were writes', () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const wake = vi.fn()
    const schedule = new FsyncSchedule(250, wake)
    expect(schedule.afterWrite()).toBe(false)
    expect(schedule.due).toBe(true)
    schedule.synced()
    expect(schedule.due).toBe(false)
    schedule.afterWrite()
    schedule.afterWrite()
    vi.advanceTimersByTime(249)
    expect([schedule.due, wake.mock.calls.length]).toEqual([false, 0])
    vi.advanceTimersByTime(1)
    expect([schedule.due, wake.mock.calls.length]).toEqual([true, 1])
    schedule.synced()
    vi.advanceTimersByTime(10_000)
    expect([schedule.due, wake.mock.calls.length]).toEqual([false, 1])
    schedule.cancel()
  })

  it("'batch' asks for an fsync after every write, 'off' never", () => {
    expect(new FsyncSchedule('batch', () => {}).afterWrite()).toBe(true)
    const off = new FsyncSchedule('off', () => {})
    expect([off.afterWrite(), off.due]).toEqual([false, false])
  })
})

describe('the writer summary counts fsyncs', () => {
  it('--fsync off: one, at stop', async () => {
    const writer = await startWriterChild(tempDir(), ['--fsync', 'off'])
    await runProducers(2, { endpoint: writer.endpoint, records: 2000 })
    const summary = await writer.stop({ spoolTaken: true })
    expect([summary.records, summary.fsyncs]).toEqual([4000, 1])
  })

  it('--fsync batch: one per write (a write carries one or more batches), plus one at stop', async () => {
    const writer = await startWriterChild(tempDir(), ['--fsync', 'batch'])
    await runProducers(2, { endpoint: writer.endpoint, records: 2000 })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary.records).toBe(4000)
    expect(summary.fsyncs).toBeGreaterThanOrEqual(2)
    expect(summary.fsyncs).toBeLessThanOrEqual(summary.batches + 1)
  })
})
