import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SpoolWriter } from '../producer/spool-writer.js'
import { encodeHeader } from '../shared/protocol.js'
import { parseSpool, parseSpoolPreamble } from '../shared/spool.js'
import { exitCode, fixture, spawnCommand, stderrEvents, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

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

// RLIMIT_FSIZE: a write that crosses the limit is cut short and the next fails with EFBIG, as on
// a disk that fills in the middle of an entry (Node ignores SIGXFSZ, so the process lives on).
describe.runIf(existsSync('/usr/bin/prlimit'))('SpoolWriter, a disk that fills in the middle of an entry (a real process under prlimit --fsize)', () => {
  it('the part written is cut off again, a segment left with no entry is removed: the writer gets whole entries only, no torn tail, and writes every entry that was appended', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // Files of at most 3000 bytes: entries of 1044 bytes (1000 of payload), preamble ~120. Segment
    // 0 takes entries 0 and 1, entry 2 fails part-way; segment 1 gets its preamble and entry 3
    // fails part-way (no whole entry); segment 2 takes entry 4.
    const producer = spawnCommand('prlimit', ['--fsize=3000', process.execPath, fixture('spool-fills-mid-entry'), spoolDir, endpoint, '1000', '1000', '5000', '5000', '1000'])
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(producer.stdout().trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { event: 'failed', i: 2, code: 'EFBIG' },
      { event: 'failed', i: 3, code: 'EFBIG' },
      { event: 'done', appended: 3 }
    ])
    const files = readdirSync(spoolDir).sort()
    expect(files.map((name) => name.replace(/^[0-9a-f]{32}-\d+-/, ''))).toEqual(['0000000000.spool', '0000000002.spool'])
    const entries = files.map((name) => {
      const buf = readFileSync(join(spoolDir, name))
      const preamble = parseSpoolPreamble(buf)
      if (typeof preamble !== 'object') throw new Error(`${name}: no preamble`)
      const parsed = parseSpool(buf, 1024 * 1024, preamble.bytes)
      expect([parsed.torn, parsed.wholeBytes], name).toEqual([undefined, buf.length])
      return parsed.entries.map((e) => e.header.seq)
    })
    expect(entries).toEqual([[0, 1], [2]])

    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    const summary = await writer.stop({ spoolTaken: true })
    expect(readdirSync(spoolDir)).toEqual([])
    expect(summary).toMatchObject({ records: 3, spool: { files: 2, entries: 3, torn: 0, rejected: 0, foreign: 0 } })
    expect(stderrEvents(writer.child, 'spool-torn')).toEqual([])
    expect(readFileSync(writer.file, 'utf8').split('\n').slice(0, -1).map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([0, 1, 4])
  })
})
