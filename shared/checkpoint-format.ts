import { createHash } from 'node:crypto'

/** The hash of the bytes between checkpoints and of the chain (node:crypto name). */
export const CHECKPOINT_HASH = 'sha256'

/** The field that marks a writer's checkpoint line (no producer key: plain `verify` counts it as unkeyed, not as a record). */
export const CHECKPOINT_MARK = 'logfunnel'

/** A checkpoint line as the writer writes it (pino-readable: level, time, msg). */
export interface CheckpointRecord {
  level: 30
  time: number
  msg: 'logfunnel checkpoint'
  logfunnel: 'checkpoint'
  /** Writer id: random per chain start. */
  writer: string
  /** Number in the chain, 0 first. */
  n: number
  /** Why written: 'start', 'interval', 'rotate-out', 'rotate-in', 'stop'. */
  at: string
  /** Bytes written since the previous checkpoint line (after its newline, before this line). */
  bytes: number
  /** Lines among those bytes. */
  records: number
  /** Hex hash of exactly those bytes. */
  hash: string
  /** Hex hash of the previous checkpoint line (with its newline); null at the chain's start. */
  prev: string | null
  /** Per producer id (hex): the batch sequence range [from, to] and records written since the previous checkpoint. */
  producers: Record<string, ProducerRange>
  /** With sealing: the index of the key that sealed this line (one more per checkpoint). */
  seal?: number
  /** With sealing: HMAC of the line without this field (seal-key.ts); always the last field. */
  mac?: string
}

/** One producer's batches between two checkpoints. */
export interface ProducerRange {
  from: number
  to: number
  records: number
}

/** True when a line looks like a checkpoint (cheap test before JSON.parse). */
export function isCheckpointLine (line: Buffer | string): boolean {
  return line.includes('"logfunnel":"checkpoint"')
}

/** Hex hash of one checkpoint line including its newline: the next checkpoint's `prev`. */
export function chainHash (line: Buffer): string {
  return createHash(CHECKPOINT_HASH).update(line).digest('hex')
}
