import type { RejectReason } from './protocol.js'

/**
 * The writer's counters at stop: `Writer.stop()` resolves them, `logfunnel writer` prints them
 * as its `{"event":"stopped",...}` line, `startWriter().stop()` resolves that line. One type for
 * all three, so none can drift.
 */
export interface WriterSummary {
  /** Lines handed to the file; in the final summary, those written (the batches given up at stop are not counted). */
  records: number
  /** Bytes handed to the file; in the final summary, those written (what was given up is `unwrittenBytes`). */
  bytes: number
  /** Batches written. */
  batches: number
  /** Batches received again (resent, or also in the spool) and not written again. */
  duplicates: number
  /** Producers the writer knows (its state, across restarts). */
  producers: number
  /** Messages rejected, by reason. */
  rejected: Partial<Record<RejectReason, number>>
  /**
   * Spool files ingested, entries read from them, torn tails moved aside, files set aside, files
   * of another endpoint left alone; `leftAtStop`, in the final summary, the spool files the stop
   * left for the next writer (complete ones, and `.spool.tmp` of processes gone: the drain's
   * `drainTimeoutMs` ran out, or a file kept failing).
   */
  spool: { files: number, entries: number, torn: number, rejected: number, foreign: number, leftAtStop: number }
  /** fsync(2) calls of the log file, the rotation's included. */
  fsyncs: number
  /** Files rotated. */
  rotations: number
  /** Failed file operations (each failed retry counts). */
  fileErrors: number
  /** The last failed file operation. */
  lastFileError: { op: string, fsCode: string | null, message: string } | null
  /** Bytes given up at stop because the file stayed unwritable past `drainTimeoutMs` (producers still hold them). */
  unwrittenBytes: number
  /** CURVE handshakes refused: the client's key is not in `curveAllowedKeys`. */
  denied: number
  /** Batches refused as another sender's use of a producer id (`base_skip`, `id_conflict`). */
  conflicts: number
  /** The longest save of the producer state so far (ms). */
  stateSaveMaxMs: number
  /**
   * Data connections closed unread for want of descriptors: past the cap the writer keeps under
   * its descriptor limit (with CURVE, handshakes refused past it), or accept(2) failing with
   * EMFILE/ENFILE (see `connections-refused`).
   */
  refusedConnections: number
}

/** The `{"event":"stopped",...}` line of `logfunnel writer`. */
export interface StoppedLine extends WriterSummary {
  event: 'stopped'
  /** What stopped it: `SIGTERM`, `SIGINT`, or `parent gone` (with `--exit-with-parent`). */
  reason: string
}
