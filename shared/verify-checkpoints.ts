import { SealKeyChain, sealMac, splitMac, type SealKey } from './seal-key.js'
import { holdFiles, releaseFiles } from './read-chunks.js'
import { scanCheckpoints, type FoundCheckpoint, type ScannedFile } from './checkpoint-scan.js'

/**
 * Stable defect codes of `verify --checkpoints`: edited, deleted, inserted (lines between two
 * checkpoints), trailing (lines after a file's closing checkpoint), truncated, missing-file,
 * hole (checkpoints missing), doubled, reordered (files), chain-start (an unlinked chain),
 * bad-checkpoint (a checkpoint line altered), no-checkpoints (a file without any),
 * producer-range (a producer's batches do not run on), resent (batches written again after a
 * writer's crash and restart), seal-missing, seal-mac, seal-index,
 * seal-key (the key seals nothing: a wrong key).
 */
export type CheckpointDefectKind = 'edited' | 'deleted' | 'inserted' | 'trailing' | 'truncated' | 'missing-file' | 'hole' | 'doubled' |
'reordered' | 'chain-start' | 'bad-checkpoint' | 'no-checkpoints' | 'producer-range' | 'resent' | 'seal-missing' | 'seal-mac' | 'seal-index' | 'seal-key'

/** One defect of a checkpointed set, located by file, checkpoint and byte range [from, to). */
export interface CheckpointDefect {
  kind: CheckpointDefectKind
  file: string
  checkpoint: number
  from: number
  to: number
  detail: string
}

/** Result of `verifyCheckpoints`. */
export interface CheckpointReport {
  ok: boolean
  files: number
  checkpoints: number
  /** Checkpoints whose MAC was checked good (with a seal key). */
  sealed: number
  defects: CheckpointDefect[]
  /** Bytes after the last checkpoint of the set (a crash's or a live file's tail): not proven, not a defect. */
  unprovenBytes: number
  unprovenFile: string | null
  /** True when the set ends at a stop checkpoint with nothing after it. */
  final: boolean
}

/** Options of `verifyCheckpoints`. */
export interface CheckpointVerifyOptions {
  /** The initial sealing key (`keygen --seal`): every checkpoint must carry a good MAC. */
  sealKey?: SealKey
  /** The paths are in the set's order by name (log-set.ts): a file the chain puts elsewhere is reordered. */
  checkOrder?: boolean
}

function at (f: FoundCheckpoint, kind: CheckpointDefectKind, detail: string, from = f.start, to = f.end): CheckpointDefect {
  return { kind, file: f.file, checkpoint: f.rec.n, from, to, detail }
}

/** The checkpoints in chain order: each linked run from its root, runs by time. */
function chainOrder (unique: FoundCheckpoint[]): FoundCheckpoint[][] {
  const byHash = new Map(unique.map((f) => [f.lineHash, f]))
  const next = new Map<string, FoundCheckpoint>()
  for (const f of unique) if (f.rec.prev !== null && !next.has(f.rec.prev)) next.set(f.rec.prev, f)
  const roots = unique.filter((f) => f.rec.prev === null || !byHash.has(f.rec.prev)).sort((a, b) => a.rec.time - b.rec.time || a.rec.n - b.rec.n)
  return roots.map((root) => {
    const run = [root]
    for (let f = next.get(root.lineHash); f !== undefined && run.length <= unique.length; f = next.get(f.lineHash)) run.push(f)
    return run
  })
}

/** The writer id with the most checkpoints in the set. */
function mainWriter (runs: FoundCheckpoint[][]): string | undefined {
  const count = new Map<string, number>()
  for (const f of runs.flat()) count.set(f.rec.writer, (count.get(f.rec.writer) ?? 0) + 1)
  return [...count].sort((a, b) => b[1] - a[1])[0]?.[0]
}

function doubledDefect (d: { first: FoundCheckpoint, last: FoundCheckpoint, in: string }): CheckpointDefect {
  return at(d.first, 'doubled', `checkpoints ${d.first.rec.n}-${d.last.rec.n} are also in ${d.in}: a copy`, d.first.segFrom, d.last.end)
}

function segmentDefect (f: FoundCheckpoint): CheckpointDefect | undefined {
  const bytes = f.start - f.segFrom
  if (f.segHash === f.rec.hash && bytes === f.rec.bytes) return undefined
  const kind = f.segRecords < f.rec.records ? 'deleted' : f.segRecords > f.rec.records ? 'inserted' : 'edited'
  return at(f, kind, `${bytes} bytes, ${f.segRecords} lines before checkpoint ${f.rec.n} do not hash to the ${f.rec.bytes} bytes, ${f.rec.records} lines it records`, f.segFrom, f.start)
}

function checkSeals (order: FoundCheckpoint[], key: SealKey, defects: CheckpointDefect[]): number {
  const keys = new SealKeyChain(key)
  const bad: CheckpointDefect[] = []
  let good = 0
  let prev: FoundCheckpoint | undefined
  for (const f of order) {
    const parts = splitMac(f.text)
    const i = f.rec.seal
    if (parts === undefined || typeof i !== 'number' || !Number.isSafeInteger(i) || i < key.i) {
      bad.push(at(f, 'seal-missing', `checkpoint ${f.rec.n} carries no seal`))
    } else if (sealMac(keys.at(i), parts.body) !== parts.mac) {
      bad.push(at(f, 'seal-mac', `checkpoint ${f.rec.n}'s MAC is not that of seal key ${i}: forged or altered`))
    } else {
      good++
      if (prev?.rec.seal !== undefined && f.rec.prev === prev.lineHash && i !== prev.rec.seal + 1) {
        bad.push(at(f, 'seal-index', `checkpoint ${f.rec.n} is sealed with key ${i}, after key ${prev.rec.seal}: sealed later than written (a forgery with a later key) or a checkpoint is missing`))
      }
    }
    prev = f
  }
  if (good === 0 && order.length > 0) defects.push(at(order[0] as FoundCheckpoint, 'seal-key', 'no checkpoint is sealed by this key: a wrong key'))
  else defects.push(...bad)
  return good
}

/**
 * Checks the writer's checkpoint lines over files given in any order (.gz gunzipped): the bytes
 * between checkpoints hash to what the later one recorded, the chain has no hole, producers'
 * batch ranges run on, seals (with a key) are good, and the set ends at a stop checkpoint or
 * the bytes after the last one are reported as unproven (a crash's tail is not a defect),
 * unless that one is a stop checkpoint: bytes after it are `trailing`.
 */
export async function verifyCheckpoints (paths: string[], opts: CheckpointVerifyOptions = {}): Promise<CheckpointReport> {
  const scanned: ScannedFile[] = []
  // Every file opened before any is read, as plain verify does (a set still being rotated).
  const held = holdFiles(paths)
  try {
    for (const file of held) scanned.push(await scanCheckpoints(file))
  } finally {
    releaseFiles(held)
  }
  const defects: CheckpointDefect[] = []
  const unique = new Map<string, FoundCheckpoint>()
  for (const s of scanned) {
    // An empty file holds nothing to prove (logrotate's `create` made it, and the writer has not
    // written to it yet); a rotated file emptied loses its checkpoints, which the chain finds.
    if (s.found.length === 0 && s.length > 0) defects.push({ kind: 'no-checkpoints', file: s.file, checkpoint: -1, from: 0, to: s.length, detail: 'no checkpoint line in this file' })
    for (const b of s.broken) defects.push({ kind: 'bad-checkpoint', file: s.file, checkpoint: -1, from: b.start, to: b.end, detail: 'a checkpoint line that does not parse: altered' })
    let doubled: { first: FoundCheckpoint, last: FoundCheckpoint, in: string } | undefined
    for (const f of s.found) {
      const seen = unique.get(f.lineHash)
      if (seen === undefined) unique.set(f.lineHash, f)
      else if (doubled?.in === seen.file) doubled.last = f
      else {
        if (doubled !== undefined) defects.push(doubledDefect(doubled))
        doubled = { first: f, last: f, in: seen.file }
      }
      const seg = segmentDefect(f)
      if (seg !== undefined) defects.push(seg)
    }
    if (doubled !== undefined) defects.push(doubledDefect(doubled))
  }
  const all = chainOrder([...unique.values()])
  // The set's chain is the writer id with the most checkpoints; another chain's runs are named
  // where they are and left out of the set's order. Before, runs were linked by time alone: a
  // file of another writer mixed in, older than the set, had the set's own first file named as
  // a second chain's start, and itself not at all.
  const main = mainWriter(all)
  const runs = all.filter((run) => {
    const root = run[0] as FoundCheckpoint
    if (root.rec.writer === main) return true
    defects.push(at(root, 'chain-start', `checkpoints ${root.rec.n}-${(run.at(-1) as FoundCheckpoint).rec.n} are of another chain (writer ${root.rec.writer}) than the rest of the set (writer ${main}), not linked to it: a file of another writer mixed in, or a writer that did not continue the chain`, root.segFrom, (run.at(-1) as FoundCheckpoint).end))
    return false
  })
  const order = runs.flat()
  const lastOf = new Map<string, FoundCheckpoint>()
  for (const s of scanned) if (s.found.length > 0) lastOf.set(s.file, s.found[s.found.length - 1] as FoundCheckpoint)
  const fileOrder = [...new Set(order.map((f) => f.file))]
  const lastFile = fileOrder.at(-1)
  const truncated = new Set<string>()
  for (const s of scanned) {
    const last = lastOf.get(s.file)
    // A file that ends in another chain's checkpoints was named with that chain.
    if (last === undefined || last.rec.writer !== main) continue
    // The set's last file may end in a live writer's (or a crash's) unproven tail, but not after
    // a stop: a writer that starts again writes its start checkpoint before any record.
    if (s.file === lastFile && last.rec.at !== 'stop') continue
    if (last.rec.at !== 'rotate-out' && last.rec.at !== 'stop') {
      truncated.add(s.file)
      defects.push(at(last, 'truncated', `the file ends ${s.length - last.end} bytes after checkpoint ${last.rec.n}, not at a closing checkpoint: cut short`, last.end, s.length))
    } else if (last.end < s.length) {
      defects.push(at(last, 'trailing', `${s.length - last.end} bytes after the file's closing checkpoint ${last.rec.n}: lines added`, last.end, s.length))
    }
  }
  for (let r = 1; r < runs.length; r++) {
    const root = (runs[r] as FoundCheckpoint[])[0] as FoundCheckpoint
    const before = (runs[r - 1] as FoundCheckpoint[]).at(-1) as FoundCheckpoint
    if (root.rec.prev === null) defects.push(at(root, 'chain-start', `a new chain (writer ${root.rec.writer}) starts here: what came before it is not linked`))
    else if (truncated.has(before.file)) continue
    else if (before.rec.at === 'rotate-out' && root.rec.at === 'rotate-in') defects.push(at(root, 'missing-file', `checkpoints ${before.rec.n + 1}-${root.rec.n - 1} are missing: a rotated file between ${before.file} and this one is gone`))
    else defects.push(at(root, 'hole', `the checkpoint before ${root.rec.n} is missing (after ${before.rec.n} in ${before.file}): a range is gone or a checkpoint altered`))
  }
  if (opts.checkOrder === true) {
    // A file is out of place when its rank in the chain is not its rank by name.
    const byName = fileOrder.map((file) => paths.indexOf(file)).sort((a, b) => a - b)
    fileOrder.forEach((file, rank) => {
      if (paths.indexOf(file) !== byName[rank]) {
        defects.push({ kind: 'reordered', file, checkpoint: lastOf.get(file)?.rec.n ?? -1, from: 0, to: 0, detail: `the chain puts this file at place ${rank + 1} of the set, its name at ${byName.indexOf(paths.indexOf(file)) + 1}: renamed` })
      }
    })
  }
  const ranges = new Map<string, { to: number, k: number }>()
  // The latest `start` that follows no `stop`: a restart after a crash.
  let crash: { f: FoundCheckpoint, k: number } | undefined
  for (let k = 0; k < order.length; k++) {
    const f = order[k] as FoundCheckpoint
    // After a crash's tail, a hole or a new chain, the batches in between are not attributed.
    if ((f.rec.at === 'start' && f.rec.bytes > 0) || (k > 0 && f.rec.prev !== (order[k - 1] as FoundCheckpoint).lineHash)) ranges.clear()
    if (f.rec.at === 'start' && k > 0 && (order[k - 1] as FoundCheckpoint).rec.at !== 'stop') crash = { f, k }
    for (const [producer, r] of Object.entries(f.rec.producers ?? {})) {
      const last = ranges.get(producer)
      if (last !== undefined && r.from <= last.to && crash !== undefined && crash.k > last.k) {
        // The writer's saved state lags its file: after a crash, batches written without a receipt
        // are resent and written again (docs/spool.md). Before, reported as a range that does not follow.
        defects.push(at(f, 'resent', `producer ${producer}'s batches ${r.from}-${Math.min(r.to, last.to)} were written before checkpoint ${crash.f.rec.n}, a restart after a crash (no stop checkpoint before it), and again here: resent for want of a receipt and written twice, not altered`, f.segFrom, f.start))
      } else if (last !== undefined && r.from !== last.to + 1) {
        defects.push(at(f, 'producer-range', `producer ${producer}'s batches ${r.from}-${r.to} do not follow ${last.to}`, f.segFrom, f.start))
      }
      ranges.set(producer, { to: r.to, k })
    }
  }
  const sealed = opts.sealKey === undefined ? 0 : checkSeals(all.flat(), opts.sealKey, defects)
  const tail = order.at(-1)
  const tailFile = scanned.find((s) => s.file === tail?.file)
  const unprovenBytes = tail === undefined ? scanned.reduce((a, s) => a + s.length, 0) : tail.rec.at === 'stop' ? 0 : (tailFile as ScannedFile).length - tail.end
  return {
    ok: defects.length === 0,
    files: paths.length,
    checkpoints: scanned.reduce((a, s) => a + s.found.length, 0),
    sealed,
    defects,
    unprovenBytes,
    unprovenFile: unprovenBytes > 0 ? (tail?.file ?? null) : null,
    final: tail?.rec.at === 'stop' && unprovenBytes === 0
  }
}

/** A short text form of the report. */
export function formatCheckpointReport (r: CheckpointReport): string {
  // With no checkpoint at all there is no "after the last checkpoint": the file was most likely written without --checkpoints.
  const end = r.checkpoints === 0 ? 'no checkpoint line in any file: written without --checkpoints?' : r.final ? 'ends at a stop checkpoint' : `not ended by a stop checkpoint; ${r.unprovenBytes} bytes after the last checkpoint${r.unprovenFile === null ? '' : ` in ${r.unprovenFile}`} unproven (a live file or a crash, not a defect)`
  const sealed = r.sealed > 0 ? `, ${r.sealed} sealed` : ''
  return [`${r.ok ? 'ok' : 'DEFECTS'}: ${r.files} files, ${r.checkpoints} checkpoints${sealed}, ${end}`,
    ...r.defects.map((d) => `  ${d.kind}: ${d.file} checkpoint ${d.checkpoint} bytes ${d.from}-${d.to}: ${d.detail}`)].join('\n')
}
