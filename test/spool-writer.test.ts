import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SpoolWriter } from '../producer/spool-writer.js'
import { encodeHeader } from '../shared/protocol.js'
import { parseSpool, parseSpoolPreamble } from '../shared/spool.js'
import { tempDir } from './helpers/children.js'

const ID = Buffer.alloc(16, 0xab)
const entry = (seq: number): [Buffer, Buffer] => [encodeHeader({ records: 1, seq, base: 0, producerId: ID }), Buffer.from(`{"seq":${seq}}\n`)]

describe('SpoolWriter, a segment whose rename fails', () => {
  it('the next entry goes to a new segment (never after the old one\'s end), the rename is tried again, every entry is read back once', () => {
    const dir = join(tempDir(), 'w.sock.spool')
    const spool = new SpoolWriter(dir, ID.toString('hex'), 'ipc:///x/w.sock')
    // A directory in the way of segment 0's final name: its rename fails, even for root.
    const blocked = join(dir, `${ID.toString('hex')}-${process.pid}-0000000000.spool`)
    mkdirSync(blocked, { recursive: true })
    writeFileSync(join(blocked, 'x'), '')
    spool.append(...entry(0))
    expect(() => spool.seal()).toThrow()
    spool.append(...entry(1))
    expect(() => spool.seal()).toThrow() // segment 1 is renamed; segment 0 still cannot be
    rmSync(blocked, { recursive: true })
    spool.seal()
    const files = readdirSync(dir).sort()
    expect(files).toEqual([0, 1].map((n) => `${ID.toString('hex')}-${process.pid}-000000000${n}.spool`))
    const seqs = files.map((name) => {
      const buf = readFileSync(join(dir, name))
      const preamble = parseSpoolPreamble(buf)
      if (typeof preamble !== 'object') throw new Error(`${name}: no preamble`)
      const parsed = parseSpool(buf, 1024 * 1024, preamble.bytes)
      expect(parsed.torn, name).toBeUndefined()
      return parsed.entries.map((e) => e.header.seq)
    })
    expect(seqs).toEqual([[0], [1]])
  })
})

// /dev/full fails every write with ENOSPC: a segment name linked to it is a segment on a full disk.
describe.runIf(existsSync('/dev/full'))('SpoolWriter, a disk full before a segment\'s preamble is written', () => {
  it('each failed segment is removed, not handed over; the next entry that fits is the only file', () => {
    const dir = join(tempDir(), 'w.sock.spool')
    mkdirSync(dir, { mode: 0o700 })
    const spool = new SpoolWriter(dir, ID.toString('hex'), 'ipc:///x/w.sock')
    const segment = (n: number): string => `${ID.toString('hex')}-${process.pid}-${String(n).padStart(10, '0')}`
    for (const n of [0, 1, 2]) symlinkSync('/dev/full', join(dir, `${segment(n)}.spool.tmp`))
    for (const seq of [0, 1, 2]) expect(() => spool.append(...entry(seq))).toThrow(expect.objectContaining({ code: 'ENOSPC' }))
    expect(spool.open).toBe(false)
    expect(readdirSync(dir)).toEqual([])
    spool.append(...entry(3))
    spool.seal()
    expect(readdirSync(dir)).toEqual([`${segment(3)}.spool`])
    const buf = readFileSync(join(dir, `${segment(3)}.spool`))
    const preamble = parseSpoolPreamble(buf)
    if (typeof preamble !== 'object') throw new Error('no preamble')
    expect(parseSpool(buf, 1024 * 1024, preamble.bytes).entries.map((e) => e.header.seq)).toEqual([3])
  })
})
