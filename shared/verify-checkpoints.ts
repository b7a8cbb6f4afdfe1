import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { CHECKPOINT_HASH, chainHash, isCheckpointLine, type CheckpointRecord } from './checkpoint-format.js'
import { FileError } from './errors.js'

/** One defect of a checkpointed set, located by file, checkpoint and byte range. */
export interface CheckpointDefect {
  kind: 'hash-mismatch' | 'chain-hole' | 'chain-start' | 'doubled'
  file: string
  checkpoint: number
  /** Byte range in the file [from, to). */
  from: number
  to: number
  detail: string
}

/** Result of `verifyCheckpoints`. */
export interface CheckpointReport {
  ok: boolean
  files: number
  checkpoints: number
  defects: CheckpointDefect[]
  /** Bytes after the last checkpoint (a crash's tail): not proven, not a defect. */
  unprovenBytes: number
  /** True when the last checkpoint is a stop checkpoint. */
  final: boolean
}

interface Found { file: string, rec: CheckpointRecord, lineHash: string, start: number, end: number, segHash: string, segBytes: number, segFrom: number }

async function content (path: string): Promise<Buffer> {
  try {
    const raw = await readFile(path)
    return path.endsWith('.gz') ? gunzipSync(raw) : raw
  } catch (err) {
    throw new FileError(path, { cause: err, op: 'read' })
  }
}

function scan (file: string, buf: Buffer): { found: Found[], tail: number } {
  const found: Found[] = []
  let segFrom = 0
  let pos = 0
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos)
    const end = nl === -1 ? buf.length : nl + 1
    const line = buf.subarray(pos, end)
    if (nl !== -1 && isCheckpointLine(line)) {
      try {
        const rec = JSON.parse(line.toString()) as CheckpointRecord
        if (rec.logfunnel === 'checkpoint') {
          const seg = buf.subarray(segFrom, pos)
          found.push({ file, rec, lineHash: chainHash(line), start: pos, end, segHash: createHash(CHECKPOINT_HASH).update(seg).digest('hex'), segBytes: seg.length, segFrom })
          segFrom = end
        }
      } catch { /* an edited checkpoint line is caught by the chain */ }
    }
    pos = end
  }
  return { found, tail: buf.length - segFrom }
}

/**
 * Checks the writer's checkpoint lines over files given in any order (.gz gunzipped): the
 * bytes between two checkpoints hash to what the later one recorded, each checkpoint names the
 * previous one's hash (no hole: no file or range missing, none doubled), the set ends at a stop
 * checkpoint, or the bytes after the last checkpoint are reported as unproven.
 */
export async function verifyCheckpoints (paths: string[]): Promise<CheckpointReport> {
  const all: Found[] = []
  const tails = new Map<string, number>()
  for (const path of paths) {
    const { found, tail } = scan(path, await content(path))
    all.push(...found)
    tails.set(path, tail)
  }
  const defects: CheckpointDefect[] = []
  const byHash = new Map<string, Found>()
  for (const f of all) {
    if (byHash.has(f.lineHash)) defects.push({ kind: 'doubled', file: f.file, checkpoint: f.rec.n, from: f.start, to: f.end, detail: `checkpoint ${f.rec.n} also in ${byHash.get(f.lineHash)!.file}` })
    else byHash.set(f.lineHash, f)
  }
  for (const f of all) {
    if (f.segHash !== f.rec.hash || f.segBytes !== f.rec.bytes) {
      defects.push({ kind: 'hash-mismatch', file: f.file, checkpoint: f.rec.n, from: f.segFrom, to: f.start, detail: `${f.segBytes} bytes before checkpoint ${f.rec.n} do not hash to the ${f.rec.bytes} recorded: a line edited, inserted or removed` })
    }
  }
  const referenced = new Set(all.map((f) => f.rec.prev))
  const ordered = [...byHash.values()].sort((a, b) => a.rec.time - b.rec.time || a.rec.n - b.rec.n)
  for (const f of ordered) {
    if (f.rec.prev === null) {
      if (f !== ordered[0]) defects.push({ kind: 'chain-start', file: f.file, checkpoint: f.rec.n, from: f.start, to: f.end, detail: 'a new chain starts here' })
    } else if (!byHash.has(f.rec.prev)) {
      defects.push({ kind: 'chain-hole', file: f.file, checkpoint: f.rec.n, from: f.start, to: f.end, detail: `the checkpoint before ${f.rec.n} is missing: a file or range before this one is gone or its checkpoint edited` })
    }
  }
  const heads = ordered.filter((f) => !referenced.has(f.lineHash))
  const last = heads.length > 0 ? heads[heads.length - 1] : undefined
  const final = last?.rec.at === 'stop'
  const unprovenBytes = last === undefined ? [...tails.values()].reduce((a, b) => a + b, 0) : (tails.get(last.file) ?? 0)
  return { ok: defects.length === 0, files: paths.length, checkpoints: all.length, defects, unprovenBytes, final }
}

/** A short text form of the report. */
export function formatCheckpointReport (r: CheckpointReport): string {
  const head = `${r.ok ? 'ok' : 'DEFECTS'}: ${r.files} files, ${r.checkpoints} checkpoints, ${r.final ? 'ends at a stop checkpoint' : `not ended by a stop checkpoint; ${r.unprovenBytes} bytes after the last checkpoint unproven`}`
  return [head, ...r.defects.map((d) => `  ${d.kind}: ${d.file} checkpoint ${d.checkpoint} bytes ${d.from}-${d.to}: ${d.detail}`)].join('\n')
}
