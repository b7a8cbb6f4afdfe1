import { readFileSync, renameSync, writeFileSync } from 'node:fs'

/**
 * Entries of producers not seen for this long are not saved again: a producer id lives as long
 * as its process, and a week covers any restart of the writer that a resend could span.
 */
const STATE_TTL_MS = 7 * 24 * 3600 * 1000

/**
 * Per producer (hex id): the next batch sequence the writer expects, when it was last seen,
 * and `floor`: the `next` a previous writer saved (batches below it are in the file already).
 */
export type ProducerStates = Map<string, { next: number, seen: number, floor: number }>

/**
 * Loads the state a previous writer saved. A missing or unreadable file yields an empty map
 * (and, for unreadable, the reason): the writer then accepts resent batches as new, so a
 * restart can write duplicates but never loses a batch.
 */
export function loadProducerStates (path: string): { states: ProducerStates, problem?: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? { states: new Map() } : { states: new Map(), problem: `${code ?? 'error'} reading ${path}` }
  }
  try {
    const raw = JSON.parse(text) as { producers?: Record<string, { next?: unknown, seen?: unknown }> }
    const states: ProducerStates = new Map()
    for (const [id, s] of Object.entries(raw.producers ?? {})) {
      if (/^[0-9a-f]{32}$/.test(id) && Number.isSafeInteger(s.next) && Number.isSafeInteger(s.seen)) {
        states.set(id, { next: s.next as number, seen: s.seen as number, floor: s.next as number })
      }
    }
    return { states }
  } catch {
    return { states: new Map(), problem: `${path} is not valid JSON` }
  }
}

/** Saves the state atomically (temp file, then rename). Only pass what is already fsynced. */
export function saveProducerStates (path: string, states: ProducerStates, now = Date.now()): void {
  const producers: Record<string, { next: number, seen: number }> = {}
  for (const [id, s] of states) {
    if (now - s.seen < STATE_TTL_MS) producers[id] = { next: s.next, seen: s.seen }
  }
  const tmp = `${path}.tmp`
  writeFileSync(tmp, JSON.stringify({ version: 1, savedAt: now, producers }) + '\n', { mode: 0o600 })
  renameSync(tmp, path)
}
