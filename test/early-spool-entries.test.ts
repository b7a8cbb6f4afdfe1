import { appendFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EarlyHandOver } from '../producer/early-hand-over.js'
import { EarlySpool } from '../producer/early-spool.js'
import { createControl } from '../producer/sender-requests.js'
import { MAX_FRAME_BYTES, resolveProducerOptions } from '../shared/options.js'
import { parseSpool, parseSpoolPreamble, producerMade, spoolFileName } from '../shared/spool.js'
import { tempDir } from './helpers/children.js'

/**
 * The early phase's segment (producer/early-spool.ts) in one process: lines appended to open
 * entries of up to `maxBatchBytes`, each on disk when append() returns, and what the writer
 * and the sender thread read of it at any moment (shared/spool.ts OPEN_ENTRY_LENGTH).
 */

const ID = Buffer.alloc(16, 0xcd)
const line = (n: number): string => `{"seq":${String(n).padStart(6, '0')},"msg":"an early line"}\n`

function setUp (maxBatchBytes: number): { spool: EarlySpool, control: Int32Array, spoolDir: string, path: string } {
  const options = resolveProducerOptions({ endpoint: `ipc://${join(tempDir(), 'w.sock')}`, maxBatchBytes })
  const spoolDir = options.spoolDir as string
  const control = createControl()
  return { spool: new EarlySpool(control, { ...options, spoolDir }, ID, producerMade()), control, spoolDir, path: join(spoolDir, spoolFileName(ID.toString('hex'), process.pid, 0)) }
}

function parse (path: string): ReturnType<typeof parseSpool> {
  const buf = readFileSync(path)
  const preamble = parseSpoolPreamble(buf)
  if (typeof preamble !== 'object') throw new Error('no preamble')
  return parseSpool(buf, MAX_FRAME_BYTES, preamble.bytes)
}

describe('the early spool segment: lines grouped into entries of up to maxBatchBytes', () => {
  it('100 lines of 37 bytes, 1 KiB entries: after each line the file holds every line so far, in entries of 27 lines', () => {
    const { spool, path } = setUp(1024)
    expect(line(0).length).toBe(37)
    let all = ''
    for (let n = 0; n < 100; n++) {
      expect(spool.append(line(n))).toBe(true)
      all += line(n)
      const parsed = parse(path)
      expect(parsed.torn).toBeUndefined()
      expect(parsed.entries.map((e) => e.header.seq)).toEqual(Array.from({ length: Math.floor(n / 27) + 1 }, (_, i) => i))
      expect(parsed.entries.reduce((r, e) => r + e.header.records, 0)).toBe(n + 1)
      expect(Buffer.concat(parsed.entries.map((e) => e.payload)).toString()).toBe(all)
    }
    expect(parse(path).entries.map((e) => e.header.records)).toEqual([27, 27, 27, 19])
  })

  it('a torn tail after the open entry (a crash in a write) is reported and leaves the whole lines', () => {
    const { spool, path } = setUp(1024)
    for (let n = 0; n < 30; n++) spool.append(line(n))
    appendFileSync(path, '{"seq":')
    const parsed = parse(path)
    expect(parsed.torn).toBe('truncated')
    expect(parsed.entries.map((e) => e.header.records)).toEqual([27, 3])
  })

  it('the sender thread ends the phase and reads back every entry; later lines are refused (they go to the ring)', () => {
    const { spool, control, spoolDir, path } = setUp(1024)
    for (let n = 0; n < 50; n++) spool.append(line(n))
    let closed = 0
    const taken = new EarlyHandOver(control, spoolDir, ID, () => { closed++ }).close()
    expect(closed).toBe(1)
    expect(taken.path).toBe(path)
    expect(taken.count).toBe(2)
    expect(taken.batches?.map((b) => b.records)).toEqual([27, 23])
    expect(spool.append(line(50))).toBe(false)
    expect(parse(path).entries.reduce((r, e) => r + e.header.records, 0)).toBe(50)
  })
})
