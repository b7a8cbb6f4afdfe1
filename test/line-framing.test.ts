import { describe, expect, it } from 'vitest'
import { countLines, LineFramer, once, splitTooLarge, surelyWithin } from '../producer/line-framing.js'

describe('line framing shared by the ring and the transport target', () => {
  it('LineFramer gives whole lines only and keeps a partial tail until its end arrives', () => {
    const framer = new LineFramer()
    const take = (chunk: string): string[] => {
      const pieces: string[] = []
      framer.take(chunk, (text) => pieces.push(text))
      return pieces
    }
    expect(take('{"a":1}\n{"b"')).toEqual(['{"a":1}\n'])
    expect(framer.hasPartial).toBe(true)
    expect(take(':2')).toEqual([])
    // The kept tail is joined to the first line only; the rest of the chunk goes as it is.
    expect(take('}\n{"c":3}\n')).toEqual(['{"b":2}\n', '{"c":3}\n'])
    expect(framer.hasPartial).toBe(false)
    expect(take('{"d":4}')).toEqual([])
    expect(take('}\n')).toEqual(['{"d":4}}\n'])
    expect(take('{"e"')).toEqual([])
    expect(take(':5}\n{"f":6}\n{"g"')).toEqual(['{"e":5}\n', '{"f":6}\n'])
    expect(take(':7}\n{"h"')).toEqual(['{"g":7}\n'])
    expect(take('\n')).toEqual(['{"h"\n'])
    expect(take('{"i":9}\n')).toEqual(['{"i":9}\n'])
    expect(take('{"j":10}')).toEqual([])
    expect(framer.end()).toBe('{"j":10}\n')
    expect(framer.end()).toBe('')
  })

  it('countLines counts line ends in text and in encoded bytes alike', () => {
    for (const text of ['', 'a', 'a\n', 'a\nb\n', '\n\n\n', 'é€😀\nx\n']) {
      expect(countLines(Buffer.from(text))).toBe(countLines(text))
    }
    expect(countLines('é€😀\nx\n')).toBe(2)
    expect(countLines(new Uint8Array([10, 65, 10]))).toBe(2)
  })

  it('surelyWithin bounds UTF-8 size without encoding: never true for text that is larger', () => {
    for (const text of ['abc', 'é'.repeat(10), '😀'.repeat(10), '€'.repeat(10)]) {
      const bytes = Buffer.byteLength(text)
      for (const limit of [bytes - 1, bytes, bytes * 3]) {
        if (surelyWithin(text, limit)) expect(bytes).toBeLessThanOrEqual(limit)
      }
    }
  })

  it('splitTooLarge passes runs of lines within the limit and rejects each larger line, in order', () => {
    const lines = ['a\n', 'bb\n', 'x'.repeat(20) + '\n', 'c\n', 'y'.repeat(30) + '\n', 'y'.repeat(40) + '\n', 'd\n']
    const events: string[] = []
    splitTooLarge(Buffer.from(lines.join('')), 10, (run, records) => events.push(`accept ${records}: ${run.toString().replace(/\n/g, '|')}`), (n) => events.push(`reject ${n}`))
    expect(events).toEqual(['accept 2: a|bb|', 'reject 21', 'accept 1: c|', 'reject 31', 'reject 41', 'accept 1: d|'])
  })

  it('once calls through the first time only', () => {
    const seen: number[] = []
    const warn = once((n: number) => seen.push(n))
    warn(1)
    warn(2)
    expect(seen).toEqual([1])
  })
})
