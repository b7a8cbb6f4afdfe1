import { dirname, join } from 'node:path'
import { parseEndpoint } from './endpoint.js'
import { decodeHeader, HEADER_BYTES, type BatchHeader } from './protocol.js'

/**
 * Spool files: where a producer puts batches the writer has not receipted when it cannot wait
 * (process exit, a close deadline) or must not hold them in memory (`onFull: 'spool'`). The
 * writer ingests them like network messages, so its per-producer sequence check writes each
 * batch once and in order.
 *
 * A file is a series of entries: the 40-byte protocol header, a 4-byte big-endian payload
 * length, then the payload (whole lines). A producer writes `<id>-<pid>-<segment>.spool.tmp`
 * and renames it to `.spool` when complete; the writer reads only complete files, and a `.tmp`
 * file only once its process is gone (a producer that died while spooling).
 */
export const SPOOL_SUFFIX = '.spool'
export const SPOOL_TMP_SUFFIX = '.spool.tmp'
const LENGTH_BYTES = 4
const NAME = /^([0-9a-f]{32})-(\d+)-(\d{10})\.spool(\.tmp)?$/

/** The spool directory both sides use by default: `<socket dir>/spool` for an ipc endpoint. */
export function defaultSpoolDir (endpoint: string): string | undefined {
  const parsed = parseEndpoint(endpoint)
  return parsed.transport === 'ipc' ? join(dirname(parsed.path), 'spool') : undefined
}

export function spoolFileName (producerIdHex: string, pid: number, segment: number): string {
  return `${producerIdHex}-${pid}-${String(segment).padStart(10, '0')}${SPOOL_TMP_SUFFIX}`
}

export interface SpoolName {
  producerIdHex: string
  pid: number
  segment: number
  complete: boolean
}

export function parseSpoolName (name: string): SpoolName | undefined {
  const m = NAME.exec(name)
  if (m === null) return undefined
  return { producerIdHex: m[1] as string, pid: Number(m[2]), segment: Number(m[3]), complete: m[4] === undefined }
}

/** Encodes one entry: header, payload length, payload. */
export function encodeSpoolEntry (header: Buffer, payload: Buffer): Buffer[] {
  const length = Buffer.allocUnsafe(LENGTH_BYTES)
  length.writeUInt32BE(payload.length, 0)
  return [header, length, payload]
}

export interface SpoolEntry {
  header: BatchHeader
  /** The raw header frame, as a network message would carry it. */
  headerFrame: Buffer
  payload: Buffer
}

export interface ParsedSpool {
  entries: SpoolEntry[]
  /** Byte offset where the whole entries end; anything after it is torn. */
  wholeBytes: number
  /** Why parsing stopped before the end, if it did. */
  torn?: 'truncated' | 'bad_header'
}

/**
 * Splits a spool file into entries. Stops at the first entry that is cut short (a crash while
 * spooling) or whose header does not decode; the caller moves that tail aside.
 */
export function parseSpool (buf: Buffer, maxFrameBytes: number): ParsedSpool {
  const entries: SpoolEntry[] = []
  let offset = 0
  while (offset < buf.length) {
    if (buf.length - offset < HEADER_BYTES + LENGTH_BYTES) return { entries, wholeBytes: offset, torn: 'truncated' }
    const headerFrame = buf.subarray(offset, offset + HEADER_BYTES)
    const decoded = decodeHeader(headerFrame)
    const length = buf.readUInt32BE(offset + HEADER_BYTES)
    if (!decoded.ok || length > maxFrameBytes) return { entries, wholeBytes: offset, torn: 'bad_header' }
    const start = offset + HEADER_BYTES + LENGTH_BYTES
    if (buf.length - start < length) return { entries, wholeBytes: offset, torn: 'truncated' }
    entries.push({ header: decoded.header, headerFrame, payload: buf.subarray(start, start + length) })
    offset = start + length
  }
  return { entries, wholeBytes: offset }
}
