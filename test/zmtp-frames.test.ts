import { describe, expect, it } from 'vitest'
import {
  decodeProperties, encodeCommand, encodeGreeting, encodeProperties, FLAG_COMMAND, FLAG_LONG, FLAG_MORE, frameHeader,
  FrameDecoder, greetingProblem, GREETING_BYTES, parseCommand, type Frame
} from '../shared/zmtp-frames.js'

/** ZMTP 3.0 framing (rfc 23) as the producers speak it; the writer's libzmq is the other side in every other test. */
describe('ZMTP frames', () => {
  it('a greeting is 64 octets: signature, version 3.0, the mechanism, as client; a peer greeting is checked', () => {
    const g = encodeGreeting('CURVE')
    expect(g.length).toBe(GREETING_BYTES)
    expect([g[0], g[9], g[10], g[11], g[32]]).toEqual([0xff, 0x7f, 3, 0, 0])
    expect(g.toString('latin1', 12, 17)).toBe('CURVE')
    expect(greetingProblem(g, 'CURVE')).toBeUndefined()
    expect(greetingProblem(g, 'NULL')).toMatch(/CURVE mechanism/)
    expect(greetingProblem(Buffer.alloc(64), 'NULL')).toMatch(/not a ZeroMQ socket/)
    const v2 = Buffer.from(g)
    v2[10] = 2
    expect(greetingProblem(v2, 'CURVE')).toMatch(/ZMTP 2\.x/)
  })

  it('frame headers: one size octet up to 255, eight (LONG) above', () => {
    expect([...frameHeader(255, FLAG_MORE)]).toEqual([FLAG_MORE, 255])
    expect([...frameHeader(256, 0)]).toEqual([FLAG_LONG, 0, 0, 0, 0, 0, 0, 1, 0])
    expect([...frameHeader(2 ** 32 + 5, FLAG_MORE)]).toEqual([FLAG_MORE | FLAG_LONG, 0, 0, 0, 1, 0, 0, 0, 5])
  })

  it('the decoder takes a stream cut at every byte: the greeting, a command, a two-frame message with a LONG frame', () => {
    const body = Buffer.alloc(300, 0x61)
    const stream = Buffer.concat([
      encodeGreeting('NULL'),
      encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PULL' })),
      frameHeader(3, FLAG_MORE), Buffer.from('abc'), frameHeader(body.length, 0), body
    ])
    const decoder = new FrameDecoder(1024)
    const frames: Frame[] = []
    let greeting: Buffer | undefined
    for (let i = 0; i < stream.length; i++) {
      decoder.append(stream.subarray(i, i + 1))
      if (greeting === undefined) {
        greeting = decoder.take(GREETING_BYTES)
        continue
      }
      expect(decoder.parse(frames)).toBeUndefined()
    }
    expect(greetingProblem(greeting as Buffer, 'NULL')).toBeUndefined()
    expect(frames.map((f) => f.flags)).toEqual([FLAG_COMMAND, FLAG_MORE, FLAG_LONG])
    const ready = parseCommand((frames[0] as Frame).body)
    expect(ready?.name).toBe('READY')
    expect(decodeProperties(ready?.data as Buffer)?.get('socket-type')?.toString()).toBe('PULL')
    expect((frames[1] as Frame).body.toString()).toBe('abc')
    expect((frames[2] as Frame).body.equals(body)).toBe(true)
  })

  it('refuses bad flags and frames over the limit', () => {
    const bad = new FrameDecoder(1024)
    bad.append(Buffer.from([0x08, 0]))
    expect(bad.parse([])?.message).toMatch(/bad frame flags/)
    const big = new FrameDecoder(100)
    big.append(frameHeader(101, 0))
    expect(big.parse([])?.message).toMatch(/over the limit/)
  })

  it('metadata: malformed properties are refused', () => {
    expect(decodeProperties(Buffer.from([0]))).toBeUndefined()
    expect(decodeProperties(Buffer.from([4, 0x61, 0x62]))).toBeUndefined()
  })
})
