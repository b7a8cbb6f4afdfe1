import { WRITER_DEFAULTS, type WriterOptions } from './options.js'
import { defaultEndpoint } from './endpoint.js'
import { SECRET_KEY_ENV } from './security-options.js'

/**
 * The one table of the writer's flags: CLI flag -> `WriterOptions` key, the kind of value, the
 * help text. `logfunnel writer` parses with it, `startWriter()` builds its arguments from it,
 * and a test holds README.md's writer table against it.
 */
export const WRITER_FLAGS = {
  file: { option: 'file', kind: 'path', help: `log file (default ${WRITER_DEFAULTS.file}; directories are created)` },
  endpoint: { option: 'endpoint', kind: 'string', help: `data endpoint to bind (default ${defaultEndpoint()})` },
  'receipt-endpoint': { option: 'receiptEndpoint', kind: 'string', help: 'receipt endpoint to bind (default: <ipc path>.receipts, or tcp port + 1)' },
  'max-frame-bytes': { option: 'maxFrameBytes', kind: 'int', help: `largest payload accepted (default ${WRITER_DEFAULTS.maxFrameBytes})` },
  'receive-high-water-mark': { option: 'receiveHighWaterMark', kind: 'int', help: `messages read and not yet handled: in all, or per connection with CURVE (default ${WRITER_DEFAULTS.receiveHighWaterMark})` },
  'drain-timeout-ms': { option: 'drainTimeoutMs', kind: 'int', help: `on stop, longest drain of queued messages and ready spool files (default ${WRITER_DEFAULTS.drainTimeoutMs})` },
  'drain-idle-ms': { option: 'drainIdleMs', kind: 'int', help: `on stop, quiet time that ends the drain (default ${WRITER_DEFAULTS.drainIdleMs})` },
  'spool-dir': { option: 'spoolDir', kind: 'path', help: 'spool directory to ingest (default <ipc path>.spool for ipc, none for tcp)' },
  'spool-endpoint': { option: 'spoolEndpoints', kind: 'list', help: 'also take spool files of this endpoint (comma-separated, repeatable): the one tcp producers dial when NAT, docker -p or a port forward puts them on another port' },
  'spool-poll-ms': { option: 'spoolPollMs', kind: 'int', help: `how often the spool directory is scanned besides watching it (default ${WRITER_DEFAULTS.spoolPollMs})` },
  'state-file': { option: 'stateFile', kind: 'path', help: 'last sequence written per producer, kept across restarts (default .<file name>.logfunnel-state.json beside the file; directories are created)' },
  'state-persist-ms': { option: 'statePersistMs', kind: 'int', help: `how often that state is saved (default ${WRITER_DEFAULTS.statePersistMs})` },
  'rotate-size': { option: 'rotateSizeBytes', kind: 'size', help: 'rotate before the file passes this size: bytes, or 512K, 100M, 2G (default off)' },
  'rotate-interval': { option: 'rotateIntervalMs', kind: 'duration', help: 'rotate at every multiple of this since the epoch (UTC): 30s, 15m, 6h, 1d (default off)' },
  'rotate-keep': { option: 'rotateKeep', kind: 'int', help: 'rotated files kept, oldest deleted first (default 0: keep all)' },
  'rotate-gzip': { option: 'rotateGzip', kind: 'boolean', help: 'gzip rotated files in the background (default off)' },
  checkpoints: { option: 'checkpoints', kind: 'boolean', help: 'write checkpoint lines (hash chain of the bytes written) at start, rotation and stop; verify --checkpoints checks them (default off)' },
  'checkpoint-interval': { option: 'checkpointIntervalMs', kind: 'duration', help: 'with --checkpoints, one more every 500ms, 10s, 5m while bytes were written (default off)' },
  'checkpoint-size': { option: 'checkpointSizeBytes', kind: 'size', help: 'with --checkpoints, one more after this many bytes: 64K, 4M (default off)' },
  'seal-key-file': { option: 'sealKeyFile', kind: 'path', help: 'with --checkpoints, seal each with a MAC from this key (logfunnel keygen --seal), evolved forward after each' },
  fsync: { option: 'fsync', kind: 'fsync', help: `off, batch (after every write; receipts wait for it) or a number of ms (default ${String(WRITER_DEFAULTS.fsync)})` },
  'socket-mode': { option: 'socketMode', kind: 'mode', help: 'mode of the ipc socket files, 0600 or 0660 to let their group connect (default 0600)' },
  'curve-secret-key': { option: 'curveSecretKey', kind: 'secret', help: `CURVE secret key (Z85); visible in ps: prefer --curve-secret-key-file or ${SECRET_KEY_ENV}` },
  'curve-secret-key-file': { option: 'curveSecretKey', kind: 'secret-file', help: 'file holding the CURVE secret key, or the JSON printed by logfunnel keygen' },
  'curve-allowed-keys': { option: 'curveAllowedKeys', kind: 'list', help: 'comma-separated Z85 public keys of the producers let in' },
  'curve-allowed-keys-file': { option: 'curveAllowedKeys', kind: 'list-file', help: 'file of producer public keys, one per line' },
  'stats-interval-ms': { option: 'statsIntervalMs', kind: 'int', help: `stats JSON line on stderr every N ms (at least 100), 0 for none; one more at stop (default ${WRITER_DEFAULTS.statsIntervalMs})` },
  'metrics-port': { option: 'metricsPort', kind: 'int', help: 'serve Prometheus metrics on http://<metrics-host>:N/metrics (default 0: off)' },
  'metrics-host': { option: 'metricsHost', kind: 'string', help: `address of the metrics endpoint (default ${WRITER_DEFAULTS.metricsHost})` },
  'pid-file': { option: 'pidFile', kind: 'path', help: 'write the pid here once ready (atomically), remove it at stop; for logrotate postrotate' }
} as const

/** What a flag's value is, and how it is parsed. */
export type FlagKind = typeof WRITER_FLAGS[keyof typeof WRITER_FLAGS]['kind']

/**
 * The flag that carries each option from `startWriter()` to the writer: the plain one where an
 * option has two (a value and a file: `--curve-secret-key`, `--curve-allowed-keys`).
 */
export const FLAG_OF_OPTION: Readonly<Record<keyof WriterOptions, string>> = Object.freeze(Object.fromEntries(
  Object.entries(WRITER_FLAGS).filter(([, f]) => !f.kind.endsWith('-file')).map(([flag, f]) => [f.option, `--${flag}`])
) as Record<keyof WriterOptions, string>)

/** A value as its flag takes it. */
export function flagValue (key: keyof WriterOptions, value: unknown): string {
  if (key === 'socketMode') return `0${(value as number).toString(8)}`
  if (Array.isArray(value)) return value.join(',')
  return String(value)
}
