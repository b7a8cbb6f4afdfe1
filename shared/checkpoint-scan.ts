import { algOf, chainHash, CHECKPOINT_MARK_TEXT, newHasher, preferredAlg, type CheckpointAlg, type CheckpointRecord } from './checkpoint-format.js'
import { MAX_FRAME_BYTES } from './options.js'
import { readChunks, type HeldFile } from './read-chunks.js'

/** A checkpoint line found in a file, with the bytes it vouches for as they are now. */
export interface FoundCheckpoint {
  file: string
  rec: CheckpointRecord
  /** The line as written (with newline). */
  text: string
  /** Hash of the line by its own `alg`: the next checkpoint's `prev`. */
  lineHash: string
  /** The line's byte range in the file. */
  start: number
  end: number
  /** The bytes before it, since the previous checkpoint in the same file (or the file's start). */
  segFrom: number
  /** Those bytes hashed by the line's `alg`. */
  segHash: string
  segRecords: number
}

/** A file's checkpoints, its lines that look like checkpoints but do not parse, its length. */
export interface ScannedFile {
  file: string
  found: FoundCheckpoint[]
  broken: Array<{ start: number, end: number }>
  length: number
}

/**
 * A checkpoint line is short (its `producers` map is bounded by the writer's 16,384 producers):
 * a longer line is read past as segment bytes without being kept.
 */
const MAX_CHECKPOINT_LINE_BYTES = MAX_FRAME_BYTES
const MARK = Buffer.from(CHECKPOINT_MARK_TEXT)
const NEWLINE = 0x0a

function lines (buf: Buffer): number {
  let n = 0
  let i = -1
  while ((i = buf.indexOf(NEWLINE, i + 1)) !== -1) n++
  return n
}

/** Hash (by `alg`) of the bytes [from, to) of a file's content, read again. */
async function hashRange (path: string | HeldFile, from: number, to: number, alg: CheckpointAlg): Promise<string> {
  const h = newHasher(alg)
  let left = to - from
  if (left > 0) {
    for await (const chunk of readChunks(path, from)) {
      h.update(chunk.length > left ? chunk.subarray(0, left) : chunk)
      left -= chunk.length
      if (left <= 0) break
    }
  }
  return h.digest()
}

/**
 * Finds the checkpoint lines of one file (gunzipped when its name ends in `.gz`) and hashes the
 * bytes between them, streaming: memory is bounded by the longest line kept (a checkpoint line,
 * at most MAX_CHECKPOINT_LINE_BYTES), whatever the file's size. Each segment is hashed as it is
 * read by the previous checkpoint's `alg` (the preferred one at the file's start); a checkpoint
 * of another `alg` (a sha256 chain continued with BLAKE3) has its segment read again.
 * Rejects with LOGFUNNEL_ERR_FILE when the file cannot be read.
 */
export async function scanCheckpoints (source: string | HeldFile): Promise<ScannedFile> {
  const file = typeof source === 'string' ? source : source.path
  const found: FoundCheckpoint[] = []
  const broken: ScannedFile['broken'] = []
  let alg = preferredAlg()
  let seg = newHasher(alg)
  let segFrom = 0
  let segRecords = 0
  let carry: Buffer | undefined
  /** Offset in the file of the first byte of `carry`, or of the next chunk. */
  let at = 0
  /** Inside a line too long to be a checkpoint: read on to its newline as segment bytes. */
  let skipping = false
  const feed = (bytes: Buffer): void => {
    seg.update(bytes)
    segRecords += lines(bytes)
  }
  const checkpoint = async (line: Buffer, start: number): Promise<void> => {
    let rec: CheckpointRecord | undefined
    try { rec = JSON.parse(line.toString()) as CheckpointRecord } catch { /* below */ }
    const lineAlg = rec === undefined ? undefined : algOf(rec)
    if (rec?.logfunnel !== 'checkpoint' || !Number.isSafeInteger(rec.n) || typeof rec.hash !== 'string' || lineAlg === undefined) {
      broken.push({ start, end: start + line.length })
      feed(line)
      return
    }
    const segHash = lineAlg === alg ? seg.digest() : await hashRange(source, segFrom, start, lineAlg)
    found.push({ file, rec, text: line.toString(), lineHash: chainHash(line, lineAlg), start, end: start + line.length, segFrom, segHash, segRecords })
    alg = lineAlg
    seg = newHasher(alg)
    segFrom = start + line.length
    segRecords = 0
  }
  for await (const chunk of readChunks(source)) {
    let buf = carry === undefined ? chunk : Buffer.concat([carry, chunk])
    carry = undefined
    if (skipping) {
      const nl = buf.indexOf(NEWLINE)
      if (nl === -1) {
        feed(buf)
        at += buf.length
        continue
      }
      feed(buf.subarray(0, nl + 1))
      at += nl + 1
      buf = buf.subarray(nl + 1)
      skipping = false
    }
    const lastNl = buf.lastIndexOf(NEWLINE)
    const whole = buf.subarray(0, lastNl + 1)
    let pos = 0
    for (let m = whole.indexOf(MARK); m !== -1; m = whole.indexOf(MARK, pos)) {
      const lineStart = whole.lastIndexOf(NEWLINE, m) + 1
      const lineEnd = whole.indexOf(NEWLINE, m) + 1
      feed(whole.subarray(pos, lineStart))
      await checkpoint(whole.subarray(lineStart, lineEnd), at + lineStart)
      pos = lineEnd
    }
    feed(whole.subarray(pos))
    at += whole.length
    const rest = buf.subarray(lastNl + 1)
    if (rest.length > MAX_CHECKPOINT_LINE_BYTES) {
      feed(rest)
      at += rest.length
      skipping = true
    } else if (rest.length > 0) {
      carry = Buffer.from(rest)
    }
  }
  // A last line without its newline is never a checkpoint (the writer writes whole lines).
  return { file, found, broken, length: at + (carry?.length ?? 0) }
}
