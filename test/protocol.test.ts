import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkPayload, countLines, decodeHeader, decodeReceipt, encodeHeader, encodeReceipt, HEADER_BYTES } from '../shared/protocol.js'

const producerId = randomBytes(16)

describe('header', () => {
  for (const seq of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    it(`round-trips seq ${seq}`, () => {
      const buf = encodeHeader({ records: 7, seq, base: seq, producerId })
      expect(buf.length).toBe(HEADER_BYTES)
      expect(decodeHeader(buf)).toEqual({ ok: true, header: { records: 7, seq, base: seq, producerId } })
    })
  }

  const good = encodeHeader({ records: 1, seq: 3, base: 2, producerId })
  const cases: Array<[string, Buffer, string]> = [
    ['too short', good.subarray(0, 39), 'bad_header'],
    ['bad magic', Buffer.concat([Buffer.from('XX'), good.subarray(2)]), 'bad_header'],
    ['reserved flags set', Buffer.concat([good.subarray(0, 3), Buffer.from([1]), good.subarray(4)]), 'bad_header'],
    ['version 2', Buffer.concat([good.subarray(0, 2), Buffer.from([2]), good.subarray(3)]), 'unsupported_version'],
    ['base above seq', encodeHeader({ records: 1, seq: 1, base: 2, producerId }), 'bad_header'],
    ['seq above 2^53', Buffer.concat([good.subarray(0, 8), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), good.subarray(16)]), 'bad_header']
  ]
  for (const [what, buf, reason] of cases) {
    it(`rejects a header with ${what} as ${reason}`, () => {
      expect(decodeHeader(buf)).toEqual({ ok: false, reason })
    })
  }
})

describe('payload', () => {
  const cases: Array<[string, Buffer, number | string]> = [
    ['two lines', Buffer.from('a\nb\n'), 2],
    ['an empty frame', Buffer.alloc(0), 'empty'],
    ['no trailing newline', Buffer.from('a\nb'), 'no_trailing_newline'],
    ['invalid UTF-8', Buffer.from([0xc3, 0x28, 0x0a]), 'invalid_utf8'],
    ['multi-byte UTF-8', Buffer.from('é€😀\n'), 1],
    ['one byte over the limit', Buffer.alloc(1025, 0x0a), 'too_large'],
    ['exactly the limit', Buffer.alloc(1024, 0x0a), 1024]
  ]
  for (const [what, buf, expected] of cases) {
    it(`${what} -> ${expected}`, () => {
      expect(checkPayload(buf, 1024)).toBe(expected)
    })
  }
  it('counts lines', () => {
    expect(countLines(Buffer.from('\n\n\nx'))).toBe(3)
  })
})

describe('receipt', () => {
  it('round-trips', () => {
    expect(decodeReceipt(encodeReceipt(123456789012))).toBe(123456789012)
  })
  it('rejects a frame of the wrong size', () => {
    expect(decodeReceipt(Buffer.alloc(7))).toBeUndefined()
  })
})
