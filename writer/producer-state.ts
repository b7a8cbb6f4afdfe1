import { lstatSync, readFileSync, renameSync } from 'node:fs'
import { replaceFileSync } from './side-files.js'

/**
 * A producer not heard from for this long, with everything of it receipted, is forgotten
 * (memory and state file). A producer id lives as long as its process, and a producer with
 * records to resend tries again every `receiptTimeoutMs`: a day of silence means it is gone.
 * Should it come back, its batches' `base` says where it stands.
 */
export const PRODUCER_STATE_TTL_MS = 24 * 3600 * 1000
/**
 * At most this many producers are kept (the longest silent, fully receipted ones go first), so
 * memory and each save stay bounded whatever the history: a pool that starts a new process
 * every second for weeks makes a new id every second (issue 13, point 7). 16,384 entries save
 * as about 1.2 MB of JSON.
 */
export const MAX_PRODUCER_STATES = 16_384
/** `seen` is refreshed (and the entry moved to the back of the map) at most this often. */
const SEEN_RESOLUTION_MS = 1000

/** One producer's state. */
export interface ProducerState {
  /** The next batch sequence expected. */
  next: number
  /** When a batch of it was last handled (ms since the epoch). */
  seen: number
  /** The `next` a previous writer saved: batches below it are in the file already. */
  floor: number
  /** Highest sequence this writer has written for it (-1: none yet). */
  written: number
}

/**
 * Per producer (hex id), in order of `seen` (roughly: refreshed at most every second), so the
 * longest silent come first.
 */
export type ProducerStates = Map<string, ProducerState>

/** Marks the producer as heard now, keeping the map ordered by `seen`. */
export function touch (states: ProducerStates, key: string, state: ProducerState, now: number): void {
  if (now - state.seen < SEEN_RESOLUTION_MS) return
  state.seen = now
  states.delete(key)
  states.set(key, state)
}

/**
 * Drops producers silent for `PRODUCER_STATE_TTL_MS`, and beyond `MAX_PRODUCER_STATES` the
 * longest silent, but only those `settled` says are fully receipted. Calls `forget` for each.
 * Costs the number of entries dropped, plus the unsettled ones passed over.
 */
export function pruneProducerStates (states: ProducerStates, now: number, settled: (key: string, s: ProducerState) => boolean, forget: (key: string) => void): number {
  let dropped = 0
  for (const [key, s] of states) {
    const expired = now - s.seen >= PRODUCER_STATE_TTL_MS
    if (!expired && states.size <= MAX_PRODUCER_STATES) break
    if (!settled(key, s)) continue
    states.delete(key)
    forget(key)
    dropped++
  }
  return dropped
}

/**
 * Moves a state file of the old default name (`<file>.state.json`, matched by `app.log.*`
 * globs) to the new default name, when the new one does not exist yet. Returns the old path
 * when it moved it. A symlink at the old name is not followed: it is left alone.
 */
export function migrateLegacyState (legacy: string, stateFile: string): string | undefined {
  const exists = (path: string): boolean => {
    try {
      lstatSync(path)
      return true
    } catch {
      return false
    }
  }
  try {
    if (!lstatSync(legacy).isFile() || exists(stateFile)) return undefined
  } catch {
    return undefined
  }
  renameSync(legacy, stateFile)
  return legacy
}

/**
 * Loads the state a previous writer saved, most recently seen last, without the expired
 * entries. A missing or unreadable file yields an empty map (and, for unreadable, the reason):
 * the writer then accepts resent batches as new, so a restart can write duplicates but never
 * loses a batch.
 */
export function loadProducerStates (path: string, now = Date.now()): { states: ProducerStates, problem?: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? { states: new Map() } : { states: new Map(), problem: `${code ?? 'error'} reading ${path}` }
  }
  try {
    const raw = JSON.parse(text) as { producers?: Record<string, { next?: unknown, seen?: unknown }> }
    const entries: Array<[string, ProducerState]> = []
    for (const [id, s] of Object.entries(raw.producers ?? {})) {
      if (/^[0-9a-f]{32}$/.test(id) && Number.isSafeInteger(s.next) && Number.isSafeInteger(s.seen) && now - (s.seen as number) < PRODUCER_STATE_TTL_MS) {
        entries.push([id, { next: s.next as number, seen: s.seen as number, floor: s.next as number, written: -1 }])
      }
    }
    entries.sort((a, b) => a[1].seen - b[1].seen)
    return { states: new Map(entries.slice(-MAX_PRODUCER_STATES)) }
  } catch {
    return { states: new Map(), problem: `${path} is not valid JSON` }
  }
}

/**
 * Saves the state atomically (a fresh temp file, then rename; never through a symlink) with
 * `mode`. Only pass what is already fsynced. Its size is bounded by MAX_PRODUCER_STATES.
 */
export function saveProducerStates (path: string, states: ProducerStates, mode: number, now = Date.now()): void {
  // Written out by hand: ids are hex and the fields integers, and a 16,384-key object for
  // JSON.stringify costs several times more.
  const producers: string[] = []
  for (const [id, s] of states) producers.push(`"${id}":{"next":${s.next},"seen":${s.seen}}`)
  replaceFileSync(path, `{"version":1,"savedAt":${now},"producers":{${producers.join(',')}}}\n`, mode)
}
