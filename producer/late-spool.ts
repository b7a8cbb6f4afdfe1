import type { ResolvedProducerOptions } from '../shared/options.js'
import { encodeHeader } from '../shared/protocol.js'
import { readPosition, type SpoolPosition } from './sender-requests.js'
import { SpoolWriter } from './spool-writer.js'

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

  constructor (control: Int32Array, options: ResolvedProducerOptions) {
    this.#maxFrameBytes = options.maxFrameBytes
    const position = readPosition(control)
    if (position === undefined || options.spoolDir === undefined) return
    this.#position = position
    this.#writer = new SpoolWriter(options.spoolDir, position.producerId.toString('hex'), options.endpoint, () => {}, position.nextSegment)
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

function countNewlines (buf: Buffer): number {
  let n = 0
  for (let at = buf.indexOf(10); at !== -1; at = buf.indexOf(10, at + 1)) n++
  return n
}
