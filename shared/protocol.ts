import { isUtf8 } from 'node:buffer'

/**
 * logfunnel wire protocol, version 1. README.md ("Wire protocol") is the prose form of this
 * file, for authors of producers in other languages.
 *
 * Data: producer PUSH -> writer PULL. A message is either
 * - one frame of complete lines (a plain client, no receipt), or
 * - two frames: a 40-byte header, then the payload of complete lines.
 *
 * Header (all integers big-endian):
 *   0  2  magic "LF" (0x4c 0x46)
 *   2  1  version (1)
 *   3  1  flags (0; reserved)
 *   4  4  record count: lines in the payload
 *   8  8  batch sequence number; a producer's first batch is 0
 *  16  8  base: the lowest sequence the producer still holds without a receipt (<= sequence)
 *  24 16  producer id: 16 random bytes, also the receipt topic
 *
 * Receipts: writer PUB -> producer SUB, two frames: the 16-byte producer id (topic), then the
 * 8-byte highest batch sequence written for that producer. Receipts are cumulative. A third
 * frame, GAP_FLAG, says the writer refused a batch that skipped ahead: the producer resends
 * from its first unreceipted batch at once instead of waiting for its receipt timeout; a
 * too-large flag (encodeTooLargeFlag) that it refused a batch over its `maxFrameBytes`. On
 * subscribe, the writer sends the producer its current receipt, or the welcome (sequence
 * 2^64 - 1: nothing written yet), so a producer learns the writer hears it.
 */
export const PROTOCOL_VERSION = 1
export const HEADER_BYTES = 40
export const PRODUCER_ID_BYTES = 16
export const RECEIPT_SEQ_BYTES = 8
/** Third receipt frame: "a batch of yours skipped ahead; resend from your first unreceipted". */
export const GAP_FLAG = Buffer.from('G')
/** First byte of the third receipt frame that says "a batch of yours was over my maxFrameBytes". */
const TOO_LARGE_TAG = 0x4c

/**
 * Third receipt frame: 'L' and the writer's `maxFrameBytes` (uint32, big-endian): the writer
 * refused a batch of the producer as `too_large` (the producer's `maxFrameBytes` or
 * `maxBatchBytes` is larger than the writer's). The producer batches within it from then on and
 * moves what it holds to the spool, where the writer takes batches of any size up to
 * MAX_FRAME_BYTES. A producer that does not know it ignores it, like any other third frame.
 */
export function encodeTooLargeFlag (maxFrameBytes: number): Buffer {
  const flag = Buffer.allocUnsafe(5)
  flag[0] = TOO_LARGE_TAG
  flag.writeUInt32BE(maxFrameBytes, 1)
  return flag
}

/** The writer's `maxFrameBytes` from a too-large flag; undefined for any other frame. */
export function decodeTooLargeFlag (flag: Buffer): number | undefined {
  if (flag.length !== 5 || flag[0] !== TOO_LARGE_TAG) return undefined
  const limit = flag.readUInt32BE(1)
  return limit > 0 ? limit : undefined
}

const MAGIC_0 = 0x4c
const MAGIC_1 = 0x46
export const NEWLINE = 0x0a

/** Why the writer refused a message. These strings are stable: they key the summary's `rejected`. */
export const REJECT_REASONS = [
  'bad_frame_count',
  'bad_header',
  'unsupported_version',
  'empty',
  'too_large',
  'no_trailing_newline',
  'invalid_utf8',
  'invalid_utf8_line',
  'count_mismatch',
  'out_of_sequence',
  'base_skip',
  'id_conflict'
] as const
export type RejectReason = typeof REJECT_REASONS[number]

export interface BatchHeader {
  records: number
  seq: number
  base: number
  producerId: Buffer
}

/** Encodes a version-1 header. `seq` and `base` stay below 2^53 (plenty: 2^53 batches). */
export function encodeHeader (header: BatchHeader): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES)
  buf[0] = MAGIC_0
  buf[1] = MAGIC_1
  buf[2] = PROTOCOL_VERSION
  buf[3] = 0
  buf.writeUInt32BE(header.records, 4)
  writeUInt64(buf, header.seq, 8)
  writeUInt64(buf, header.base, 16)
  header.producerId.copy(buf, 24, 0, PRODUCER_ID_BYTES)
  return buf
}

export type HeaderResult = { ok: true, header: BatchHeader } | { ok: false, reason: RejectReason }

/** Decodes a header frame; never throws. */
export function decodeHeader (buf: Buffer): HeaderResult {
  if (buf.length !== HEADER_BYTES || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1 || buf[3] !== 0) {
    return { ok: false, reason: 'bad_header' }
  }
  if (buf[2] !== PROTOCOL_VERSION) return { ok: false, reason: 'unsupported_version' }
  const seq = readUInt64(buf, 8)
  const base = readUInt64(buf, 16)
  if (seq === undefined || base === undefined || base > seq) return { ok: false, reason: 'bad_header' }
  return {
    ok: true,
    header: { records: buf.readUInt32BE(4), seq, base, producerId: Buffer.from(buf.subarray(24, 40)) }
  }
}

/**
 * Checks a payload of lines and counts them. Returns the line count, or the reason it is bad.
 * Order of checks: empty, size, trailing newline, UTF-8.
 */
export function checkPayload (payload: Buffer, maxFrameBytes: number): number | RejectReason {
  if (payload.length === 0) return 'empty'
  if (payload.length > maxFrameBytes) return 'too_large'
  if (payload[payload.length - 1] !== NEWLINE) return 'no_trailing_newline'
  if (!isUtf8(payload)) return 'invalid_utf8'
  return countLines(payload)
}

/**
 * The lines of a payload that failed the UTF-8 check (checkPayload: it ends in `\n`) which are
 * valid UTF-8, joined, their count, and how many lines were not: the writer writes the good
 * lines of such a message and drops only the bad ones.
 */
export function validUtf8Lines (payload: Buffer): { good: Buffer, lines: number, bad: number } {
  const kept: Buffer[] = []
  let bad = 0
  for (let start = 0; start < payload.length;) {
    const end = payload.indexOf(NEWLINE, start) + 1
    const line = payload.subarray(start, end)
    if (isUtf8(line)) kept.push(line)
    else bad++
    start = end
  }
  return { good: Buffer.concat(kept), lines: kept.length, bad }
}

/** Counts line ends: `\n` characters of a string, or `\n` bytes of encoded text. */
export function countLines (data: string | Uint8Array): number {
  let n = 0
  if (typeof data === 'string') {
    for (let i = data.indexOf('\n'); i !== -1; i = data.indexOf('\n', i + 1)) n++
  } else {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) n++
  }
  return n
}

export function encodeReceipt (seq: number): Buffer {
  const buf = Buffer.allocUnsafe(RECEIPT_SEQ_BYTES)
  writeUInt64(buf, seq, 0)
  return buf
}

/**
 * The sequence frame of the welcome, sent to a producer that subscribes before any of its
 * batches is written: 2^64 - 1, "none yet" (-1 in two's complement). decodeReceipt() treats it
 * as malformed, so a producer without the welcome ignores it.
 */
export const WELCOME_RECEIPT: Readonly<Buffer> = Buffer.alloc(RECEIPT_SEQ_BYTES, 0xff)

/** Decodes a receipt's sequence frame, or undefined when malformed (or the welcome). */
export function decodeReceipt (buf: Buffer): number | undefined {
  if (buf.length !== RECEIPT_SEQ_BYTES) return undefined
  return readUInt64(buf, 0)
}

function writeUInt64 (buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset)
  buf.writeUInt32BE(value >>> 0, offset + 4)
}

function readUInt64 (buf: Buffer, offset: number): number | undefined {
  const hi = buf.readUInt32BE(offset)
  // Above 2^53 a JS number loses precision; no producer gets there, so treat it as malformed.
  if (hi >= 0x20_0000) return undefined
  return hi * 0x1_0000_0000 + buf.readUInt32BE(offset + 4)
}
