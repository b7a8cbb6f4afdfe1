import { hasWritev, type SinkFs } from './sink-fs.js'
import { countLines } from './checkpointer.js'

/**
 * Most buffers in one writev(2): Linux's IOV_MAX (UIO_MAXIOV, 1024). libuv writes only that
 * many and reports a short write, so a chunk of more batches is merged into one buffer.
 */
export const MAX_WRITEV_BUFFERS = 1024

/**
 * Largest write: a regular file takes large writes in one syscall, so batches from many
 * producers go out together (one write, one fsync: group commit).
 */
const MAX_WRITE_BYTES = 1024 * 1024

/** Whole batches written together; `done` bytes of them are in the file. */
export interface Chunk {
  /** The batches, or one buffer of them all once merged. */
  bufs: Buffer[]
  bytes: number
  done: number
  /** Byte offset (since start, over all files) at which the chunk ends. */
  end: number
}

/**
 * The batches waiting for the file, kept whole: a chunk taken for writing is made of whole
 * batches only, so the sink can rotate between any two chunks without splitting a line.
 */
export class WriteQueue {
  #bufs: Buffer[] = []
  #appended = 0
  #taken = 0

  /** Queues a batch; returns the offset at which it ends. */
  push (buf: Buffer): number {
    this.#bufs.push(buf)
    this.#appended += buf.length
    return this.#appended
  }

  /** Bytes ever queued. */
  get appended (): number {
    return this.#appended
  }

  /** Lines in the batches not taken yet (each batch is whole lines). */
  lines (): number {
    let n = 0
    for (const buf of this.#bufs) n += countLines(buf)
    return n
  }

  /** The next batch, if any. */
  get next (): Buffer | undefined {
    return this.#bufs[0]
  }

  /**
   * The first batch, and more while the chunk stays within 1 MiB and `roomBytes` (what the
   * rotation size leaves). The batches are not copied (the sink writes them with writev)
   * unless there are more than MAX_WRITEV_BUFFERS.
   */
  take (roomBytes: number): Chunk {
    const limitBytes = Math.min(MAX_WRITE_BYTES, roomBytes)
    const bufs = this.#bufs
    let bytes = (bufs[0] as Buffer).length
    let count = 1
    while (count < bufs.length && bytes + (bufs[count] as Buffer).length <= limitBytes) {
      bytes += (bufs[count++] as Buffer).length
    }
    const taken = bufs.splice(0, count)
    this.#taken += bytes
    return { bufs: count > MAX_WRITEV_BUFFERS ? [Buffer.concat(taken, bytes)] : taken, bytes, done: 0, end: this.#taken }
  }
}

/** One chunk of the given ones' batches, in order, to be written again from its first byte. */
export function mergeChunks (chunks: Chunk[]): Chunk {
  const bufs: Buffer[] = []
  let bytes = 0
  for (const chunk of chunks) {
    bufs.push(...chunk.bufs)
    bytes += chunk.bytes
  }
  const end = (chunks[chunks.length - 1] as Chunk).end
  return { bufs: bufs.length > MAX_WRITEV_BUFFERS ? [Buffer.concat(bufs, bytes)] : bufs, bytes, done: 0, end }
}

/**
 * One write(2) or writev(2) of what is left of the chunk. The batches go out with writev,
 * without a copy; after a short write, or with an fs that has no writev, they are merged into
 * one buffer first (once per chunk), which is then written on from its first unwritten byte.
 * Resolves with the bytes written (the caller adds them to `chunk.done`).
 */
export async function writeSome (fs: SinkFs, fd: number, chunk: Chunk): Promise<number> {
  if (chunk.bufs.length > 1 && chunk.done === 0 && hasWritev(fs)) return await fs.writev(fd, chunk.bufs)
  if (chunk.bufs.length > 1) chunk.bufs = [Buffer.concat(chunk.bufs, chunk.bytes)]
  return await fs.write(fd, chunk.bufs[0] as Buffer, chunk.done, chunk.bytes - chunk.done)
}
