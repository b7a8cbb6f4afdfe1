import { MessageChannel } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { RingWriter } from '../producer/line-ring.js'
import { createRing, type RingMemory } from '../producer/ring-layout.js'
import { RingReader } from '../producer/ring-reader.js'

/** 64 KiB: four slots of 16 KiB. */
const RING_BYTES = 64 * 1024
const SLOT_BYTES = 16 * 1024

interface Taken { bytes: Buffer, records: number }

const ports: MessageChannel[] = []
afterEach(() => {
  for (const channel of ports.splice(0)) {
    channel.port1.close()
    channel.port2.close()
  }
})

function ringPair (maxFrameBytes = 1024 * 1024): { ring: RingMemory, writer: RingWriter, reader: RingReader, tooLarge: number[], taken: Taken[], drain: () => void } {
  const ring = createRing(RING_BYTES)
  const channel = new MessageChannel()
  ports.push(channel)
  const tooLarge: number[] = []
  const writer = new RingWriter(ring, { maxFrameBytes, onTooLarge: (bytes) => tooLarge.push(bytes) })
  writer.setPort(channel.port1)
  const reader = new RingReader(ring, channel.port2)
  const taken: Taken[] = []
  // The bytes are only valid during the call: keep a copy.
  const drain = (): void => reader.takeAll((bytes, records) => taken.push({ bytes: Buffer.from(bytes), records }), () => true)
  return { ring, writer, reader, tooLarge, taken, drain }
}

describe('line ring (funnel() logging thread -> sender thread)', () => {
  it('sizes the ring in slots of at most 256 KiB, a power of two of them', () => {
    const ring = createRing(RING_BYTES)
    expect(ring.slotBytes).toBe(SLOT_BYTES)
    expect(ring.data.byteLength).toBe(RING_BYTES)
    const big = createRing(4 * 1024 * 1024 + 1000)
    expect(big.slotBytes).toBe(256 * 1024)
    expect(big.data.byteLength / big.slotBytes).toBe(16)
  })

  it('carries every whole line once, in order, whatever the chunking, sizes and characters', () => {
    const { writer, reader, taken, drain } = ringPair()
    const lines: string[] = []
    // 1 B to three slots long; ASCII, 2-, 3- and 4-byte UTF-8 characters.
    const sizes = [1, 100, 1000, SLOT_BYTES - 1, SLOT_BYTES, SLOT_BYTES + 1, 3 * SLOT_BYTES, 50, 7]
    const alphabet = ['a', 'é', '€', '😀']
    let n = 0
    for (let round = 0; round < 6; round++) {
      for (const size of sizes) {
        const char = alphabet[n % alphabet.length] as string
        lines.push(`${n++}:${char.repeat(Math.max(0, Math.floor(size / Buffer.byteLength(char)) - 4))}\n`)
      }
    }
    const text = lines.join('')
    // Chunks cut anywhere, also mid-line. The reader runs on this thread between writes, so a
    // chunk stays under what 3 of the 4 slots hold, or the writer would wait forever.
    const cuts = [0, 3, 11, 997, 2000, 2001, 4000]
    let at = 0
    for (let i = 0; at < text.length; i++) {
      const next = Math.min(text.length, at + (cuts[i % cuts.length] as number) + 1)
      writer.write(text.slice(at, next))
      drain()
      at = next
    }
    expect(writer.hasPartial).toBe(false)
    writer.publish()
    drain()

    expect(Buffer.concat(taken.map((t) => t.bytes)).toString('utf8')).toBe(text)
    expect(taken.reduce((sum, t) => sum + t.records, 0)).toBe(lines.length)
    for (const t of taken) {
      expect(t.bytes.at(-1)).toBe(10)
      expect(t.bytes.toString('utf8').split('\n').length - 1).toBe(t.records)
    }
    expect(reader.reached(writer.published)).toBe(true)
    expect(writer.lost).toBe(0)
  })

  it('rejects a line over maxFrameBytes with its size, and keeps the lines around it', () => {
    const { writer, taken, tooLarge, drain } = ringPair(1024)
    writer.write('before\n')
    writer.write(`${'x'.repeat(2000)}\n`)
    writer.write('after\n')
    writer.publish()
    drain()
    expect(tooLarge).toEqual([2001])
    expect(writer.tooLarge).toBe(1)
    expect(Buffer.concat(taken.map((t) => t.bytes)).toString()).toBe('before\nafter\n')
  })

  it('end() completes a trailing partial line', () => {
    const { writer, taken, drain } = ringPair()
    writer.write('one\ntw')
    writer.write('o')
    expect(writer.hasPartial).toBe(true)
    writer.end()
    drain()
    expect(Buffer.concat(taken.map((t) => t.bytes)).toString()).toBe('one\ntwo\n')
    expect(taken.reduce((sum, t) => sum + t.records, 0)).toBe(2)
  })

  it('does not wait for a sender thread that is gone: the lines are counted as lost', () => {
    const { writer, reader } = ringPair()
    const line = `${'y'.repeat(SLOT_BYTES - 1)}\n`
    // Four slots fill the ring; nobody reads.
    for (let i = 0; i < 4; i++) writer.write(line)
    reader.markGone()
    writer.write(line)
    writer.write('short\n')
    expect(writer.lost).toBe(2)
  })

  it('a line too large for a slot, posted to a thread that is gone, is posted again to the next one: its reader takes it in its place', () => {
    const ring = createRing(RING_BYTES)
    const first = new MessageChannel()
    const second = new MessageChannel()
    ports.push(first, second)
    const writer = new RingWriter(ring, { maxFrameBytes: 1024 * 1024, onTooLarge: () => {} })
    writer.setPort(first.port1)
    const big = `${'b'.repeat(2 * SLOT_BYTES)}\n`
    writer.write('one\n')
    writer.write(big)
    writer.write('two\n')
    writer.publish()
    // The thread that had first.port2 never ran: a new one gets a new channel.
    writer.setPort(second.port1)
    const reader = new RingReader(ring, second.port2)
    const taken: string[] = []
    reader.takeAll((bytes) => taken.push(bytes.toString()), () => true)
    expect(taken).toEqual(['one\n', big, 'two\n'])
  })

  it('a take that throws at a line too large for a slot (a sender fault) meets the same line again', () => {
    const { writer, reader } = ringPair()
    const big = `${'b'.repeat(2 * SLOT_BYTES)}\n`
    writer.write(big)
    writer.write(`${'c'.repeat(2 * SLOT_BYTES)}\n`)
    writer.publish()
    expect(() => reader.takeAll(() => { throw new Error('fault') }, () => true)).toThrow('fault')
    const taken: string[] = []
    reader.takeAll((bytes) => taken.push(bytes.toString()), () => true)
    expect(taken.map((t) => [t[0], t.length])).toEqual([['b', big.length], ['c', big.length]])
  })

  it('takeUntaken hands the lines no reader took to the logging thread, lines too large for a slot too', () => {
    const { writer, reader } = ringPair()
    const big = `${'b'.repeat(2 * SLOT_BYTES)}\n`
    writer.write('one\n')
    writer.publish()
    reader.takeAll(() => {}, () => true)
    writer.write('two\n')
    writer.write(big)
    writer.write('three\n')
    reader.markGone()
    const taken: Array<[string, number]> = []
    expect(writer.takeUntaken((bytes, records) => taken.push([bytes.toString(), records]))).toBe(0)
    expect(taken).toEqual([['two\n', 1], [big, 1], ['three\n', 1]])
    expect(writer.untaken).toBe(0)
  })
})
