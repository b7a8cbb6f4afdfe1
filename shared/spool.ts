import { readFileSync, readlinkSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEndpoint } from './endpoint.js'
import { countLines, decodeHeader, encodeHeader, HEADER_BYTES, NEWLINE, type BatchHeader } from './protocol.js'

/**
 * Spool files: where a producer puts batches the writer has not receipted when it cannot wait
 * (process exit, a close deadline) or must not hold them in memory (`onFull: 'spool'`). The
 * writer ingests them like network messages, so its per-producer sequence check writes each
 * batch once and in order.
 *
 * A file starts with a preamble: "LFS" 0x01, a 4-byte big-endian length, then that many bytes
 * of JSON `{"endpoint":<endpointKey>,"pid":N,"start":<process start time or null>,"made":"<ns>"}`,
 * with `"thread":{"tid":N,"start":...}` in a worker thread's early segment: the writer ingests a
 * file only for its own endpoint, tells a live producer from a reused pid, and takes the
 * producers of one process in the order they were made. Then a series of
 * entries: the 40-byte protocol header, a 4-byte big-endian payload length, the payload (whole
 * lines); the last entry may be open (OPEN_ENTRY_LENGTH). Files without a preamble (written
 * before it existed) are read as entries from byte 0. A producer writes
 * `<id>-<pid>-<segment>.spool.tmp` and renames it to `.spool` when complete; the writer reads
 * only complete files, and a `.tmp` file only once its process is gone (a producer that died
 * while spooling), or the thread it names.
 */
export const SPOOL_SUFFIX = '.spool'
export const SPOOL_TMP_SUFFIX = '.spool.tmp'
/** A producer hands a segment over once it holds this much (so a file is at most this plus one entry). */
export const SPOOL_SEGMENT_BYTES = 4 * 1024 * 1024
const LENGTH_BYTES = 4
/** Bytes of an entry before its payload: the header and the payload length. */
export const SPOOL_ENTRY_OVERHEAD = HEADER_BYTES + LENGTH_BYTES
/**
 * The payload length of an open entry, one its producer still appends whole lines to (a worker
 * thread's early phase, producer/early-spool.ts: one write per log call, so that each line is
 * on disk when the call returns, in entries of many lines). Only the last entry of a file is
 * open: its payload runs to the file's last newline, its records are counted there (its
 * header's are not), and bytes after that newline are a torn tail. A producer closes an entry
 * by writing its length and records in place before it starts the next one.
 */
export const OPEN_ENTRY_LENGTH = 0xffffffff
const NAME = /^([0-9a-f]{32})-(\d+)-(\d{10})\.spool(\.tmp)?$/
/** "LFS" 0x01: starts like a header ("LF") but byte 3 is never 0, so no header decodes from it. */
const PREAMBLE_MAGIC = Buffer.from([0x4c, 0x46, 0x53, 0x01])
/** SpoolPreamble.made: nanoseconds since boot, as decimal digits (2^64 ns is 20 of them). */
const MADE = /^\d{1,20}$/
/** A preamble is a short JSON object; anything longer is not one. */
export const MAX_PREAMBLE_BYTES = 4096

/**
 * The spool directory both sides use by default: `<ipc path>.spool` beside the socket, one per
 * endpoint, so two writers whose sockets share a directory never share a spool.
 */
export function defaultSpoolDir (endpoint: string): string | undefined {
  const parsed = parseEndpoint(endpoint)
  return parsed.transport === 'ipc' ? `${parsed.path}${SPOOL_SUFFIX}` : undefined
}

/**
 * What a spool file records of its endpoint, comparable between the two sides: the resolved
 * ipc path, or for tcp the port only (a writer binds `0.0.0.0:5555` that producers reach as
 * `10.0.0.5:5555` or `localhost:5555`).
 */
export function endpointKey (endpoint: string): string {
  const parsed = parseEndpoint(endpoint)
  return parsed.transport === 'ipc' ? `ipc://${resolve(parsed.path)}` : `tcp:${parsed.port}`
}

export interface SpoolPreamble {
  endpoint: string
  pid: number
  /** The producer process's start time (Linux: clock ticks since boot), null where unknown. */
  start: string | null
  /**
   * The one thread of that process that writes the file, where it is not the process's to end
   * (a worker thread's early phase, producer/early-spool.ts): once that thread is gone, nothing
   * adds to the file or takes it back, and the writer takes it as it takes a dead process's.
   */
  thread?: SpoolThread
  /**
   * When the producer (its id) was made: CLOCK_MONOTONIC in nanoseconds, decimal digits
   * (`process.hrtime.bigint()`, Python's `time.monotonic_ns()`), the same in each of its
   * segments. The writer takes the producers of one process in this order, so a process that
   * made several (a sender closed and another made, Python's logging configured again) has its
   * spooled lines in the file in the order they were logged. Absent in files of older
   * producers, which an older writer reads all the same (it ignores fields it does not know).
   */
  made?: string
}

/** A thread of a process: its id (Linux tid) and start time, as processStartTime() gives a process's. */
export interface SpoolThread {
  tid: number
  start: string | null
}

export function encodeSpoolPreamble (preamble: SpoolPreamble): Buffer {
  const json = Buffer.from(JSON.stringify(preamble))
  const length = Buffer.allocUnsafe(LENGTH_BYTES)
  length.writeUInt32BE(json.length, 0)
  return Buffer.concat([PREAMBLE_MAGIC, length, json])
}

/**
 * Reads the preamble at the start of `buf`: `undefined` when the file has none (an older
 * producer: entries start at byte 0), `'short'` when the file is too short to tell (a producer
 * that has just created it), `'bad'` when it starts like one but does not decode.
 */
export function parseSpoolPreamble (buf: Buffer): { preamble: SpoolPreamble, bytes: number } | undefined | 'short' | 'bad' {
  if (buf.length < PREAMBLE_MAGIC.length + LENGTH_BYTES) return buf.length === 0 || PREAMBLE_MAGIC.subarray(0, buf.length).equals(buf) ? 'short' : undefined
  if (!buf.subarray(0, PREAMBLE_MAGIC.length).equals(PREAMBLE_MAGIC)) return undefined
  const length = buf.readUInt32BE(PREAMBLE_MAGIC.length)
  if (length > MAX_PREAMBLE_BYTES) return 'bad'
  const end = PREAMBLE_MAGIC.length + LENGTH_BYTES + length
  if (buf.length < end) return 'short'
  try {
    const raw = JSON.parse(buf.subarray(PREAMBLE_MAGIC.length + LENGTH_BYTES, end).toString('utf8')) as Partial<SpoolPreamble>
    if (typeof raw.endpoint !== 'string' || !Number.isSafeInteger(raw.pid)) return 'bad'
    const preamble: SpoolPreamble = { endpoint: raw.endpoint, pid: raw.pid as number, start: typeof raw.start === 'string' ? raw.start : null }
    const thread = raw.thread as Partial<SpoolThread> | undefined
    if (typeof thread === 'object' && thread !== null && Number.isSafeInteger(thread.tid)) {
      preamble.thread = { tid: thread.tid as number, start: typeof thread.start === 'string' ? thread.start : null }
    }
    if (typeof raw.made === 'string' && MADE.test(raw.made)) preamble.made = raw.made
    return { preamble, bytes: end }
  } catch {
    return 'bad'
  }
}

/** Now, as SpoolPreamble.made records it: a producer calls it as it makes its id. */
export function producerMade (): string {
  return process.hrtime.bigint().toString()
}

/**
 * A process's start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`): with the
 * pid it names one process, where a pid alone may since have been reused. Undefined when the
 * process does not exist or the system has no /proc.
 */
export function processStartTime (pid: number): string | undefined {
  return startTimeIn(`/proc/${pid}/stat`)
}

/** A thread's start time, as processStartTime() gives a process's; undefined when the thread does not exist (it ended). */
export function threadStartTime (pid: number, tid: number): string | undefined {
  return startTimeIn(`/proc/${pid}/task/${tid}/stat`)
}

/** The calling thread (Linux: `/proc/thread-self`); undefined where the system does not say. */
export function currentThread (): SpoolThread | undefined {
  let tid: number
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1))
  } catch {
    return undefined
  }
  return Number.isSafeInteger(tid) ? { tid, start: threadStartTime(process.pid, tid) ?? null } : undefined
}

function startTimeIn (statPath: string): string | undefined {
  let stat: string
  try {
    stat = readFileSync(statPath, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[19]
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
  return [header, encodeLength(payload.length), payload]
}

/** An entry's header and payload length (OPEN_ENTRY_LENGTH for an open entry), as they start it in the file. */
export function encodeSpoolEntryStart (header: Buffer, payloadBytes: number): Buffer {
  return Buffer.concat([header, encodeLength(payloadBytes)])
}

function encodeLength (bytes: number): Buffer {
  const length = Buffer.allocUnsafe(LENGTH_BYTES)
  length.writeUInt32BE(bytes, 0)
  return length
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
 * Splits a spool file into entries, from `offset` (past the preamble). Stops at the first
 * entry that is cut short (a crash while spooling) or whose header does not decode; the caller
 * moves that tail aside.
 */
export function parseSpool (buf: Buffer, maxFrameBytes: number, offset = 0): ParsedSpool {
  const entries: SpoolEntry[] = []
  while (offset < buf.length) {
    if (buf.length - offset < HEADER_BYTES + LENGTH_BYTES) return { entries, wholeBytes: offset, torn: 'truncated' }
    const headerFrame = buf.subarray(offset, offset + HEADER_BYTES)
    const decoded = decodeHeader(headerFrame)
    const length = buf.readUInt32BE(offset + HEADER_BYTES)
    const start = offset + HEADER_BYTES + LENGTH_BYTES
    if (decoded.ok && length === OPEN_ENTRY_LENGTH) return parseOpenEntry(buf, maxFrameBytes, entries, offset, decoded.header)
    if (!decoded.ok || length > maxFrameBytes) return { entries, wholeBytes: offset, torn: 'bad_header' }
    if (buf.length - start < length) return { entries, wholeBytes: offset, torn: 'truncated' }
    entries.push({ header: decoded.header, headerFrame, payload: buf.subarray(start, start + length) })
    offset = start + length
  }
  return { entries, wholeBytes: offset }
}

/** The file's open last entry (see OPEN_ENTRY_LENGTH), at `offset`, after `entries`. */
function parseOpenEntry (buf: Buffer, maxFrameBytes: number, entries: SpoolEntry[], offset: number, header: BatchHeader): ParsedSpool {
  const start = offset + HEADER_BYTES + LENGTH_BYTES
  const end = buf.lastIndexOf(NEWLINE) + 1
  if (end <= start) return { entries, wholeBytes: offset, torn: 'truncated' }
  if (end - start > maxFrameBytes) return { entries, wholeBytes: offset, torn: 'bad_header' }
  const payload = buf.subarray(start, end)
  const counted = { ...header, records: countLines(payload) }
  entries.push({ header: counted, headerFrame: encodeHeader(counted), payload })
  return end === buf.length ? { entries, wholeBytes: end } : { entries, wholeBytes: end, torn: 'truncated' }
}

/** The largest spool file a producer writes: a full segment plus one entry, and the preamble. */
export function maxSpoolFileBytes (maxFrameBytes: number): number {
  return SPOOL_SEGMENT_BYTES + HEADER_BYTES + LENGTH_BYTES + maxFrameBytes + PREAMBLE_MAGIC.length + LENGTH_BYTES + MAX_PREAMBLE_BYTES
}
