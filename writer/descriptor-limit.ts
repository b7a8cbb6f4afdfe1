import { openSync, readSync } from 'node:fs'

/**
 * Descriptors the writer keeps free of connections, for its own files: the log file and its
 * rotation (old and new file, the gzip's two), the state file's temp file, spool files and their
 * directory scans, lock sockets, the metrics server, libzmq's and Node's own. 64 leaves room
 * for all of them at once with a margin (the writer uses about 30 when idle).
 */
export const DESCRIPTORS_FOR_FILES = 64
/** The cap never goes below this: a writer with a tiny limit still takes some producers. */
const MIN_CONNECTIONS = 8

/** `/proc/self/limits`, kept open: read again at offset 0 it is current, and needs no new descriptor. */
let limitsFd: number | undefined
const limitsText = Buffer.alloc(4096)

/**
 * The process's soft limit on open descriptors (RLIMIT_NOFILE), from `/proc/self/limits`
 * (Node has no getrlimit); undefined where that cannot be read (not Linux) or it is unlimited.
 * Read at each call: `prlimit` can change it while the writer runs. The file is opened once and
 * kept open (call this at start): the cap is asked for when connections fill the descriptor
 * table, when an open would fail with EMFILE. Before, it was opened at each call, and a CURVE
 * writer whose table libzmq had filled read no limit, so it took the cap as unlimited.
 */
export function openFilesLimit (): number | undefined {
  try {
    limitsFd ??= openSync('/proc/self/limits', 'r')
    const text = limitsText.toString('latin1', 0, readSync(limitsFd, limitsText, 0, limitsText.length, 0))
    const line = text.split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
    return soft === undefined || !/^\d+$/.test(soft) ? undefined : Number(soft)
  } catch {
    return undefined
  }
}

/**
 * Data connections the writer accepts at most under descriptor limit `limit`: half of what is
 * left past DESCRIPTORS_FOR_FILES, since each producer also holds a receipt connection (libzmq's,
 * which cannot be capped). Infinity when the limit is unknown.
 */
export function dataConnectionCap (limit = openFilesLimit()): number {
  if (limit === undefined) return Infinity
  return Math.max(MIN_CONNECTIONS, Math.floor((limit - DESCRIPTORS_FOR_FILES) / 2))
}
