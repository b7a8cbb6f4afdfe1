import { statPath } from './path-watch.js'
import type { SinkFs, SinkStat } from './sink-fs.js'
import type { Chunk } from './write-queue.js'

/**
 * One group commit of the file sink: the check that the chunks written since the last round
 * count as written. An fstat (the file was not removed while open) and, under `fsync: 'batch'`,
 * an fsync, both started after those chunks' writes returned, so they cover them; the sink
 * writes the next chunks meanwhile. A failed first attempt is kept in `statError`/`syncError`
 * for the sink to report and retry; `settled` turns true, and `onSettled` is called, once both
 * have returned. With the file's path, it also stats the path and its directory (`path`: null
 * when nothing is there; `dir`: undefined when its stat failed), so the sink sees the file renamed or its file system
 * unmounted under it.
 */
export interface CommitRound {
  readonly chunks: Chunk[]
  /** Byte offset (since start) at which the last chunk ends. */
  readonly end: number
  readonly bytes: number
  readonly sync: boolean
  settled: boolean
  readonly done: Promise<void>
  stat: SinkStat | undefined
  statError: unknown
  syncError: unknown
  /** null: nothing at the path (ENOENT, ENOTDIR); undefined: not known (not asked, or another error). */
  path: SinkStat | null | undefined
  dir: SinkStat | undefined
}

/** Starts the round for `chunks` (written to `fd`, oldest first, at least one). */
export function startCommitRound (fs: SinkFs, fd: number, chunks: Chunk[], sync: boolean, onSettled: () => void, file?: string): CommitRound {
  let bytes = 0
  for (const chunk of chunks) bytes += chunk.bytes
  const end = (chunks[chunks.length - 1] as Chunk).end
  let settle: () => void = () => {}
  const round: CommitRound = { chunks, end, bytes, sync, settled: false, done: new Promise((resolve) => { settle = resolve }), stat: undefined, statError: undefined, syncError: undefined, path: undefined, dir: undefined }
  const stat = fs.fstat(fd).then((st) => { round.stat = st }, (err: unknown) => { round.statError = err ?? new Error('fstat failed') })
  const synced = sync ? fs.fsync(fd).catch((err: unknown) => { round.syncError = err ?? new Error('fsync failed') }) : undefined
  const where = file === undefined
    ? undefined
    : statPath(fs, file).then(({ path, dir }) => {
      round.path = path
      round.dir = dir
    })
  void Promise.all([stat, synced, where]).then(() => {
    round.settled = true
    settle()
    onSettled()
  })
  return round
}

/** True when the round confirmed its chunks: both operations succeeded and the file is linked. */
export function roundSucceeded (round: CommitRound): boolean {
  return round.settled && round.statError === undefined && round.syncError === undefined && round.stat?.nlink !== 0
}
