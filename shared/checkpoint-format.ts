import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { MissingDependencyError } from './errors.js'

/**
 * The hashes a checkpoint line may name in `alg`: BLAKE3 (the writer's choice: 0.13-0.14 ns per
 * byte here against sha256's 0.6-0.9, see docs/checkpoints.md) or sha256 (lines without `alg`,
 * as the first writers wrote them; also the writer's fallback where BLAKE3 cannot load).
 */
export type CheckpointAlg = 'blake3' | 'sha256'

/** One running hash: bytes in, hex digest out. */
export interface Hasher {
  update: (buf: Buffer) => void
  digest: () => string
}

interface Blake3Module { Blake3Hasher: new () => { update: (input: Buffer) => unknown, digest: (format: string) => string } }

let blake3: Blake3Module | null | undefined

/** node:crypto has no BLAKE3: @napi-rs/blake-hash (the BLAKE3 team's Rust crate, prebuilt per platform) has, loaded once on first use; null where it cannot load. */
function loadBlake3 (): Blake3Module | null {
  if (blake3 === undefined) {
    try { blake3 = createRequire(import.meta.url)('@napi-rs/blake-hash') as Blake3Module } catch { blake3 = null }
  }
  return blake3
}

/** The hash a new checkpoint line uses: BLAKE3 where it loads, else sha256. */
export function preferredAlg (): CheckpointAlg {
  return loadBlake3() === null ? 'sha256' : 'blake3'
}

/** The `alg` of a checkpoint record: absent means sha256; undefined for a name this version does not know. */
export function algOf (rec: { alg?: unknown }): CheckpointAlg | undefined {
  if (rec.alg === undefined) return 'sha256'
  return rec.alg === 'blake3' || rec.alg === 'sha256' ? rec.alg : undefined
}

/** A fresh running hash; throws MissingDependencyError when BLAKE3 is asked for where it cannot load. */
export function newHasher (alg: CheckpointAlg): Hasher {
  if (alg === 'sha256') {
    const h = createHash('sha256')
    return { update: (buf) => { h.update(buf) }, digest: () => h.digest('hex') }
  }
  const mod = loadBlake3()
  if (mod === null) throw new MissingDependencyError('@napi-rs/blake-hash', 'checking a checkpoint hashed with BLAKE3', { why: 'has no prebuilt binary for this platform or was not installed' })
  const h = new mod.Blake3Hasher()
  return { update: (buf) => { h.update(buf) }, digest: () => h.digest('hex') }
}

/** The field that marks a writer's checkpoint line (no producer key: plain `verify` counts it as unkeyed, not as a record). */
export const CHECKPOINT_MARK = 'logfunnel'

/** A checkpoint line as the writer writes it (pino-readable: level, time, msg). */
export interface CheckpointRecord {
  level: 30
  time: number
  msg: 'logfunnel checkpoint'
  logfunnel: 'checkpoint'
  /** The hash of `hash` (and of the next line's `prev`); absent: sha256. */
  alg?: CheckpointAlg
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
  /** Hex hash (`alg`) of exactly those bytes. */
  hash: string
  /** Hex hash of the previous checkpoint line (with its newline), by that line's own `alg`; null at the chain's start. */
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

/** The bytes every checkpoint line holds. */
export const CHECKPOINT_MARK_TEXT = '"logfunnel":"checkpoint"'

/** True when a line looks like a checkpoint (cheap test before JSON.parse). */
export function isCheckpointLine (line: Buffer | string): boolean {
  return line.includes(CHECKPOINT_MARK_TEXT)
}

/** Hex hash of one checkpoint line including its newline, by its own `alg`: the next checkpoint's `prev`. */
export function chainHash (line: Buffer, alg: CheckpointAlg): string {
  const h = newHasher(alg)
  h.update(line)
  return h.digest()
}
