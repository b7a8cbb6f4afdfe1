import { countLines } from './checkpointer.js'
import { roundSucceeded, type CommitRound } from './commit-round.js'
import type { Chunk } from './write-queue.js'

/**
 * What the file sink gives up when `end()`'s deadline passes with the file still failing: the
 * chunk being written, the chunks written since the round in flight began, and that round's
 * chunks unless it confirmed them. What of those reached the file is cut off its end, so the
 * file ends on the last batch that counts as written. (The chunks still queued, never written,
 * are the queue's to count.)
 */
export interface GiveUp {
  /** Lines given up. */
  records: number
  /** Bytes to cut off the end of the file. */
  cutBytes: number
  /** The round in flight, when it confirmed its chunks: they count as written after all. */
  confirmed: CommitRound | undefined
}

/** `round`: the round in flight, undefined when none is (or the file is not open). */
export function planGiveUp (chunk: Chunk | undefined, unconfirmed: Chunk[], round: CommitRound | undefined): GiveUp {
  const records = linesOf(chunk === undefined ? unconfirmed : [chunk, ...unconfirmed])
  let cutBytes = chunk?.done ?? 0
  for (const c of unconfirmed) cutBytes += c.bytes
  if (round === undefined || roundSucceeded(round)) return { records, cutBytes, confirmed: round }
  return { records: records + linesOf(round.chunks), cutBytes: cutBytes + round.bytes, confirmed: undefined }
}

function linesOf (chunks: Chunk[]): number {
  let n = 0
  for (const chunk of chunks) for (const buf of chunk.bufs) n += countLines(buf)
  return n
}
