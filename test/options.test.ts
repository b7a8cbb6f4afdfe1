import { describe, expect, it } from 'vitest'
import { receiptEndpointFor, lockPathFor } from '../shared/endpoint.js'
import { resolveProducerOptions, resolveWriterOptions, WRITER_DEFAULTS, PRODUCER_DEFAULTS } from '../shared/options.js'

const INVALID = { code: 'LOGFUNNEL_ERR_INVALID_OPTION' }

describe('writer options', () => {
  it('fills defaults', () => {
    const o = resolveWriterOptions({ endpoint: 'ipc:///tmp/x/w.sock' })
    expect(o).toMatchObject({ ...WRITER_DEFAULTS, endpoint: 'ipc:///tmp/x/w.sock', receiptEndpoint: 'ipc:///tmp/x/w.sock.receipts' })
  })
  const bad: Array<[string, object, RegExp]> = [
    ['maxFrameBytes below 1 KiB', { maxFrameBytes: 10 }, /maxFrameBytes must be an integer between 1 KiB and 64 MiB/],
    ['maxFrameBytes not an integer', { maxFrameBytes: 1.5 }, /maxFrameBytes/],
    ['a relative ipc path', { endpoint: 'ipc://rel/w.sock' }, /absolute/],
    ['an ipc path over the OS limit', { endpoint: `ipc:///${'x'.repeat(120)}` }, /at most/],
    ['an unknown transport', { endpoint: 'udp://127.0.0.1:1' }, /ipc:\/\/\/absolute\/path or tcp:\/\/host:port/],
    ['the receipt endpoint equal to the endpoint', { endpoint: 'tcp://127.0.0.1:5000', receiptEndpoint: 'tcp://127.0.0.1:5000' }, /differ/],
    ['an empty file', { file: '' }, /file/],
    ['drainIdleMs above drainTimeoutMs', { drainIdleMs: 5000, drainTimeoutMs: 1000 }, /drainIdleMs/]
  ]
  for (const [what, opts, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => resolveWriterOptions(opts)).toThrow(expect.objectContaining({ ...INVALID, message: expect.stringMatching(message) }))
    })
  }
})

describe('producer options', () => {
  it('fills defaults', () => {
    expect(resolveProducerOptions({ endpoint: 'tcp://127.0.0.1:7000' })).toMatchObject({
      ...PRODUCER_DEFAULTS, receiptEndpoint: 'tcp://127.0.0.1:7001'
    })
  })
  const bad: Array<[string, object]> = [
    ['onFull other than block or drop', { onFull: 'wait' }],
    ['maxBatchBytes above maxFrameBytes', { maxFrameBytes: 4096, maxBatchBytes: 8192 }],
    ['highWaterMark below maxFrameBytes', { highWaterMark: 2048, maxFrameBytes: 4096, maxBatchBytes: 1024 }],
    ['a negative linger', { linger: -1 }],
    ['a tcp port of 65535 (no room for the receipt port)', { endpoint: 'tcp://127.0.0.1:65535' }]
  ]
  for (const [what, opts] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => resolveProducerOptions(opts)).toThrow(expect.objectContaining(INVALID))
    })
  }
  it('names both values when two options disagree', () => {
    expect(() => resolveProducerOptions({ maxFrameBytes: 4096, maxBatchBytes: 8192 })).toThrow("maxBatchBytes (8192) must not exceed maxFrameBytes (4096, the writer's limit): a batch is one frame")
    expect(() => resolveProducerOptions({ highWaterMark: 2048, maxFrameBytes: 4096, maxBatchBytes: 1024 })).toThrow('highWaterMark (2048) must be at least maxFrameBytes (4096), so that the largest record fits')
  })
})

describe('endpoints', () => {
  it('derives receipt endpoints and lock paths', () => {
    expect(receiptEndpointFor('ipc:///run/a.sock')).toBe('ipc:///run/a.sock.receipts')
    expect(receiptEndpointFor('tcp://[::1]:9000')).toBe('tcp://[::1]:9001')
    expect(lockPathFor('ipc:///run/a.sock')).toBe('/run/a.sock.lock')
    expect(lockPathFor('tcp://127.0.0.1:9000')).toMatch(/tcp-127\.0\.0\.1-9000\.lock$/)
  })
})
