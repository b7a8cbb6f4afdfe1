import { createHash, randomBytes, type Hash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { CHECKPOINT_HASH, chainHash, isCheckpointLine, type CheckpointRecord, type ProducerRange } from '../../shared/checkpoint-format.js'
import { SealKeeper } from './seal-keeper.js'

/** A producer's batch queued for the file: its place in the byte stream and its sequence. */
interface Batch { end: number, producer: string, seq: number, records: number }

/**
 * Hashes the bytes as they are handed to the file (per chunk, never per record) and makes the
 * checkpoint lines that vouch for them: each carries the hash of the bytes since the previous
 * one, the hash of the previous line (a chain across rotations and restarts) and, per
 * producer, the batch sequences written in between; sealed with an evolving key if given one.
 */
export class Checkpointer {
  writer = randomBytes(8).toString('hex')
  #hash: Hash = createHash(CHECKPOINT_HASH)
  #bytes = 0
  #records = 0
  #n = 0
  #prev: string | null = null
  #producers: Record<string, ProducerRange> = {}
  #batches: Batch[] = []
  #head = 0
  #sealed: number | undefined
  readonly #keeper: SealKeeper | undefined

  constructor (sealKeyFile?: string) {
    this.#keeper = sealKeyFile === undefined ? undefined : new SealKeeper(sealKeyFile)
  }

  /** Continues the chain of a file whose last line is a checkpoint (a writer restart). */
  async resume (file: string): Promise<void> {
    let fh
    try { fh = await open(file, 'r') } catch { return }
    let rec: CheckpointRecord | undefined
    try {
      const { size } = await fh.stat()
      const len = Math.min(size, 64 * 1024)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      const start = buf.lastIndexOf(10, len - 2) + 1
      const line = buf.subarray(start)
      if (line.at(-1) !== 10 || !isCheckpointLine(line)) return
      rec = JSON.parse(line.toString()) as CheckpointRecord
      this.writer = rec.writer
      this.#n = rec.n + 1
      this.#prev = chainHash(line)
    } catch { /* no checkpoint to continue: a new chain */ } finally {
      await fh.close()
    }
    if (rec?.seal !== undefined) await this.#keeper?.evolvePast(rec.seal)
  }

  /** Notes a producer's batch appended to the sink, ending at byte offset `end` (since start). */
  note (end: number, producer: string, seq: number, records: number): void {
    this.#batches.push({ end, producer, seq, records })
  }

  /** Counts and hashes bytes just written (whole batches), which end at offset `end`. */
  update (bufs: Buffer[], end: number): void {
    for (const buf of bufs) {
      this.#hash.update(buf)
      this.#bytes += buf.length
      let i = -1
      while ((i = buf.indexOf(10, i + 1)) !== -1) this.#records++
    }
    const batches = this.#batches
    while (this.#head < batches.length && (batches[this.#head] as Batch).end <= end) {
      const b = batches[this.#head++] as Batch
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
      writer: this.writer,
      n: this.#n++,
      at,
      bytes: this.#bytes,
      records: this.#records,
      hash: this.#hash.digest('hex'),
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
    this.#prev = chainHash(line)
    this.#hash = createHash(CHECKPOINT_HASH)
    this.#bytes = 0
    this.#records = 0
    this.#producers = {}
    return line
  }

  /** After the line from `next()` is in the file: the key that sealed it is replaced by the next. */
  async written (): Promise<void> {
    if (this.#sealed !== undefined) await this.#keeper?.evolvePast(this.#sealed)
    this.#sealed = undefined
  }
}
