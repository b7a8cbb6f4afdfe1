import type { EventEmitter } from 'node:events'
import type { ResolvedProducerOptions } from '../shared/options.js'
import type { RingWriter } from './line-ring.js'
import type { SpoolWriter } from './spool-writer.js'

/**
 * A funnel() destination's sender thread as the rest of the producer holds it: what its close,
 * its exit and signal hooks, and its orphan's handling (a collected destination) need of it.
 * Types only, so that those modules share it without importing each other.
 */

/**
 * The sender thread as the logging thread drives it: a Worker of its own, or one its host thread
 * started for it (hosted-link.ts), driven the same way.
 */
export interface SenderWorker extends EventEmitter {
  postMessage: (msg: unknown) => void
  ref: () => void
  unref: () => void
  terminate: () => Promise<number>
}

/** What a destination's sender thread needs of it once the destination is gone. */
export interface SenderThread {
  options: ResolvedProducerOptions
  worker: SenderWorker
  control: Int32Array
  ring: RingWriter
  exited: boolean
  /** What the ring spilled to the spool while no sender thread could take from it (late-spool.ts). */
  spill?: RingSpill
  /** Its destination, held weakly (trackThread). */
  owner?: WeakRef<object>
  /** Refused for a cause of the process's (the permission model, a removed working directory): the process's first such, or a later one, whose reports are counted (refused-threads.ts). */
  refused?: 'first' | 'later'
}

/**
 * A destination's spills (spillRing): one producer of their own, its batches numbered on from
 * spill to spill and its segments too, so that the writer takes them in order; the lines left at
 * the end follow them (rescueRest).
 */
export interface RingSpill {
  producerId: Buffer
  /** The next batch's sequence number. */
  seq: number
  spool: SpoolWriter
  /** Records spilled so far. */
  spooled: number
  /** The first error that kept a spill from the spool. */
  err?: unknown
}
