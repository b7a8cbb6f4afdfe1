import { constants } from 'node:fs'
import { lstat, open } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_PREAMBLE_BYTES, parseSpoolPreamble, type SpoolName } from '../shared/spool.js'

/** The preamble's magic and length come before its JSON. */
const PREAMBLE_HEAD_BYTES = 8

/** What orders a file among the others: its process's start time and when its producer was made (SpoolPreamble). */
interface OrderKey {
  start: bigint | undefined
  made: bigint | undefined
}

/** Preambles read at once: as many as libuv's thread pool runs (UV_THREADPOOL_SIZE, 4 by default), twice over. */
const PARALLEL_READS = 8

const NO_KEY: OrderKey = { start: undefined, made: undefined }

/**
 * The order a scan takes spool files in: by process (pid, then start time), within a process
 * by when each producer was made (SpoolPreamble.made), then by producer id and segment. A
 * process that made several producers one after the other (a sender closed and another made,
 * Python's logging configured again) has their records in the file in the order it logged
 * them; before, files went by producer id alone, and ids are random. A producer's files keep
 * their segment order whatever their preambles say: all of them take the earliest `made` among
 * them. Files of older producers (no `made`) come first in their process, by id, as before.
 *
 * Each file's preamble is read once (at most 4 KiB, through a descriptor that follows no
 * symlink and waits on no FIFO) and remembered while the file is listed: a scan reads only the
 * files that are new since the one before. A file that cannot be read here, or whose preamble
 * is not whole yet (just created), has no key this time; the ingest reports what is wrong with it.
 */
export class SpoolOrder {
  readonly #dir: string
  readonly #keys = new Map<string, OrderKey>()

  constructor (dir: string) {
    this.#dir = dir
  }

  /** Forgets the files no longer listed. */
  forget (listed: ReadonlySet<string>): void {
    for (const name of this.#keys.keys()) if (!listed.has(name)) this.#keys.delete(name)
  }

  /** `files` in the order to take them (a new array). */
  async sort<T extends { name: string, parsed: SpoolName }> (files: T[]): Promise<T[]> {
    const keys = new Map<T, OrderKey>()
    // A few at a time: each read is a handful of round trips to libuv's thread pool (4 threads by default).
    for (let at = 0; at < files.length; at += PARALLEL_READS) {
      const some = files.slice(at, at + PARALLEL_READS)
      const read = await Promise.all(some.map(async (file) => await this.#keyOf(file.name)))
      some.forEach((file, i) => keys.set(file, read[i] as OrderKey))
    }
    // One key per producer: its process's start time as any of its files says, its earliest `made`.
    const producers = new Map<string, OrderKey>()
    for (const [file, key] of keys) {
      const known = producers.get(file.parsed.producerIdHex)
      producers.set(file.parsed.producerIdHex, known === undefined
        ? key
        : { start: known.start ?? key.start, made: earliest(known.made, key.made) })
    }
    const of = (file: T): OrderKey => producers.get(file.parsed.producerIdHex) ?? NO_KEY
    return [...files].sort((a, b) => a.parsed.pid - b.parsed.pid ||
      compare(of(a).start, of(b).start) ||
      compare(of(a).made, of(b).made) ||
      a.parsed.producerIdHex.localeCompare(b.parsed.producerIdHex) ||
      a.parsed.segment - b.parsed.segment)
  }

  async #keyOf (name: string): Promise<OrderKey> {
    const known = this.#keys.get(name)
    if (known !== undefined) return known
    const head = await readHead(join(this.#dir, name))
    if (head === undefined) return NO_KEY
    const preamble = parseSpoolPreamble(head)
    if (preamble === 'short') return NO_KEY
    const key = typeof preamble === 'object'
      ? { start: digits(preamble.preamble.start), made: digits(preamble.preamble.made) }
      : NO_KEY
    this.#keys.set(name, key)
    return key
  }
}

/** The first bytes of a regular file, as many as a preamble takes at most; undefined when it is not one or cannot be read. */
async function readHead (path: string): Promise<Buffer | undefined> {
  try {
    if (!(await lstat(path)).isFile()) return undefined
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    try {
      if (!(await handle.stat()).isFile()) return undefined
      const buf = Buffer.alloc(PREAMBLE_HEAD_BYTES + MAX_PREAMBLE_BYTES)
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0)
      return buf.subarray(0, bytesRead)
    } finally {
      await handle.close()
    }
  } catch {
    return undefined
  }
}

function digits (value: string | null | undefined): bigint | undefined {
  return typeof value === 'string' && /^\d+$/.test(value) ? BigInt(value) : undefined
}

function earliest (a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a < b ? a : b
}

/** Undefined first (files of older producers, a process start time not recorded). */
function compare (a: bigint | undefined, b: bigint | undefined): number {
  if (a === b) return 0
  if (a === undefined) return -1
  if (b === undefined) return 1
  return a < b ? -1 : 1
}
