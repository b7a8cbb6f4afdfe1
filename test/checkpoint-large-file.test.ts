import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { chainHash, newHasher, preferredAlg } from '../shared/checkpoint-format.js'
import { tempDir } from './helpers/children.js'
import { verifyCli } from './helpers/checkpoints.js'

/** Past 2 GiB, the most `fs.readFile` reads into one buffer. */
const HOLE_BYTES = 2 * 1024 ** 3 + 64 * 1024 ** 2
const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * A checkpointed file of 2.06 GiB that takes no disk: a start checkpoint, a hole (zeros, as a
 * sparse file reads) ended by a newline, an interval checkpoint vouching for that one line, a
 * stop checkpoint. Returns the offset of the hole.
 */
function writeSparseSet (path: string): number {
  const alg = preferredAlg()
  let n = 0
  let prev: string | null = null
  const line = (at: string, bytes: number, hash: string, records = 0): Buffer => {
    const text = JSON.stringify({ level: 30, time: Date.now(), msg: 'logfunnel checkpoint', logfunnel: 'checkpoint', ...(alg === 'blake3' ? { alg } : {}), writer: '0123456789abcdef', n: n++, at, bytes, records, hash, prev, producers: {} })
    const buf = Buffer.from(`${text}\n`)
    prev = chainHash(buf, alg)
    return buf
  }
  const hole = newHasher(alg)
  for (let left = HOLE_BYTES - 1; left > 0; left -= ZEROS.length) hole.update(left < ZEROS.length ? ZEROS.subarray(0, left) : ZEROS)
  hole.update(Buffer.from('\n'))
  const fd = openSync(path, 'w')
  try {
    const start = line('start', 0, newHasher(alg).digest())
    writeSync(fd, start)
    const rest = Buffer.concat([Buffer.from('\n'), line('interval', HOLE_BYTES, hole.digest(), 1), line('stop', 0, newHasher(alg).digest(), 0)])
    writeSync(fd, rest, 0, rest.length, start.length + HOLE_BYTES - 1)
    return start.length
  } finally {
    closeSync(fd)
  }
}

describe('verify --checkpoints of a file past 2 GiB', () => {
  it('streams it: a clean file passes, and a byte changed in its middle is found', async () => {
    const file = join(tempDir(), 'app.log')
    const holeAt = writeSparseSet(file)
    // Before, the file was read whole: exit 2, "File size (2214592858) is greater than 2 GiB".
    const clean = await verifyCli([file])
    expect(clean.code, JSON.stringify(clean.report)).toBe(0)
    expect(clean.report).toMatchObject({ ok: true, checkpoints: 3, defects: [], final: true, unprovenBytes: 0 })

    const edit = holeAt + HOLE_BYTES / 2
    const fd = openSync(file, 'r+')
    writeSync(fd, Buffer.from('y'), 0, 1, edit)
    closeSync(fd)
    const edited = await verifyCli([file])
    expect(edited.code).toBe(1)
    expect(edited.report.defects).toEqual([expect.objectContaining({ kind: 'edited', checkpoint: 1, from: holeAt, to: holeAt + HOLE_BYTES })])
  })
}, 120_000)
