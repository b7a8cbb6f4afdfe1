import { type BatchHeader, checkPayload, countLines, decodeHeader, type RejectReason, validUtf8Lines } from '../shared/protocol.js'

/** The lines of a message to write: its payload, or the UTF-8 lines of it when some were not (`bad` of them dropped). */
export interface Body { good: Buffer, lines: number, bad: number }

/**
 * What a message's frames are, checked before anything is written or admitted:
 * - `reject`: not written (`tooLarge`: a batch over the limit, whose producer is told);
 * - `plain`: one frame of lines from a plain PUSH peer, no order to keep;
 * - `batch`: a header and its payload, its line count the header's.
 */
export type CheckedMessage =
  | { kind: 'reject', reason: RejectReason, tooLarge?: { producerId: Buffer, bytes: number } }
  | { kind: 'plain', body: Body }
  | { kind: 'batch', header: BatchHeader, body: Body }

/**
 * Checks a message's frames against the protocol and `maxFrameBytes`. Lines that are not UTF-8
 * cost only themselves: the others are kept (`bad` counts the dropped ones), and a batch with
 * such lines still matches its header's count, so it is receipted (a resend would not make them
 * valid). Pure: the writer's `#handle` counts, reports and admits what this returns.
 */
export function checkMessage (frames: Buffer[], maxFrameBytes: number): CheckedMessage {
  if (frames.length === 1) {
    const payload = frames[0] as Buffer
    const lines = checkPayload(payload, maxFrameBytes)
    if (lines === 'invalid_utf8') {
      const salvaged = validUtf8Lines(payload)
      return salvaged.lines === 0 ? { kind: 'reject', reason: lines } : { kind: 'plain', body: salvaged }
    }
    if (typeof lines === 'string') return { kind: 'reject', reason: lines }
    return { kind: 'plain', body: { good: payload, lines, bad: 0 } }
  }
  if (frames.length !== 2) return { kind: 'reject', reason: 'bad_frame_count' }
  const decoded = decodeHeader(frames[0] as Buffer)
  if (!decoded.ok) return { kind: 'reject', reason: decoded.reason }
  const { header } = decoded
  const payload = frames[1] as Buffer
  let lines = checkPayload(payload, maxFrameBytes)
  if (lines === 'too_large') return { kind: 'reject', reason: lines, tooLarge: { producerId: header.producerId, bytes: payload.length } }
  let body: Body | undefined
  if (lines === 'invalid_utf8') {
    const salvaged = validUtf8Lines(payload)
    if (salvaged.lines > 0) {
      lines = countLines(payload)
      body = salvaged
    }
  }
  if (typeof lines === 'string') return { kind: 'reject', reason: lines }
  if (lines !== header.records) return { kind: 'reject', reason: 'count_mismatch' }
  return { kind: 'batch', header, body: body ?? { good: payload, lines, bad: 0 } }
}

/** The bytes of a message's frames. */
export function messageBytes (frames: Buffer[]): number {
  let bytes = 0
  for (const frame of frames) bytes += frame.length
  return bytes
}
