import { InvalidOptionError } from './errors.js'
import { defaultEndpoint, parseEndpoint, receiptEndpointFor } from './endpoint.js'

const KiB = 1024
const MiB = 1024 * KiB

/** Bounds of `maxFrameBytes`: a frame must hold at least one ordinary record, and 64 MiB
 * keeps one frame well inside a writer's memory budget. */
export const MIN_FRAME_BYTES = 1 * KiB
export const MAX_FRAME_BYTES = 64 * MiB

/**
 * libzmq's ZMQ_MAXMSGSIZE is set to this multiple of `maxFrameBytes`: a frame a little too
 * large still reaches the writer to be counted as `too_large`, while a frame past the guard
 * makes libzmq drop the connection before it is read into memory.
 */
export const MAX_MESSAGE_SIZE_FACTOR = 4

export type OnFull = 'block' | 'drop'

export interface WriterOptions {
  /** Log file path; parent directories are created. */
  file?: string
  /** Data endpoint the writer binds (PULL). */
  endpoint?: string
  /** Receipt endpoint the writer binds (PUB); derived from `endpoint` when not set. */
  receiptEndpoint?: string
  /** Largest payload accepted, in bytes. */
  maxFrameBytes?: number
  /** Messages libzmq queues per producer connection before it stops reading (ZMQ_RCVHWM). */
  receiveHighWaterMark?: number
  /** On stop, how long to keep draining queued messages before closing. */
  drainTimeoutMs?: number
  /** On stop, the queue counts as drained after this long without a message. */
  drainIdleMs?: number
  /** Testing aid: wait this long after writing each batch, to make a slow writer. */
  slowBatchMs?: number
  /** Interval of the `'stats'` event (a JSON line on the CLI's stderr); 0 turns the periodic line off. */
  statsIntervalMs?: number
  /** TCP port of the Prometheus `/metrics` HTTP endpoint; 0 (the default) serves none. */
  metricsPort?: number
  /** Address the metrics endpoint binds; loopback unless set. */
  metricsHost?: string
}

export type ResolvedWriterOptions = Required<WriterOptions>

export const WRITER_DEFAULTS = Object.freeze({
  file: './logs/app.log',
  maxFrameBytes: 1 * MiB,
  receiveHighWaterMark: 256,
  drainTimeoutMs: 5000,
  drainIdleMs: 200,
  slowBatchMs: 0,
  statsIntervalMs: 10_000,
  metricsPort: 0,
  metricsHost: '127.0.0.1'
})

export function resolveWriterOptions (opts: WriterOptions = {}): ResolvedWriterOptions {
  checkObject(opts, 'writer options')
  const endpoint = opts.endpoint ?? defaultEndpoint()
  parseEndpoint(endpoint, 'endpoint')
  const receiptEndpoint = opts.receiptEndpoint ?? receiptEndpointFor(endpoint)
  parseEndpoint(receiptEndpoint, 'receiptEndpoint')
  if (receiptEndpoint === endpoint) throw new InvalidOptionError('receiptEndpoint must differ from endpoint')
  const file = opts.file ?? WRITER_DEFAULTS.file
  if (typeof file !== 'string' || file.length === 0) throw new InvalidOptionError('file must be a non-empty path')
  const metricsHost = opts.metricsHost ?? WRITER_DEFAULTS.metricsHost
  if (typeof metricsHost !== 'string' || metricsHost.length === 0) throw new InvalidOptionError('metricsHost must be a non-empty host name or address')
  const resolved: ResolvedWriterOptions = {
    file,
    endpoint,
    receiptEndpoint,
    maxFrameBytes: int(opts, 'maxFrameBytes', WRITER_DEFAULTS.maxFrameBytes, MIN_FRAME_BYTES, MAX_FRAME_BYTES, '1 KiB and 64 MiB'),
    receiveHighWaterMark: int(opts, 'receiveHighWaterMark', WRITER_DEFAULTS.receiveHighWaterMark, 1, 1_000_000),
    drainTimeoutMs: int(opts, 'drainTimeoutMs', WRITER_DEFAULTS.drainTimeoutMs, 0, 600_000),
    drainIdleMs: int(opts, 'drainIdleMs', WRITER_DEFAULTS.drainIdleMs, 1, 60_000),
    slowBatchMs: int(opts, 'slowBatchMs', WRITER_DEFAULTS.slowBatchMs, 0, 60_000),
    statsIntervalMs: int(opts, 'statsIntervalMs', WRITER_DEFAULTS.statsIntervalMs, 0, 86_400_000),
    metricsPort: int(opts, 'metricsPort', WRITER_DEFAULTS.metricsPort, 0, 65_535),
    metricsHost
  }
  if (resolved.drainIdleMs > resolved.drainTimeoutMs && resolved.drainTimeoutMs > 0) {
    throw new InvalidOptionError('drainIdleMs must not exceed drainTimeoutMs')
  }
  return resolved
}

export interface ProducerOptions {
  /** The writer's data endpoint (PUSH connects here). */
  endpoint?: string
  /** The writer's receipt endpoint (SUB connects here); derived from `endpoint` when not set. */
  receiptEndpoint?: string
  /** Bytes of records held (queued or sent without a receipt) before `onFull` applies. */
  highWaterMark?: number
  /** Past `highWaterMark`: `'block'` waits for room, `'drop'` drops and counts the record. */
  onFull?: OnFull
  /** A batch is sent once it reaches this many bytes, or at the end of the tick. */
  maxBatchBytes?: number
  /** The writer's `maxFrameBytes`; a record larger than this is rejected locally. */
  maxFrameBytes?: number
  /** With batches sent but no receipt progress for this long, resend from the first unreceipted batch. */
  receiptTimeoutMs?: number
  /** Default deadline of `flush()`. */
  flushTimeoutMs?: number
  /** Default deadline of `close()`. */
  closeTimeoutMs?: number
  /** How long libzmq keeps unsent messages after close (ZMQ_LINGER); never -1, so exit never hangs. */
  linger?: number
  /** Messages libzmq queues towards the writer (ZMQ_SNDHWM). */
  sendHighWaterMark?: number
  /** Size of the shared buffer between the logging thread and the sending thread. */
  threadBufferBytes?: number
}

export type ResolvedProducerOptions = Required<ProducerOptions>

export const PRODUCER_DEFAULTS = Object.freeze({
  highWaterMark: 16 * MiB,
  onFull: 'block' as OnFull,
  maxBatchBytes: 256 * KiB,
  maxFrameBytes: 1 * MiB,
  receiptTimeoutMs: 5000,
  flushTimeoutMs: 10_000,
  closeTimeoutMs: 10_000,
  linger: 1000,
  sendHighWaterMark: 1000,
  threadBufferBytes: 4 * MiB
})

export function resolveProducerOptions (opts: ProducerOptions = {}): ResolvedProducerOptions {
  checkObject(opts, 'producer options')
  const endpoint = opts.endpoint ?? defaultEndpoint()
  parseEndpoint(endpoint, 'endpoint')
  const receiptEndpoint = opts.receiptEndpoint ?? receiptEndpointFor(endpoint)
  parseEndpoint(receiptEndpoint, 'receiptEndpoint')
  const onFull = opts.onFull ?? PRODUCER_DEFAULTS.onFull
  if (onFull !== 'block' && onFull !== 'drop') {
    throw new InvalidOptionError(`onFull must be 'block' or 'drop', got ${String(onFull)}`)
  }
  const maxFrameBytes = int(opts, 'maxFrameBytes', PRODUCER_DEFAULTS.maxFrameBytes, MIN_FRAME_BYTES, MAX_FRAME_BYTES, '1 KiB and 64 MiB')
  const resolved: ResolvedProducerOptions = {
    endpoint,
    receiptEndpoint,
    onFull,
    maxFrameBytes,
    highWaterMark: int(opts, 'highWaterMark', PRODUCER_DEFAULTS.highWaterMark, MIN_FRAME_BYTES, 4096 * MiB),
    maxBatchBytes: int(opts, 'maxBatchBytes', Math.min(PRODUCER_DEFAULTS.maxBatchBytes, maxFrameBytes), 1, MAX_FRAME_BYTES),
    receiptTimeoutMs: int(opts, 'receiptTimeoutMs', PRODUCER_DEFAULTS.receiptTimeoutMs, 10, 600_000),
    flushTimeoutMs: int(opts, 'flushTimeoutMs', PRODUCER_DEFAULTS.flushTimeoutMs, 1, 3_600_000),
    closeTimeoutMs: int(opts, 'closeTimeoutMs', PRODUCER_DEFAULTS.closeTimeoutMs, 1, 3_600_000),
    linger: int(opts, 'linger', PRODUCER_DEFAULTS.linger, 0, 600_000),
    sendHighWaterMark: int(opts, 'sendHighWaterMark', PRODUCER_DEFAULTS.sendHighWaterMark, 1, 1_000_000),
    threadBufferBytes: int(opts, 'threadBufferBytes', PRODUCER_DEFAULTS.threadBufferBytes, 64 * KiB, 1024 * MiB)
  }
  if (resolved.maxBatchBytes > resolved.maxFrameBytes) {
    throw new InvalidOptionError('maxBatchBytes must not exceed maxFrameBytes')
  }
  if (resolved.highWaterMark < resolved.maxFrameBytes) {
    throw new InvalidOptionError('highWaterMark must be at least maxFrameBytes, so that the largest record fits')
  }
  return resolved
}

function checkObject (opts: unknown, what: string): void {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError(`${what} must be an object`)
}

function int (opts: object, key: string, fallback: number, min: number, max: number, shown?: string): number {
  const value = (opts as Record<string, unknown>)[key] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${key} must be an integer between ${shown ?? `${min} and ${max}`}, got ${String(value)}`)
  }
  return value
}
