import { randomBytes } from 'node:crypto'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { encodeHeader, PRODUCER_ID_BYTES } from '../shared/protocol.js'
import { producerMade } from '../shared/spool.js'
import type { RingWriter } from './line-ring.js'
import { readPosition, type SpoolPosition } from './sender-requests.js'
import { SpoolWriter } from './spool-writer.js'
import type { RingSpill, SenderThread } from './sender-thread-handle.js'

/**
 * Lines a funnel() destination gets in a process 'exit' listener, after its sender ended (it
 * closed at 'beforeExit', or spooled in the destination's own 'exit' listener): they go to the
 * spool from the logging thread, each as the producer's next batch, in the producer's next
 * segment, where the sender thread said it stood as it ended (sender-requests.ts). The writer
 * takes the segment once the process has ended.
 */
export class LateSpool {
  readonly #position: SpoolPosition | undefined
  readonly #writer: SpoolWriter | undefined
  readonly #maxFrameBytes: number

  /**
   * `first`: the producer the logging thread made, and when (SpoolPreamble.made); a sender
   * thread's later producer (one that replaced a failed sender) is stamped now, after it.
   */
  constructor (control: Int32Array, options: ResolvedProducerOptions, first: { producerId: Buffer, made: string }) {
    this.#maxFrameBytes = options.maxFrameBytes
    const position = readPosition(control)
    if (position === undefined || options.spoolDir === undefined) return
    this.#position = position
    const made = position.producerId.equals(first.producerId) ? first.made : producerMade()
    this.#writer = new SpoolWriter(options.spoolDir, position.producerId.toString('hex'), options.endpoint, () => {}, position.nextSegment, made)
  }

  /** False when the line cannot go there (no spool, no word from the sender, too large, an fs error): the caller reports it. */
  append (line: string): boolean {
    const position = this.#position
    if (position === undefined || this.#writer === undefined) return false
    const payload = Buffer.from(line.endsWith('\n') ? line : line + '\n')
    if (payload.length > this.#maxFrameBytes) return false
    try {
      this.#writer.append(encodeHeader({ records: countNewlines(payload), seq: position.nextSeq, base: position.base, producerId: position.producerId }), payload)
    } catch {
      return false
    }
    position.nextSeq++
    return true
  }
}

/** What rescueRing did with the lines no sender took. */
export interface Rescue {
  /** Records now in the spool, where the writer ingests them. */
  spooled: number
  /** Records that could not go there (no spool, an fs error, a line that travelled on the thread's port). */
  lost: number
  /** The error that stopped the spooling, if any. */
  err?: unknown
}

/**
 * The sender thread is gone for good (it never started, it failed, or close() ended it for giving
 * no sign of life) and the ring still holds lines it never took: the logging thread writes them
 * to the spool itself, in order, as the batches of a producer of their own (a new id, from
 * sequence 0: where the gone thread's sequence stood is not known here), in one segment handed
 * to the writer at once; with `spill`, as that producer's next batches and segment. Before, they were reported lost. Each batch holds whole lines, at most
 * `maxFrameBytes`.
 */
export function rescueRing (ring: RingWriter, options: ResolvedProducerOptions, spill?: RingSpill): Rescue {
  const spoolDir = options.spoolDir
  const producerId = spill?.producerId ?? randomBytes(PRODUCER_ID_BYTES)
  const spool = spill?.spool ?? (spoolDir === undefined ? undefined : new SpoolWriter(spoolDir, producerId.toString('hex'), options.endpoint))
  const rescue: Rescue = { spooled: 0, lost: 0 }
  let seq = spill?.seq ?? 0
  const take = (bytes: Buffer, records: number): void => {
    if (spool === undefined || rescue.err !== undefined) {
      rescue.lost += records
      return
    }
    let done = 0
    try {
      for (const batch of wholeLinesUpTo(bytes, options.maxFrameBytes)) {
        const lines = countNewlines(batch)
        spool.append(encodeHeader({ records: lines, seq, base: 0, producerId }), batch)
        done += lines
        seq++
      }
    } catch (err) {
      rescue.err = err
      rescue.lost += records - done
    }
    rescue.spooled += done
  }
  // Not `rescue.lost += ring.takeUntaken(take)`: that reads rescue.lost before `take` adds to it.
  const unreachable = ring.takeUntaken(take)
  rescue.lost += unreachable
  if (spill !== undefined) spill.seq = seq
  try {
    spool?.seal()
  } catch (err) {
    rescue.err ??= err
  }
  return rescue
}

/**
 * The ring is full and no sender thread can take from it (RingWriter's `spill`): its lines go to
 * the spool now, from this thread, and its slots are free for the next ones. Lines that could
 * not go there are counted in the ring's `lost`. False without a spool: the ring keeps its lines
 * for a sender thread that may yet start, and drops what does not fit.
 */
export function spillRing (thread: SenderThread): boolean {
  const { ring, options } = thread
  if (options.spoolDir === undefined) return false
  thread.spill ??= newSpill(options.spoolDir, options.endpoint)
  const rescue = rescueRing(ring, options, thread.spill)
  thread.spill.spooled += rescue.spooled
  thread.spill.err ??= rescue.err
  ring.lost += rescue.lost
  return true
}

/** The first spill's state: a producer of its own, from sequence 0. */
function newSpill (spoolDir: string, endpoint: string): RingSpill {
  const producerId = randomBytes(PRODUCER_ID_BYTES)
  return { producerId, seq: 0, spool: new SpoolWriter(spoolDir, producerId.toString('hex'), endpoint), spooled: 0 }
}

/**
 * What the logging thread does with the ring once no sender thread will take from it again
 * (close(), the exit, a collected destination): rescueRing for the lines left, after those the
 * ring spilled before (spillRing) and counted with them.
 */
export function rescueRest (thread: SenderThread): Rescue | undefined {
  const { ring, options, spill } = thread
  const rescue = ring.untaken > 0 ? rescueRing(ring, options, spill) : undefined
  if (spill === undefined || spill.spooled === 0) return rescue
  return { spooled: spill.spooled + (rescue?.spooled ?? 0), lost: rescue?.lost ?? 0, err: rescue?.err ?? spill.err }
}

/** `bytes` (whole lines, none over `max`) cut at line ends into pieces of at most `max` bytes. */
function * wholeLinesUpTo (bytes: Buffer, max: number): Generator<Buffer> {
  let start = 0
  while (start < bytes.length) {
    let end = Math.min(start + max, bytes.length)
    if (end < bytes.length) end = bytes.lastIndexOf(10, end - 1) + 1
    // A line over `max` (the ring refuses them, so never): on its own, never a loop without end.
    if (end <= start) end = bytes.indexOf(10, start) + 1 || bytes.length
    yield bytes.subarray(start, end)
    start = end
  }
}

function countNewlines (buf: Buffer): number {
  let n = 0
  for (let at = buf.indexOf(10); at !== -1; at = buf.indexOf(10, at + 1)) n++
  return n
}
