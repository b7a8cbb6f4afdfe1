import { randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { algOf, chainHash, isCheckpointLine, newHasher, preferredAlg, type CheckpointAlg, type CheckpointRecord, type Hasher, type ProducerRange } from '../../shared/checkpoint-format.js'
import { replaceFileSync, sideFileMode } from '../side-files.js'
import { SealKeeper } from './seal-keeper.js'

/** How far back a restart looks for the last checkpoint before it starts a new chain. */
const RESUME_SCAN_BYTES = 64 * 1024 * 1024
const MARK = Buffer.from('"logfunnel":"checkpoint"')

/**
 * The side file holding a copy of the last checkpoint line: `.<file name>.logfunnel-chain` beside
 * the log (a dot file, so globs over the log's rotated files never pick it up). A restart whose
 * log file has no checkpoint (moved away by logrotate, or removed, while the writer was down)
 * continues the chain from it, so a set verifies across the move.
 */
export function chainFileFor (file: string): string {
  return join(dirname(file), `.${basename(file)}.logfunnel-chain`)
}

/** The last whole checkpoint line in `buf` (a file's tail; `whole`: from the file's start) and the bytes after it. */
function lastCheckpoint (buf: Buffer, whole: boolean): { rec: CheckpointRecord, line: Buffer, rest: Buffer } | undefined {
  for (let at = buf.lastIndexOf(MARK); at !== -1; at = at === 0 ? -1 : buf.lastIndexOf(MARK, at - 1)) {
    const start = buf.lastIndexOf(10, at) + 1
    const nl = buf.indexOf(10, at)
    if (start === 0 && !whole) return undefined
    if (nl === -1) continue
    const line = buf.subarray(start, nl + 1)
    if (!isCheckpointLine(line)) continue
    try {
      const rec = JSON.parse(line.toString()) as CheckpointRecord
      if (rec.logfunnel === 'checkpoint' && typeof rec.writer === 'string' && Number.isSafeInteger(rec.n)) return { rec, line, rest: buf.subarray(nl + 1) }
    } catch { /* a record quoting the mark: look further back */ }
  }
  return undefined
}

/** Lines in a buffer of whole lines. */
export function countLines (buf: Buffer): number {
  let n = 0
  let i = -1
  while ((i = buf.indexOf(10, i + 1)) !== -1) n++
  return n
}

/** A batch queued for the file: its place in the byte stream and its sequence. */
interface Batch { end: number, producer: string | undefined, seq: number, records: number }

/**
 * Hashes the bytes as they are handed to the file (per chunk, never per record) and makes the
 * checkpoint lines that vouch for them: each carries the hash of the bytes since the previous
 * one, the hash of the previous line (a chain across rotations and restarts) and, per
 * producer, the batch sequences written in between; sealed with an evolving key if given one.
 */
export class Checkpointer {
  writer = randomBytes(8).toString('hex')
  readonly #alg: CheckpointAlg
  #hash: Hasher
  #bytes = 0
  #records = 0
  #n = 0
  #prev: string | null = null
  #producers: Record<string, ProducerRange> = {}
  #batches: Batch[] = []
  #head = 0
  #sealed: number | undefined
  readonly #keeper: SealKeeper | undefined
  readonly #file: string
  readonly #chainFile: string
  #lastLine: Buffer | undefined
  readonly #every: { intervalMs: number, sizeBytes: number }
  #dueAt = Infinity

  /** `intervalMs` and `sizeBytes` (0: never) set when `due()` asks for the next checkpoint; `alg` (tests: a writer of an older version) the hash. */
  constructor (file: string, opts: { sealKeyFile?: string | undefined, intervalMs?: number, sizeBytes?: number, alg?: CheckpointAlg } = {}) {
    this.#alg = opts.alg ?? preferredAlg()
    this.#hash = newHasher(this.#alg)
    this.#file = file
    this.#chainFile = chainFileFor(file)
    this.#keeper = opts.sealKeyFile === undefined ? undefined : new SealKeeper(opts.sealKeyFile)
    this.#every = { intervalMs: opts.intervalMs ?? 0, sizeBytes: opts.sizeBytes ?? 0 }
  }

  /** True when bytes were written since the last checkpoint and the interval or size is reached. */
  due (now: number): boolean {
    if (this.#bytes === 0) return false
    const { sizeBytes } = this.#every
    return (sizeBytes > 0 && this.#bytes >= sizeBytes) || now >= this.#dueAt
  }

  /**
   * Continues the chain of the file's last checkpoint (a writer restart). Bytes after it (a
   * crash's tail) are hashed into the next checkpoint, so the chain runs on over them. A file
   * without one (moved away or removed while the writer was down) continues from the side
   * file's copy of the last checkpoint; without either a new chain starts.
   */
  async resume (): Promise<void> {
    const found = await this.#lastInFile() ?? this.#lastInSideFile()
    if (found === undefined) return
    this.writer = found.rec.writer
    this.#n = found.rec.n + 1
    this.#prev = chainHash(found.line, algOf(found.rec) ?? this.#alg)
    if (found.rest.length > 0) this.update([found.rest], -1)
    if (found.rec.seal !== undefined) await this.#keeper?.resumeAfter(found.rec.seal, found.line.toString())
  }

  #lastInSideFile (): { rec: CheckpointRecord, line: Buffer, rest: Buffer } | undefined {
    let buf
    try { buf = readFileSync(this.#chainFile) } catch { return undefined }
    return lastCheckpoint(buf, true)
  }

  async #lastInFile (): Promise<{ rec: CheckpointRecord, line: Buffer, rest: Buffer } | undefined> {
    let fh
    try { fh = await open(this.#file, 'r') } catch { return undefined }
    let found: { rec: CheckpointRecord, line: Buffer, rest: Buffer } | undefined
    try {
      const { size } = await fh.stat()
      let buf = Buffer.alloc(0)
      for (let pos = size; pos > 0 && found === undefined && buf.length < RESUME_SCAN_BYTES;) {
        const len = Math.min(pos, 1024 * 1024)
        pos -= len
        const chunk = Buffer.alloc(len)
        await fh.read(chunk, 0, len, pos)
        buf = Buffer.concat([chunk, buf])
        found = lastCheckpoint(buf, pos === 0)
      }
    } finally {
      await fh.close()
    }
    return found
  }

  /** Notes a batch appended to the sink, ending at byte offset `end` (since start); a producer's names it and its sequence. */
  note (end: number, producer: string | undefined, seq: number, records: number): void {
    this.#batches.push({ end, producer, seq, records })
  }

  /** Hashes bytes just written (whole noted batches, or a crash's tail: `end` -1), which end at offset `end`. */
  update (bufs: Buffer[], end: number): void {
    for (const buf of bufs) {
      this.#hash.update(buf)
      this.#bytes += buf.length
      if (end === -1) this.#records += countLines(buf)
    }
    const batches = this.#batches
    while (this.#head < batches.length && (batches[this.#head] as Batch).end <= end) {
      const b = batches[this.#head++] as Batch
      this.#records += b.records
      if (b.producer === undefined) continue
      const r = this.#producers[b.producer]
      if (r === undefined) this.#producers[b.producer] = { from: b.seq, to: b.seq, records: b.records }
      else { r.to = b.seq; r.records += b.records }
    }
    if (this.#head > 1024 && this.#head * 2 > batches.length) {
      this.#batches = batches.slice(this.#head)
      this.#head = 0
    }
  }

  /** Bytes written since the last checkpoint line. */
  get pendingBytes (): number {
    return this.#bytes
  }

  /** The next checkpoint line (with newline); the state moves on as if it were written. */
  next (at: string): Buffer {
    const record: CheckpointRecord = {
      level: 30,
      time: Date.now(),
      msg: 'logfunnel checkpoint',
      logfunnel: 'checkpoint',
      ...(this.#alg === 'sha256' ? {} : { alg: this.#alg }),
      writer: this.writer,
      n: this.#n++,
      at,
      bytes: this.#bytes,
      records: this.#records,
      hash: this.#hash.digest(),
      prev: this.#prev,
      producers: this.#producers
    }
    let text: string
    if (this.#keeper === undefined) {
      text = JSON.stringify(record)
    } else {
      record.seal = this.#sealed = this.#keeper.index
      text = this.#keeper.seal(JSON.stringify(record))
    }
    const line = Buffer.from(`${text}\n`)
    this.#lastLine = line
    this.#prev = chainHash(line, this.#alg)
    this.#hash = newHasher(this.#alg)
    this.#bytes = 0
    this.#records = 0
    this.#producers = {}
    return line
  }

  /**
   * After the line from `next()` is in the file, at `now`: the key that sealed it is replaced
   * by the next. Resolves with the time the next checkpoint is due by interval, if any.
   */
  async written (now: number): Promise<number | undefined> {
    if (this.#sealed !== undefined) await this.#keeper?.evolvePast(this.#sealed)
    this.#sealed = undefined
    if (this.#lastLine !== undefined) {
      // Best effort: without it a restart after a move starts a new chain, which verify reports.
      try { replaceFileSync(this.#chainFile, this.#lastLine.toString(), sideFileMode(statSync(this.#file).mode)) } catch {}
      this.#lastLine = undefined
    }
    if (this.#every.intervalMs === 0) return undefined
    this.#dueAt = now + this.#every.intervalMs
    return this.#dueAt
  }
}
