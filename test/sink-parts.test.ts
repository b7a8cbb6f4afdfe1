import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FileError } from '../shared/errors.js'
import { Abandoned, FaultRetry, RETRY_FIRST_MS, RETRY_MAX_MS } from '../writer/sink/fault-retry.js'
import { FlushWaiters } from '../writer/sink/flush-waiters.js'
import { LoopTimers } from '../writer/sink/loop-timers.js'
import { RotationClock } from '../writer/sink/rotation.js'

/** The parts the file sink is made of, without a file. */

afterEach(() => {
  vi.useRealTimers()
})

describe('FaultRetry', () => {
  it('retries with backoff doubling to RETRY_MAX_MS, reports each failure with its op, says when it resumed', async () => {
    vi.useFakeTimers()
    const reported: Array<{ op: string | undefined, retryInMs: number | undefined }> = []
    const resumed: number[] = []
    const retry = new FaultRetry('/x.log', new LoopTimers(), (err: FileError) => reported.push({ op: err.op, retryInMs: err.retryInMs }), (n) => resumed.push(n))
    let calls = 0
    const result = retry.attempt('write', async () => {
      if (++calls <= 7) throw Object.assign(new Error('no space'), { code: 'ENOSPC' })
      return 'ok'
    })
    await vi.runAllTimersAsync()
    await expect(result).resolves.toBe('ok')
    const delays = [100, 200, 400, 800, 1600, 3200, 5000]
    expect(reported).toEqual(delays.map((retryInMs) => ({ op: 'write', retryInMs })))
    expect(delays[0]).toBe(RETRY_FIRST_MS)
    expect(delays.at(-1)).toBe(RETRY_MAX_MS)
    expect(resumed).toEqual([7])
  })

  it('abandon() ends a backoff at once with Abandoned', async () => {
    vi.useFakeTimers()
    const retry = new FaultRetry('/x.log', new LoopTimers(), () => {}, () => {})
    const result = retry.attempt('fsync', async () => { throw new Error('EIO') })
    const settled = expect(result).rejects.toBeInstanceOf(Abandoned)
    await vi.advanceTimersByTimeAsync(50)
    retry.abandon()
    await settled
    expect(retry.abandoned).toBe(true)
  })
})

describe('FlushWaiters', () => {
  it('resolves each waiter once its bytes are written; at the end rejects those never written', async () => {
    const waiters = new FlushWaiters()
    const order: string[] = []
    const a = waiters.add(10).then(() => order.push('a'))
    const b = waiters.add(20).then(() => order.push('b'))
    const c = waiters.add(30).then(() => order.push('c'), (err: FileError) => order.push(`c ${err.code}`))
    expect(waiters.due(9)).toBe(false)
    expect(waiters.due(10)).toBe(true)
    waiters.settle(25)
    await Promise.all([a, b])
    expect(waiters.due(25)).toBe(false)
    waiters.end(25, '/x.log')
    await c
    expect(order).toEqual(['a', 'b', 'c LOGFUNNEL_ERR_FILE'])
  })
})

describe('RotationClock', () => {
  const HOUR = 3_600_000
  it('rotates at every multiple of the interval; a file last written in an earlier interval first', () => {
    const clock = new RotationClock(HOUR)
    const now = 10 * HOUR + 5
    expect(clock.start(now, 100, 9 * HOUR + 1)).toBe(true)
    expect(clock.next).toBe(11 * HOUR)
    expect(clock.due(11 * HOUR - 1)).toBe(false)
    expect(clock.due(11 * HOUR)).toBe(true)
    expect(clock.next).toBe(12 * HOUR)
    // Hours slept through: one rotation, the next boundary after now.
    expect(clock.due(15 * HOUR + 7)).toBe(true)
    expect(clock.next).toBe(16 * HOUR)
  })

  it('an empty file, or one written in this interval, does not rotate at start; off never does', () => {
    expect(new RotationClock(HOUR).start(10 * HOUR + 5, 0, 0)).toBe(false)
    expect(new RotationClock(HOUR).start(10 * HOUR + 5, 100, 10 * HOUR + 1)).toBe(false)
    const off = new RotationClock(0)
    expect(off.start(10 * HOUR, 100, 0)).toBe(false)
    expect(off.due(Number.MAX_SAFE_INTEGER)).toBe(false)
  })
})
