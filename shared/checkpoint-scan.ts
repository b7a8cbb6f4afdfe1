import { readFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { algOf, chainHash, isCheckpointLine, newHasher, type CheckpointRecord } from './checkpoint-format.js'
import { FileError } from './errors.js'

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

/** A file's bytes, gunzipped when its name ends in .gz. */
export async function fileContent (path: string): Promise<Buffer> {
  try {
    const raw = await readFile(path)
    return path.endsWith('.gz') ? gunzipSync(raw) : raw
  } catch (err) {
    throw new FileError(path, { cause: err, op: 'read' })
  }
}

function lines (buf: Buffer): number {
  let n = 0
  let i = -1
  while ((i = buf.indexOf(10, i + 1)) !== -1) n++
  return n
}

/** Finds the checkpoint lines of one file and hashes the bytes between them. */
export function scanCheckpoints (file: string, buf: Buffer): ScannedFile {
  const found: FoundCheckpoint[] = []
  const broken: ScannedFile['broken'] = []
  let segFrom = 0
  let pos = 0
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos)
    const end = nl === -1 ? buf.length : nl + 1
    const line = buf.subarray(pos, end)
    if (nl !== -1 && isCheckpointLine(line)) {
      let rec: CheckpointRecord | undefined
      try { rec = JSON.parse(line.toString()) as CheckpointRecord } catch { /* below */ }
      const alg = rec === undefined ? undefined : algOf(rec)
      if (rec?.logfunnel === 'checkpoint' && Number.isSafeInteger(rec.n) && typeof rec.hash === 'string' && alg !== undefined) {
        const seg = buf.subarray(segFrom, pos)
        const segHash = newHasher(alg)
        segHash.update(seg)
        found.push({ file, rec, text: line.toString(), lineHash: chainHash(line, alg), start: pos, end, segFrom, segHash: segHash.digest(), segRecords: lines(seg) })
        segFrom = end
      } else {
        broken.push({ start: pos, end })
      }
    }
    pos = end
  }
  return { file, found, broken, length: buf.length }
}
