import { InvalidOptionError } from './errors.js'
import { bool, checkKnownKeys, checkObject, int, intOrOff, path, type Resolved } from './option-values.js'
import { defaultEndpoint, parseEndpoint, receiptEndpointFor } from './endpoint.js'
import { defaultSpoolDir } from './spool.js'
import { basename, dirname, join } from 'node:path'
import { resolveProducerSecurity, resolveWriterSecurity, type ProducerSecurityOptions, type WriterSecurityOptions } from './security-options.js'

const KiB = 1024
const MiB = 1024 * KiB

/** Bounds of `maxFrameBytes`: a frame must hold at least one ordinary record, and 64 MiB
 * keeps one frame well inside a writer's memory budget. */
export const MIN_FRAME_BYTES = 1 * KiB
export const MAX_FRAME_BYTES = 64 * MiB

/**
 * The writer's default state file: `.<file name>.logfunnel-state.json` beside the log file. A
 * dot file that does not start with the log's name, so globs over a log's rotated files
 * (`app.log.*`, `app.log*`, `*.log`) never pick it up (it used to be `<file>.state.json`).
 */
export function defaultStateFile (file: string): string {
  return join(dirname(file), `.${basename(file)}.logfunnel-state.json`)
}

/**
 * libzmq's ZMQ_MAXMSGSIZE is set to this multiple of `maxFrameBytes`: a frame a little too
 * large still reaches the writer to be counted as `too_large`, while a frame past the guard
 * makes libzmq drop the connection before it is read into memory.
 */
export const MAX_MESSAGE_SIZE_FACTOR = 4

/** What a producer does past `highWaterMark`: wait for room, drop and count, or spool. */
export type OnFull = 'block' | 'drop' | 'spool'

/**
 * When the writer fsyncs the log file: `'off'` never (the OS decides), `'batch'` after every
 * write (one fsync per group of batches written together), or a number: at most every that
 * many milliseconds.
 */
export type FsyncPolicy = 'off' | 'batch' | number

/** Bounds of the rotation options: small enough for tests, large enough for a year of logs. */
export const MIN_ROTATE_SIZE_BYTES = 1 * KiB
export const MIN_ROTATE_INTERVAL_MS = 1000
/** Shortest checkpoint interval. */
export const MIN_CHECKPOINT_INTERVAL_MS = 100
/**
 * Shortest stats interval: ten lines a second. A shorter one floods stderr (1 ms: a thousand
 * lines a second, each a few hundred bytes) and costs the writer more than it tells.
 */
export const MIN_STATS_INTERVAL_MS = 100
/** Longest stats interval: a line a day. */
export const MAX_STATS_INTERVAL_MS = 86_400_000
export const MAX_ROTATE_INTERVAL_MS = 366 * 24 * 3600 * 1000
/** Longest `fsync` interval: beyond an hour the policy is `'off'` in all but name. */
export const MAX_FSYNC_INTERVAL_MS = 3_600_000

/** Ten minutes: the longest of the waits below that a stop or an exit may be held up by. */
const TEN_MINUTES_MS = 600_000
/** One hour: the longest flush or close deadline (a caller that wants more loops). */
const ONE_HOUR_MS = 3_600_000
/**
 * The bounds of the integer options, [min, max]. A zero minimum means "off" or "at once";
 * maxima keep a mistyped unit (seconds given as ms, bytes as KiB) from passing unnoticed.
 */
export const OPTION_BOUNDS = Object.freeze({
  /** libzmq queues this many messages per connection; a million 1 MiB frames is far past any memory. */
  receiveHighWaterMark: [1, 1_000_000],
  sendHighWaterMark: [1, 1_000_000],
  drainTimeoutMs: [0, TEN_MINUTES_MS],
  /** At least 1 ms of quiet ends a drain; a minute of quiet is a stopped producer. */
  drainIdleMs: [1, 60_000],
  /** Polling or saving more often than every 10 ms costs more than it saves. */
  spoolPollMs: [10, TEN_MINUTES_MS],
  statePersistMs: [10, TEN_MINUTES_MS],
  rotateKeep: [0, 100_000],
  /** A TCP port. */
  metricsPort: [0, 65_535],
  /** Memory held without a receipt: at least one largest frame, at most 4 GiB. */
  highWaterMark: [MIN_FRAME_BYTES, 4096 * MiB],
  maxBatchBytes: [1, MAX_FRAME_BYTES],
  receiptTimeoutMs: [10, TEN_MINUTES_MS],
  flushTimeoutMs: [1, ONE_HOUR_MS],
  closeTimeoutMs: [1, ONE_HOUR_MS],
  linger: [0, TEN_MINUTES_MS],
  /** The ring: at least 4 slots' worth, at most 1 GiB of shared memory. */
  threadBufferBytes: [64 * KiB, 1024 * MiB],
  connectTimeoutMs: [0, TEN_MINUTES_MS],
  spoolAfterMs: [0, TEN_MINUTES_MS],
  blockTimeoutMs: [0, TEN_MINUTES_MS]
} as const)

/**
 * Options of the writer (`new Writer(options)`, `startWriter(options)`; CLI flags in
 * shared/writer-flags.ts). All optional; defaults in WRITER_DEFAULTS. Checked at construction:
 * a bad value or an unknown key throws LOGFUNNEL_ERR_INVALID_OPTION.
 */
export interface WriterOptions extends WriterSecurityOptions {
  /** Log file path; parent directories are created. */
  file?: string | undefined
  /** Data endpoint the writer binds (PULL). */
  endpoint?: string | undefined
  /** Receipt endpoint the writer binds (PUB); derived from `endpoint` when not set. */
  receiptEndpoint?: string | undefined
  /** Largest payload accepted, in bytes. */
  maxFrameBytes?: number | undefined
  /**
   * Messages received and not yet handled before the writer stops reading: in all without CURVE
   * (the writer's own reader, writer/zmtp-pull.ts; each connection's share at least one), per
   * producer connection with CURVE (ZMQ_RCVHWM).
   */
  receiveHighWaterMark?: number | undefined
  /** On stop, how long to keep draining queued messages before closing. */
  drainTimeoutMs?: number | undefined
  /** On stop, the queue counts as drained after this long without a message. */
  drainIdleMs?: number | undefined
  /** Where producers spool batches; default `<ipc path>.spool` (beside the socket: `writer.sock.spool`) for ipc, none for tcp. */
  spoolDir?: string | undefined
  /** How often the spool directory is scanned for files to ingest. */
  spoolPollMs?: number | undefined
  /**
   * More endpoints whose spool files this writer takes, besides its own: the address its tcp
   * producers dial when it is not the one it binds (NAT, `docker -p 5555:7000`, a port forward).
   * A spool file records the endpoint its producer was given (for tcp, its port), and the writer
   * otherwise leaves a file of another as `spool-foreign`.
   */
  spoolEndpoints?: readonly string[] | undefined
  /** Where the last sequence written per producer is kept across restarts; default `.<file name>.logfunnel-state.json` beside the file; parent directories are created. */
  stateFile?: string | undefined
  /** How often that state is saved (after an fsync of what it covers). */
  statePersistMs?: number | undefined
  /** Rotate the file before a write would take it past this many bytes; 0: no size rotation. */
  rotateSizeBytes?: number | undefined
  /** Rotate at every multiple of this many milliseconds since the Unix epoch (UTC); 0: never. */
  rotateIntervalMs?: number | undefined
  /** Rotated files kept (oldest deleted first); 0: keep all. */
  rotateKeep?: number | undefined
  /** Compress rotated files with gzip (`<name>.gz`), in the background. */
  rotateGzip?: boolean | undefined
  /** Write checkpoint lines (hash chain over the bytes written) at start, rotation and stop. */
  checkpoints?: boolean | undefined
  /** With checkpoints: one more every this many ms while bytes were written since the last; 0 for none. */
  checkpointIntervalMs?: number | undefined
  /** With checkpoints: one more once this many bytes were written since the last; 0 for none. */
  checkpointSizeBytes?: number | undefined
  /** With checkpoints: file of the sealing key (`logfunnel keygen --seal`); each checkpoint gets a MAC and the key evolves. */
  sealKeyFile?: string | undefined
  /** When to fsync: `'off'`, `'batch'` (after every write; receipts wait for it) or at most every N ms. */
  fsync?: FsyncPolicy | undefined
  /** Interval of the `'stats'` event (a JSON line on the CLI's stderr), 100 ms to a day; 0 turns the periodic line off. */
  statsIntervalMs?: number | undefined
  /** TCP port of the Prometheus `/metrics` HTTP endpoint; 0 (the default) serves none. */
  metricsPort?: number | undefined
  /** Address the metrics endpoint binds; loopback unless set. */
  metricsHost?: string | undefined
  /** The CLI writes its pid here once ready (temp file + rename) and removes it at stop, for logrotate's `postrotate`. */
  pidFile?: string | undefined
}

/** WriterOptions with every default filled in (resolveWriterOptions). */
export type ResolvedWriterOptions = Resolved<Omit<WriterOptions, 'spoolDir' | 'pidFile' | 'sealKeyFile'>> & { spoolDir: string | undefined, pidFile: string | undefined, sealKeyFile: string | undefined }

/** The writer's defaults (README.md's writer table shows them). */
export const WRITER_DEFAULTS = Object.freeze({
  file: './logs/app.log',
  maxFrameBytes: 1 * MiB,
  receiveHighWaterMark: 256,
  drainTimeoutMs: 5000,
  drainIdleMs: 200,
  spoolPollMs: 200,
  statePersistMs: 1000,
  rotateSizeBytes: 0,
  rotateIntervalMs: 0,
  rotateKeep: 0,
  rotateGzip: false,
  checkpoints: false,
  checkpointIntervalMs: 0,
  checkpointSizeBytes: 0,
  fsync: 'batch' as FsyncPolicy,
  statsIntervalMs: 10_000,
  metricsPort: 0,
  metricsHost: '127.0.0.1'
})

/** Every writer option, so an unknown key is caught (the Record type makes the list complete). */
const WRITER_KEYS: Record<keyof WriterOptions, true> = {
  file: true, endpoint: true, receiptEndpoint: true, maxFrameBytes: true, receiveHighWaterMark: true, drainTimeoutMs: true, drainIdleMs: true,
  spoolDir: true, spoolPollMs: true, spoolEndpoints: true, stateFile: true, statePersistMs: true, rotateSizeBytes: true, rotateIntervalMs: true, rotateKeep: true, rotateGzip: true, checkpoints: true,
  checkpointIntervalMs: true, checkpointSizeBytes: true, sealKeyFile: true,
  fsync: true, statsIntervalMs: true, metricsPort: true, metricsHost: true, socketMode: true, curveSecretKey: true, curveAllowedKeys: true, pidFile: true
}

/** Every producer option. */
const PRODUCER_KEYS: Record<keyof ProducerOptions, true> = {
  endpoint: true, receiptEndpoint: true, highWaterMark: true, onFull: true, spoolDir: true, maxBatchBytes: true, maxFrameBytes: true, receiptTimeoutMs: true,
  flushTimeoutMs: true, closeTimeoutMs: true, linger: true, sendHighWaterMark: true, threadBufferBytes: true, connectTimeoutMs: true, spoolAfterMs: true,
  blockTimeoutMs: true, curveServerKey: true, curvePublicKey: true, curveSecretKey: true
}

/** Names of the writer options (for startWriter() and the CLI's flag table). */
export const WRITER_OPTION_KEYS: readonly string[] = Object.freeze(Object.keys(WRITER_KEYS))
/** Names of the producer options. */
export const PRODUCER_OPTION_KEYS: readonly string[] = Object.freeze(Object.keys(PRODUCER_KEYS))

function spoolEndpoints (value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([])
  if (!Array.isArray(value)) throw new InvalidOptionError('spoolEndpoints must be an array of endpoints (tcp://host:port or ipc://path)')
  value.forEach((e: unknown, i) => {
    if (typeof e !== 'string') throw new InvalidOptionError(`spoolEndpoints[${i}] must be an endpoint string, got ${typeof e}`)
    parseEndpoint(e, `spoolEndpoints[${i}]`)
  })
  return Object.freeze([...value as string[]])
}

/** Checks writer options and fills in the defaults; throws LOGFUNNEL_ERR_INVALID_OPTION naming the option. */
export function resolveWriterOptions (opts: WriterOptions = {}): ResolvedWriterOptions {
  checkObject(opts, 'writer options')
  checkKnownKeys(opts, WRITER_OPTION_KEYS, 'writer')
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
    receiveHighWaterMark: int(opts, 'receiveHighWaterMark', WRITER_DEFAULTS.receiveHighWaterMark, ...OPTION_BOUNDS.receiveHighWaterMark),
    drainTimeoutMs: int(opts, 'drainTimeoutMs', WRITER_DEFAULTS.drainTimeoutMs, ...OPTION_BOUNDS.drainTimeoutMs),
    drainIdleMs: int(opts, 'drainIdleMs', WRITER_DEFAULTS.drainIdleMs, ...OPTION_BOUNDS.drainIdleMs),
    spoolDir: path(opts, 'spoolDir') ?? defaultSpoolDir(endpoint),
    spoolPollMs: int(opts, 'spoolPollMs', WRITER_DEFAULTS.spoolPollMs, ...OPTION_BOUNDS.spoolPollMs),
    spoolEndpoints: spoolEndpoints(opts.spoolEndpoints),
    stateFile: path(opts, 'stateFile') ?? defaultStateFile(file),
    statePersistMs: int(opts, 'statePersistMs', WRITER_DEFAULTS.statePersistMs, ...OPTION_BOUNDS.statePersistMs),
    rotateSizeBytes: intOrOff(opts, 'rotateSizeBytes', WRITER_DEFAULTS.rotateSizeBytes, MIN_ROTATE_SIZE_BYTES, Number.MAX_SAFE_INTEGER, '1 KiB and 2^53 - 1'),
    rotateIntervalMs: intOrOff(opts, 'rotateIntervalMs', WRITER_DEFAULTS.rotateIntervalMs, MIN_ROTATE_INTERVAL_MS, MAX_ROTATE_INTERVAL_MS, '1000 (1 s) and 366 days'),
    rotateKeep: int(opts, 'rotateKeep', WRITER_DEFAULTS.rotateKeep, ...OPTION_BOUNDS.rotateKeep),
    rotateGzip: bool(opts, 'rotateGzip', WRITER_DEFAULTS.rotateGzip),
    checkpoints: bool(opts, 'checkpoints', WRITER_DEFAULTS.checkpoints),
    checkpointIntervalMs: intOrOff(opts, 'checkpointIntervalMs', WRITER_DEFAULTS.checkpointIntervalMs, MIN_CHECKPOINT_INTERVAL_MS, MAX_ROTATE_INTERVAL_MS, '100 ms and 366 days'),
    checkpointSizeBytes: intOrOff(opts, 'checkpointSizeBytes', WRITER_DEFAULTS.checkpointSizeBytes, MIN_ROTATE_SIZE_BYTES, Number.MAX_SAFE_INTEGER, '1 KiB and 2^53 - 1'),
    fsync: fsyncPolicy(opts.fsync ?? WRITER_DEFAULTS.fsync),
    ...resolveWriterSecurity(opts),
    statsIntervalMs: intOrOff(opts, 'statsIntervalMs', WRITER_DEFAULTS.statsIntervalMs, MIN_STATS_INTERVAL_MS, MAX_STATS_INTERVAL_MS, '100 ms and 1 day'),
    metricsPort: int(opts, 'metricsPort', WRITER_DEFAULTS.metricsPort, ...OPTION_BOUNDS.metricsPort),
    metricsHost,
    pidFile: path(opts, 'pidFile'),
    sealKeyFile: path(opts, 'sealKeyFile')
  }
  if (resolved.drainIdleMs > resolved.drainTimeoutMs && resolved.drainTimeoutMs > 0) {
    throw new InvalidOptionError('drainIdleMs must not exceed drainTimeoutMs')
  }
  if ((resolved.rotateKeep > 0 || resolved.rotateGzip) && resolved.rotateSizeBytes === 0 && resolved.rotateIntervalMs === 0) {
    throw new InvalidOptionError('rotateKeep and rotateGzip need rotateSizeBytes or rotateIntervalMs')
  }
  if ((resolved.checkpointIntervalMs > 0 || resolved.checkpointSizeBytes > 0 || resolved.sealKeyFile !== undefined) && !resolved.checkpoints) {
    throw new InvalidOptionError('checkpointIntervalMs, checkpointSizeBytes and sealKeyFile need checkpoints')
  }
  return resolved
}

/**
 * Options of a producer (`funnel(options)`, the transport target's `options`). All optional;
 * defaults in PRODUCER_DEFAULTS. Checked at construction: a bad value or an unknown key throws
 * LOGFUNNEL_ERR_INVALID_OPTION.
 */
export interface ProducerOptions extends ProducerSecurityOptions {
  /** The writer's data endpoint (PUSH connects here). */
  endpoint?: string | undefined
  /** The writer's receipt endpoint (SUB connects here); derived from `endpoint` when not set. */
  receiptEndpoint?: string | undefined
  /** Bytes of records held (queued or sent without a receipt) before `onFull` applies. */
  highWaterMark?: number | undefined
  /**
   * Past `highWaterMark`: `'block'` waits for room (at most `blockTimeoutMs`), `'drop'` drops
   * and counts the record, `'spool'` moves the batches to the spool directory for the writer
   * to ingest.
   */
  onFull?: OnFull | undefined
  /**
   * With `onFull: 'block'`, how long the log calls wait for room. Then what is held goes to the
   * spool and logging goes on, as with `'spool'`; with no spool (a tcp endpoint without
   * `spoolDir`), records past `highWaterMark` are dropped and counted, as with `'drop'`, until
   * the writer confirms again. A waiting log call holds its thread: no signal handler runs
   * there, so a service manager's SIGTERM waits this long at most. 0: wait for the writer
   * however long it takes.
   */
  blockTimeoutMs?: number | undefined
  /** Where unreceipted batches go at exit, on a close deadline, or with `onFull: 'spool'`;
   * default `<ipc path>.spool` (beside the socket: `writer.sock.spool`) for ipc, none for tcp (then they are lost at exit). */
  spoolDir?: string | undefined
  /** A batch is sent once it reaches this many bytes, or at the end of the tick. */
  maxBatchBytes?: number | undefined
  /** The writer's `maxFrameBytes`; a record larger than this is rejected locally. */
  maxFrameBytes?: number | undefined
  /** With batches sent but no receipt progress for this long, resend from the first unreceipted batch. */
  receiptTimeoutMs?: number | undefined
  /** Default deadline of `flush()`. */
  flushTimeoutMs?: number | undefined
  /** Default deadline of `close()`. */
  closeTimeoutMs?: number | undefined
  /** When the program's work ends without `close()`, how long receipts are awaited before the rest goes to the spool. */
  linger?: number | undefined
  /**
   * No effect: producers speak ZMTP themselves and a send waits while the socket's buffer is
   * full. Accepted so that configurations written for libzmq's ZMQ_SNDHWM keep working.
   */
  sendHighWaterMark?: number | undefined
  /** Size of the shared buffer between the logging thread and the sending thread. */
  threadBufferBytes?: number | undefined
  /** With no answer from the writer this long after start, report LOGFUNNEL_ERR_CONNECT or _HANDSHAKE (0: never). */
  connectTimeoutMs?: number | undefined
  /**
   * With batches waiting and no receipt for this long (the writer stopped, restarting or
   * absent), each batch without a receipt is also copied to the spool, and so is every batch
   * sealed until receipts come again: a producer killed meanwhile loses nothing it had batched.
   * The copies stay in memory too (`onFull` applies as before). 0: never.
   */
  spoolAfterMs?: number | undefined
}

/** ProducerOptions with every default filled in (resolveProducerOptions). */
export type ResolvedProducerOptions = Resolved<Omit<ProducerOptions, 'spoolDir'>> & { spoolDir: string | undefined }

/** A producer's defaults (README.md's producer table shows them). */
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
  threadBufferBytes: 4 * MiB,
  connectTimeoutMs: 10_000,
  spoolAfterMs: 100,
  blockTimeoutMs: 10_000
})

/** Checks producer options and fills in the defaults; throws LOGFUNNEL_ERR_INVALID_OPTION naming the option. */
export function resolveProducerOptions (opts: ProducerOptions = {}): ResolvedProducerOptions {
  checkObject(opts, 'producer options')
  checkKnownKeys(opts, PRODUCER_OPTION_KEYS, 'producer')
  const endpoint = opts.endpoint ?? defaultEndpoint()
  parseEndpoint(endpoint, 'endpoint')
  const receiptEndpoint = opts.receiptEndpoint ?? receiptEndpointFor(endpoint)
  parseEndpoint(receiptEndpoint, 'receiptEndpoint')
  const onFull = opts.onFull ?? PRODUCER_DEFAULTS.onFull
  if (onFull !== 'block' && onFull !== 'drop' && onFull !== 'spool') {
    throw new InvalidOptionError(`onFull must be 'block', 'drop' or 'spool', got ${String(onFull)}`)
  }
  const spoolDir = path(opts, 'spoolDir') ?? defaultSpoolDir(endpoint)
  if (onFull === 'spool' && spoolDir === undefined) {
    throw new InvalidOptionError("onFull 'spool' needs spoolDir (required for tcp endpoints)")
  }
  const maxFrameBytes = int(opts, 'maxFrameBytes', PRODUCER_DEFAULTS.maxFrameBytes, MIN_FRAME_BYTES, MAX_FRAME_BYTES, '1 KiB and 64 MiB')
  const resolved: ResolvedProducerOptions = {
    endpoint,
    receiptEndpoint,
    onFull,
    spoolDir,
    maxFrameBytes,
    highWaterMark: int(opts, 'highWaterMark', PRODUCER_DEFAULTS.highWaterMark, ...OPTION_BOUNDS.highWaterMark),
    maxBatchBytes: int(opts, 'maxBatchBytes', Math.min(PRODUCER_DEFAULTS.maxBatchBytes, maxFrameBytes), ...OPTION_BOUNDS.maxBatchBytes),
    receiptTimeoutMs: int(opts, 'receiptTimeoutMs', PRODUCER_DEFAULTS.receiptTimeoutMs, ...OPTION_BOUNDS.receiptTimeoutMs),
    flushTimeoutMs: int(opts, 'flushTimeoutMs', PRODUCER_DEFAULTS.flushTimeoutMs, ...OPTION_BOUNDS.flushTimeoutMs),
    closeTimeoutMs: int(opts, 'closeTimeoutMs', PRODUCER_DEFAULTS.closeTimeoutMs, ...OPTION_BOUNDS.closeTimeoutMs),
    linger: int(opts, 'linger', PRODUCER_DEFAULTS.linger, ...OPTION_BOUNDS.linger),
    sendHighWaterMark: int(opts, 'sendHighWaterMark', PRODUCER_DEFAULTS.sendHighWaterMark, ...OPTION_BOUNDS.sendHighWaterMark),
    threadBufferBytes: int(opts, 'threadBufferBytes', PRODUCER_DEFAULTS.threadBufferBytes, ...OPTION_BOUNDS.threadBufferBytes),
    connectTimeoutMs: int(opts, 'connectTimeoutMs', PRODUCER_DEFAULTS.connectTimeoutMs, ...OPTION_BOUNDS.connectTimeoutMs),
    spoolAfterMs: int(opts, 'spoolAfterMs', PRODUCER_DEFAULTS.spoolAfterMs, ...OPTION_BOUNDS.spoolAfterMs),
    blockTimeoutMs: int(opts, 'blockTimeoutMs', PRODUCER_DEFAULTS.blockTimeoutMs, ...OPTION_BOUNDS.blockTimeoutMs),
    ...resolveProducerSecurity(opts)
  }
  if (resolved.maxBatchBytes > resolved.maxFrameBytes) {
    throw new InvalidOptionError(`maxBatchBytes (${resolved.maxBatchBytes}) must not exceed maxFrameBytes (${resolved.maxFrameBytes}, the writer's limit): a batch is one frame`)
  }
  if (resolved.highWaterMark < resolved.maxFrameBytes) {
    throw new InvalidOptionError(`highWaterMark (${resolved.highWaterMark}) must be at least maxFrameBytes (${resolved.maxFrameBytes}), so that the largest record fits`)
  }
  return resolved
}

function fsyncPolicy (value: unknown): FsyncPolicy {
  if (value === 'off' || value === 'batch') return value
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_FSYNC_INTERVAL_MS) return value
  throw new InvalidOptionError(`fsync must be 'off', 'batch' or an integer number of ms between 1 and ${MAX_FSYNC_INTERVAL_MS}, got ${String(value)}`)
}
