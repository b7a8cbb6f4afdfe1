import type { Resolved } from '../../shared/option-values.js'
import { WRITER_DEFAULTS, type WriterOptions } from '../../shared/options.js'
import type { SinkFs } from './sink-fs.js'

/** The checkpoint options: the Checkpointer's, not the sink's own. */
export type CheckpointKeys = 'checkpoints' | 'checkpointIntervalMs' | 'checkpointSizeBytes'
export type SinkOptionKeys = 'rotateSizeBytes' | 'rotateIntervalMs' | 'rotateKeep' | 'rotateGzip' | 'fsync' | CheckpointKeys

/** The writer options the sink uses (defaults: WRITER_DEFAULTS), and the file operations. */
export interface FileSinkOptions extends Pick<WriterOptions, SinkOptionKeys> {
  /** File operations; tests inject faults here. */
  fs?: SinkFs
  /** With checkpoints: the sealing key file (seal-keeper.ts). */
  sealKeyFile?: string | undefined
}

/** The sink's own options resolved (the checkpoint options are the Checkpointer's). */
export type ResolvedSinkOptions = Resolved<Pick<WriterOptions, Exclude<SinkOptionKeys, CheckpointKeys>>>

/** The sink's own options, each missing one at its default (WRITER_DEFAULTS). */
export function resolveSinkOptions (opts: FileSinkOptions): ResolvedSinkOptions {
  return {
    rotateSizeBytes: opts.rotateSizeBytes ?? WRITER_DEFAULTS.rotateSizeBytes,
    rotateIntervalMs: opts.rotateIntervalMs ?? WRITER_DEFAULTS.rotateIntervalMs,
    rotateKeep: opts.rotateKeep ?? WRITER_DEFAULTS.rotateKeep,
    rotateGzip: opts.rotateGzip ?? WRITER_DEFAULTS.rotateGzip,
    fsync: opts.fsync ?? WRITER_DEFAULTS.fsync
  }
}

/** Counters the writer adds to its summary and stats. */
export interface SinkStats {
  fsyncs: number
  rotations: number
  /** Failed file operations (each failed retry counts). */
  fileErrors: number
  lastFileError: { op: string, fsCode: string | null, message: string } | null
}
