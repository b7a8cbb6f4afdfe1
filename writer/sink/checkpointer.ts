import { createHash, randomBytes, type Hash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { CHECKPOINT_HASH, chainHash, isCheckpointLine, type CheckpointRecord } from '../../shared/checkpoint-format.js'

/**
 * Hashes the bytes as they are handed to the file (per chunk, never per record) and makes the
 * checkpoint lines that vouch for them: each carries the hash of the bytes since the previous
 * one and the hash of the previous line, a chain across rotations.
 */
export class Checkpointer {
  writer = randomBytes(8).toString('hex')
  #hash: Hash = createHash(CHECKPOINT_HASH)
  #bytes = 0
  #records = 0
  #n = 0
  #prev: string | null = null

  /** Continues the chain of a file whose last line is a checkpoint (a writer restart). */
  async resume (file: string): Promise<void> {
    let fh
    try { fh = await open(file, 'r') } catch { return }
    try {
      const { size } = await fh.stat()
      const len = Math.min(size, 64 * 1024)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      const start = buf.lastIndexOf(10, len - 2) + 1
      const line = buf.subarray(start)
      if (line.at(-1) !== 10 || !isCheckpointLine(line)) return
      const rec = JSON.parse(line.toString()) as CheckpointRecord
      this.writer = rec.writer
      this.#n = rec.n + 1
      this.#prev = chainHash(line)
    } catch { /* no checkpoint to continue: a new chain */ } finally {
      await fh.close()
    }
  }

  /** Counts and hashes bytes just written (whole lines). */
  update (bufs: Buffer[]): void {
    for (const buf of bufs) {
      this.#hash.update(buf)
      this.#bytes += buf.length
      let i = -1
      while ((i = buf.indexOf(10, i + 1)) !== -1) this.#records++
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
      prev: this.#prev
    }
    const line = Buffer.from(`${JSON.stringify(record)}\n`)
    this.#prev = chainHash(line)
    this.#hash = createHash(CHECKPOINT_HASH)
    this.#bytes = 0
    this.#records = 0
    return line
  }
}
