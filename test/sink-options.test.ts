import { describe, expect, it } from 'vitest'
import { resolveWriterOptions, WRITER_DEFAULTS } from '../shared/options.js'
import { parseDuration, parseSize } from '../shared/units.js'
import { parseWriterArgs } from '../cli/writer-command.js'

const INVALID = { code: 'LOGFUNNEL_ERR_INVALID_OPTION' }
const USAGE = { code: 'LOGFUNNEL_ERR_USAGE' }
const ENDPOINT = 'ipc:///tmp/x/w.sock'

describe('rotation and fsync options', () => {
  it('default to no rotation and fsync after every write', () => {
    expect(resolveWriterOptions({ endpoint: ENDPOINT })).toMatchObject({
      rotateSizeBytes: 0, rotateIntervalMs: 0, rotateKeep: 0, rotateGzip: false, fsync: 'batch'
    })
    expect(WRITER_DEFAULTS.fsync).toBe('batch')
  })

  const bad: Array<[string, object, RegExp]> = [
    ['rotateSizeBytes below 1 KiB', { rotateSizeBytes: 100 }, /rotateSizeBytes must be 0 \(off\) or an integer between 1 KiB/],
    ['rotateIntervalMs below 1 s', { rotateIntervalMs: 10 }, /rotateIntervalMs must be 0 \(off\) or an integer between 1000/],
    ['a negative rotateKeep', { rotateKeep: -1, rotateSizeBytes: 4096 }, /rotateKeep must be an integer/],
    ['rotateGzip not a boolean', { rotateGzip: 'yes', rotateSizeBytes: 4096 }, /rotateGzip must be a boolean/],
    ['rotateKeep without rotation', { rotateKeep: 3 }, /need rotateSizeBytes or rotateIntervalMs/],
    ['rotateGzip without rotation', { rotateGzip: true }, /need rotateSizeBytes or rotateIntervalMs/],
    ['fsync of another word', { fsync: 'sometimes' }, /fsync must be 'off', 'batch' or an integer number of ms/],
    ['fsync of 0 ms', { fsync: 0 }, /fsync must be/]
  ]
  for (const [what, opts, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => resolveWriterOptions({ endpoint: ENDPOINT, ...opts })).toThrow(expect.objectContaining({ ...INVALID, message: expect.stringMatching(message) }))
    })
  }
})

describe('sizes and durations', () => {
  const sizes: Array<[string, number]> = [['4096', 4096], ['512K', 512 * 1024], ['100M', 100 * 1024 ** 2], ['2g', 2 * 1024 ** 3]]
  for (const [text, bytes] of sizes) {
    it(`${text} is ${bytes} bytes`, () => expect(parseSize(text, '--rotate-size')).toBe(bytes))
  }
  const durations: Array<[string, number]> = [['1500', 1500], ['250ms', 250], ['30s', 30_000], ['15m', 900_000], ['6h', 21_600_000], ['1d', 86_400_000]]
  for (const [text, ms] of durations) {
    it(`${text} is ${ms} ms`, () => expect(parseDuration(text, '--rotate-interval')).toBe(ms))
  }
  for (const text of ['10X', '1.5M', '-1', '', 'M']) {
    it(`rejects the size '${text}'`, () => expect(() => parseSize(text, '--rotate-size')).toThrow(expect.objectContaining(USAGE)))
  }
  for (const text of ['1w', '1.5s', 's']) {
    it(`rejects the duration '${text}'`, () => expect(() => parseDuration(text, '--rotate-interval')).toThrow(expect.objectContaining(USAGE)))
  }
})

describe('writer flags', () => {
  it('parse sizes, durations, booleans and the fsync policy', () => {
    expect(parseWriterArgs(['--rotate-size', '100M', '--rotate-interval', '1d', '--rotate-keep', '7', '--rotate-gzip', '--fsync', '250'])).toEqual({
      options: { rotateSizeBytes: 100 * 1024 ** 2, rotateIntervalMs: 86_400_000, rotateKeep: 7, rotateGzip: true, fsync: 250 },
      exitWithParent: false
    })
    expect(parseWriterArgs(['--fsync', 'batch'])).toEqual({ options: { fsync: 'batch' }, exitWithParent: false })
    expect(parseWriterArgs(['--fsync', '2s', '--exit-with-parent'])).toEqual({ options: { fsync: 2000 }, exitWithParent: true })
    expect(parseWriterArgs(['-h'])).toBe('help')
  })

  for (const args of [['--fsync', 'sometimes'], ['--rotate-size', '10X'], ['--rotate-gzip=yes'], ['--rotate-interval', '1w'], ['--file', ''], ['--file='], ['--spool-dir', ''], ['--pid-file', '']]) {
    it(`rejects ${args.join(' ')} with LOGFUNNEL_ERR_USAGE`, () => {
      expect(() => parseWriterArgs(args)).toThrow(expect.objectContaining(USAGE))
    })
  }
})
