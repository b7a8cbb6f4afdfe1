import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { encodeHeader } from '../../shared/protocol.js'

/**
 * The spool format, written out here rather than with shared/spool.ts, so the tests check the
 * writer against the format as documented: preamble "LFS" 0x01, length, JSON; entries of
 * header, 4-byte length, payload.
 */
function preamble (endpoint: string, pid: number, start: string | null, thread?: { tid: number, start: string | null }): Buffer {
  const key = endpoint.startsWith('ipc://') ? `ipc://${resolve(endpoint.slice('ipc://'.length))}` : `tcp:${endpoint.split(':').pop() ?? ''}`
  const json = Buffer.from(JSON.stringify(thread === undefined ? { endpoint: key, pid, start } : { endpoint: key, pid, start, thread }))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(json.length)
  return Buffer.concat([Buffer.from([0x4c, 0x46, 0x53, 0x01]), length, json])
}

function entry (header: Buffer, payload: Buffer): Buffer[] {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(payload.length)
  return [header, length, payload]
}

export interface CraftedSpool {
  /** The endpoint recorded in the preamble; none: a file without preamble. */
  endpoint?: string
  records: number
  /** Records per entry (batch). */
  perBatch?: number
  producerId?: Buffer
  pid?: number
  /** The process start time recorded in the preamble. */
  start?: string | null
  /** The thread recorded in the preamble as the file's writer (a worker thread's early segment). */
  thread?: { tid: number, start: string | null }
  /** Marks each line, so the test can tell whose records reached the file. */
  tag?: string
}

/** A spool file's bytes as a producer writes them: preamble, then entries of `perBatch` lines. */
export function craftSpool (spec: CraftedSpool): { bytes: Buffer, producerId: Buffer, name: (segment: number, tmp?: boolean) => string } {
  const producerId = spec.producerId ?? randomBytes(16)
  const perBatch = spec.perBatch ?? 10
  const pid = spec.pid ?? 1
  const parts: Buffer[] = []
  if (spec.endpoint !== undefined) parts.push(preamble(spec.endpoint, pid, spec.start ?? null, spec.thread))
  for (let first = 0, seq = 0; first < spec.records; first += perBatch, seq++) {
    const n = Math.min(perBatch, spec.records - first)
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ tag: spec.tag ?? 'spool', seq: first + i }) + '\n').join('')
    parts.push(...entry(encodeHeader({ records: n, seq, base: 0, producerId }), Buffer.from(lines)))
  }
  const idHex = producerId.toString('hex')
  return {
    bytes: Buffer.concat(parts),
    producerId,
    name: (segment, tmp = false) => `${idHex}-${pid}-${String(segment).padStart(10, '0')}.spool${tmp ? '.tmp' : ''}`
  }
}

/**
 * Writes a crafted spool file into `dir` as a producer hands one over: under another name, then
 * renamed (a writer watching the directory may read a file the moment its name appears); returns
 * its name.
 */
export function writeSpool (dir: string, spec: CraftedSpool & { tmp?: boolean, segment?: number }): string {
  const spool = craftSpool(spec)
  const name = spool.name(spec.segment ?? 0, spec.tmp)
  writeFileSync(`${dir}/${name}.incoming`, spool.bytes, { mode: 0o600 })
  renameSync(`${dir}/${name}.incoming`, `${dir}/${name}`)
  return name
}

/** What spool files in a directory hold, read by the documented format: their entries and the records' `seq`s. */
export interface SpooledRecords {
  /** Complete (`.spool`) files and unfinished (`.spool.tmp`) ones. */
  files: number
  tmpFiles: number
  /** Entries (batches) in all of them. */
  entries: number
  /** The `seq` field of every record in them, in file and entry order. */
  seqs: number[]
}

/** Reads every spool file in `dir` (none: all zero); a file removed while it reads (taken by a running writer) counts as gone. */
export function readSpooled (dir: string): SpooledRecords {
  const found: SpooledRecords = { files: 0, tmpFiles: 0, entries: 0, seqs: [] }
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return found
  }
  for (const name of names.filter((n) => /^[0-9a-f]{32}-\d+-\d{10}\.spool(\.tmp)?$/.test(n)).sort()) {
    let buf: Buffer
    try {
      buf = readFileSync(join(dir, name))
    } catch (err) {
      // A writer running meanwhile may have taken (removed) the file since the listing.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    if (name.endsWith('.tmp')) found.tmpFiles++
    else found.files++
    let offset = buf.subarray(0, 4).equals(Buffer.from([0x4c, 0x46, 0x53, 0x01])) ? 8 + buf.readUInt32BE(4) : 0
    // Entries: a 40-byte header, a 4-byte length, the payload; a torn tail ends the file. The
    // last entry may be open (length 0xffffffff: a worker thread's early segment), its lines
    // running to the file's last newline.
    while (offset + 44 <= buf.length) {
      const length = buf.readUInt32BE(offset + 40)
      const end = length === 0xffffffff ? buf.lastIndexOf(10) + 1 : offset + 44 + length
      if (end > buf.length || end < offset + 44) break
      const payload = buf.subarray(offset + 44, end).toString('utf8')
      for (const line of payload.split('\n').filter(Boolean)) found.seqs.push(JSON.parse(line).seq)
      found.entries++
      offset = end
    }
  }
  return found
}
