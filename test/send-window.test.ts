import { describe, expect, it } from 'vitest'
import { OpenBatch } from '../producer/open-batch.js'
import { SendWindow } from '../producer/send-window.js'

const payload = (n: number): Buffer => Buffer.alloc(n, 0x61)

/** Seals `sizes.length` batches of 2 records each. */
function windowOf (...sizes: number[]): SendWindow {
  const w = new SendWindow()
  for (const size of sizes) w.seal(payload(size), 2)
  return w
}

const sendAll = (w: SendWindow): number[] => {
  const sent: number[] = []
  for (let b = w.takeNextToSend(); b !== undefined; b = w.takeNextToSend()) sent.push(b.seq)
  return sent
}

describe('SendWindow: the go-back-N window without sockets', () => {
  it('numbers batches in order and sends each once', () => {
    const w = windowOf(10, 20, 30)
    expect(w.batches.map((b) => b.seq)).toEqual([0, 1, 2])
    expect(w).toMatchObject({ firstSeq: 0, nextSeq: 3, unreceipted: 3, bytes: 60, inFlight: false })
    expect(sendAll(w)).toEqual([0, 1, 2])
    expect(w.inFlight).toBe(true)
    expect(sendAll(w)).toEqual([])
  })

  it('a receipt frees every batch up to it; one outside the window changes nothing', () => {
    const w = windowOf(10, 20, 30)
    sendAll(w)
    expect(w.receipt(1)?.map((b) => [b.seq, b.sends])).toEqual([[0, 1], [1, 1]])
    expect(w).toMatchObject({ firstSeq: 2, nextSeq: 3, unreceipted: 1, bytes: 30 })
    expect(w.receipt(1)).toBeUndefined()
    expect(w.receipt(3)).toBeUndefined()
    expect(w.unreceiptedRecords()).toBe(2)
    expect(w.receipt(2)?.map((b) => b.seq)).toEqual([2])
    expect(w).toMatchObject({ firstSeq: 3, unreceipted: 0, bytes: 0, inFlight: false })
  })

  it('a receipt ahead of what was sent moves the send position past it', () => {
    const w = windowOf(10, 20, 30)
    expect(w.takeNextToSend()?.seq).toBe(0)
    // The writer had the batches from a previous connection (or the spool).
    expect(w.receipt(1)?.map((b) => b.sends)).toEqual([1, 0])
    expect(sendAll(w)).toEqual([2])
  })

  it('a rewind sends again from the first batch without a receipt', () => {
    const w = windowOf(10, 20, 30)
    expect(w.rewind()).toBe(false)
    sendAll(w)
    w.receipt(0)
    expect(w.rewind()).toBe(true)
    expect(sendAll(w)).toEqual([1, 2])
    // Sent twice: a copy may still wait in libzmq's queue when the receipt comes.
    expect(w.receipt(2)?.map((b) => b.sends)).toEqual([2, 2])
  })

  it('moved to the spool, batches keep their place and leave memory; sending stops at them', () => {
    const w = windowOf(10, 20)
    const stored: number[] = []
    w.moveToSpool((b) => stored.push(b.seq))
    expect(stored).toEqual([0, 1])
    expect(w).toMatchObject({ bytes: 0, unreceipted: 2 })
    expect(w.heldRecords()).toBe(0)
    expect(w.unreceiptedRecords()).toBe(4)
    w.seal(payload(5), 1)
    expect(sendAll(w)).toEqual([])
    expect(w.receipt(1)).toBeDefined()
    expect(sendAll(w)).toEqual([2])
  })

  it('a spool write that fails keeps that batch and the ones after it in memory', () => {
    const w = windowOf(10, 20, 30)
    expect(() => w.moveToSpool((b) => { if (b.seq === 1) throw new Error('ENOSPC') })).toThrow('ENOSPC')
    expect(w.batches.map((b) => b.payload === undefined)).toEqual([true, false, false])
    expect(w).toMatchObject({ bytes: 50 })
    expect(w.heldRecords()).toBe(4)
  })
})

describe('OpenBatch: batches are handed over without a copy and their buffers reused', () => {
  const MAX = 64 * 1024
  it('a batch hands its buffer over; released after its receipt, the buffer fills a later batch', () => {
    const open = new OpenBatch(MAX)
    open.appendBytes(Buffer.alloc(MAX - 10, 0x61), 1)
    const first = open.take()?.payload as Buffer
    expect(first.length).toBe(MAX - 10)
    open.release(first, true)
    open.appendBytes(Buffer.alloc(MAX / 2, 0x62), 1)
    const second = open.take()?.payload as Buffer
    open.appendBytes(Buffer.alloc(MAX / 2, 0x63), 1)
    const third = open.take()?.payload as Buffer
    // The second batch filled the buffer taken at the first hand-over; the third reuses the first's.
    expect(second.buffer === first.buffer).toBe(false)
    expect(third.buffer === first.buffer).toBe(true)
    expect(third.every((b) => b === 0x63)).toBe(true)
  })

  it('a buffer released as not reusable (resent, or spooled) is never filled again', () => {
    const open = new OpenBatch(MAX)
    open.appendBytes(Buffer.alloc(MAX, 0x61), 1)
    const first = open.take()?.payload as Buffer
    open.release(first, false)
    for (let i = 0; i < 3; i++) {
      open.appendBytes(Buffer.alloc(MAX, 0x62), 1)
      const next = open.take()?.payload as Buffer
      expect(next.buffer === first.buffer).toBe(false)
      open.release(next, true)
    }
    expect(first.every((b) => b === 0x61)).toBe(true)
  })

  it('a small batch is copied to its own size and never recycled into the pool', () => {
    const open = new OpenBatch(MAX)
    open.appendBytes(Buffer.from('{"a":1}\n'), 1)
    const small = open.take()?.payload as Buffer
    expect(small.buffer.byteLength).toBeLessThan(MAX)
    open.release(small, true)
    open.appendBytes(Buffer.alloc(MAX, 0x63), 1)
    const full = open.take()?.payload as Buffer
    expect(full.buffer === small.buffer).toBe(false)
    expect(full.every((b) => b === 0x63)).toBe(true)
  })

  it('at most maxHandedOver buffers are out at once; past that batches are copied, and a release makes room', () => {
    const open = new OpenBatch(MAX, 2)
    const payloads: Buffer[] = []
    for (let i = 0; i < 3; i++) {
      open.appendBytes(Buffer.alloc(MAX / 2, 0x61 + i), 1)
      payloads.push(open.take()?.payload as Buffer)
    }
    const [a, b, c] = payloads as [Buffer, Buffer, Buffer]
    expect(a.buffer.byteLength).toBe(MAX)
    expect(b.buffer.byteLength).toBe(MAX)
    // The third is a copy of its own size: two buffers are out.
    expect(c.buffer.byteLength).toBeLessThan(MAX)
    open.release(a, true)
    open.appendBytes(Buffer.alloc(MAX / 2, 0x64), 1)
    const d = open.take()?.payload as Buffer
    expect(d.buffer.byteLength).toBe(MAX)
    expect(b.every((x) => x === 0x62)).toBe(true)
    expect(c.every((x) => x === 0x63)).toBe(true)
  })

  it('appendLines takes the longest run of whole lines that fits, nothing when none fits, and a line larger than a batch alone into an empty batch', () => {
    const open = new OpenBatch(100)
    const lines = ['a'.repeat(39) + '\n', 'b'.repeat(39) + '\n', 'c'.repeat(39) + '\n', 'd'.repeat(149) + '\n', 'e'.repeat(9) + '\n']
    const bytes = Buffer.from(lines.join(''))
    // Two 40-byte lines fit in 100 bytes, the third does not.
    expect(open.appendLines(bytes, 0)).toBe(80)
    expect(open.appendLines(bytes, 80)).toBe(80)
    expect(open.take()).toMatchObject({ records: 2 })
    expect(open.appendLines(bytes, 80)).toBe(120)
    // The 150-byte line does not fit beside the 40 bytes held; alone it gets a batch of its own.
    expect(open.appendLines(bytes, 120)).toBe(120)
    expect(open.take()?.payload.toString()).toBe(lines[2])
    expect(open.appendLines(bytes, 120)).toBe(270)
    expect(open.take()?.payload.toString()).toBe(lines[3])
    expect(open.appendLines(bytes, 270)).toBe(bytes.length)
    expect(open.take()).toMatchObject({ records: 1 })
  })
})
