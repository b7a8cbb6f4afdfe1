import { describe, expect, it } from 'vitest'
import { FrameRing } from '../writer/frame-ring.js'

describe('FrameRing', () => {
  it('takes regions in order, wraps around, and frees them only once the offset they were held for is confirmed', () => {
    const ring = new FrameRing(1000)
    const a = ring.take(200) as Buffer
    const b = ring.take(200) as Buffer
    const c = ring.take(200) as Buffer
    const d = ring.take(200) as Buffer
    expect([a, b, c, d].map((x) => x.byteOffset - a.byteOffset)).toEqual([0, 200, 400, 600])
    expect(ring.take(251)).toBeUndefined()      // over a quarter of the ring
    expect(ring.take(201)).toBeUndefined()      // 200 left at the end, nothing free at the start
    ring.hold([b], 20)                          // b's message was written up to offset 20
    ring.hold([a], 10)
    ring.release(15)                            // a is freed; b waits for 20
    expect(ring.inUse).toBe(3)
    expect(ring.take(200)?.byteOffset).toBe(d.byteOffset + 200)
    const wrapped = ring.take(200) as Buffer     // the end is full: back to where a was
    expect(wrapped.byteOffset).toBe(a.byteOffset)
    expect(ring.take(1)).toBeUndefined()         // b still in use right after it
    ring.release(20)
    expect(ring.inUse).toBe(4)                   // c waits: never held
    ring.hold([c, d], 0)                         // not written (a rejected message)
    ring.release(20)
    expect(ring.inUse).toBe(2)
  })

  it('ignores buffers that are not its own, and gives nothing for empty or oversized requests', () => {
    const ring = new FrameRing(4096)
    const mine = ring.take(100) as Buffer
    ring.hold([Buffer.alloc(100), mine.subarray(0, 50)], 5)
    ring.release(100)
    expect(ring.inUse).toBe(1)                   // neither a foreign buffer nor a part frees it
    ring.hold([mine], 5)
    ring.release(5)
    expect(ring.inUse).toBe(0)
    expect(ring.take(0)).toBeUndefined()
    expect(ring.take(1025)).toBeUndefined()
  })

  it('when full, gives back its oldest region if a message still being received holds it and its owner moves it out', () => {
    const ring = new FrameRing(1000)
    const moved: Buffer[] = []
    let partial = ring.take(200, (region) => { moved.push(region); partial = Buffer.from(region); return true }) as Buffer
    const kept = ring.take(200, () => false) as Buffer          // its owner no longer has it to move
    const rest = [ring.take(200), ring.take(200), ring.take(200)] as Buffer[]
    ring.hold(rest, 0)
    ring.release(0)
    expect(ring.inUse).toBe(5)                                   // nothing freed: the oldest is still being received
    const next = ring.take(200) as Buffer
    expect(moved).toHaveLength(1)
    expect(moved[0]?.byteOffset).toBe(next.byteOffset)          // the oldest region's place
    expect(partial.buffer).not.toBe(next.buffer)                // the message now holds a copy, outside the ring
    expect(ring.inUse).toBe(5)                                   // kept, the three held ones, next
    expect(ring.take(200)).toBeUndefined()                       // kept is oldest now and cannot be moved
    ring.hold([kept], 0)
    ring.release(0)
    expect(ring.inUse).toBe(1)
  })
})
