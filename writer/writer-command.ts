import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '../shared/errors.js'
import { WRITER_DEFAULTS, type WriterOptions } from '../shared/options.js'
import { defaultEndpoint } from '../shared/endpoint.js'
import type { StatsLine } from './stats.js'
import { Writer } from './writer.js'

/** CLI flag -> option, with its value kind. The README's writer table lists the same. */
const FLAGS = {
  file: { option: 'file', kind: 'path', help: `log file (default ${WRITER_DEFAULTS.file}; directories are created)` },
  endpoint: { option: 'endpoint', kind: 'string', help: `data endpoint to bind (default ${defaultEndpoint()})` },
  'receipt-endpoint': { option: 'receiptEndpoint', kind: 'string', help: 'receipt endpoint to bind (default: <ipc path>.receipts, or tcp port + 1)' },
  'max-frame-bytes': { option: 'maxFrameBytes', kind: 'int', help: `largest payload accepted (default ${WRITER_DEFAULTS.maxFrameBytes})` },
  'receive-high-water-mark': { option: 'receiveHighWaterMark', kind: 'int', help: `messages queued per producer connection, ZMQ_RCVHWM (default ${WRITER_DEFAULTS.receiveHighWaterMark})` },
  'drain-timeout-ms': { option: 'drainTimeoutMs', kind: 'int', help: `on stop, longest drain of queued messages (default ${WRITER_DEFAULTS.drainTimeoutMs})` },
  'drain-idle-ms': { option: 'drainIdleMs', kind: 'int', help: `on stop, quiet time that ends the drain (default ${WRITER_DEFAULTS.drainIdleMs})` },
  'slow-batch-ms': { option: 'slowBatchMs', kind: 'int', help: 'testing aid: pause after each batch (default 0)' },
  'stats-interval-ms': { option: 'statsIntervalMs', kind: 'int', help: `stats JSON line on stderr every N ms, 0 for none; one more at stop (default ${WRITER_DEFAULTS.statsIntervalMs})` },
  'metrics-port': { option: 'metricsPort', kind: 'int', help: 'serve Prometheus metrics on http://<metrics-host>:N/metrics (default 0: off)' },
  'metrics-host': { option: 'metricsHost', kind: 'string', help: `address of the metrics endpoint (default ${WRITER_DEFAULTS.metricsHost})` }
} as const

function usage (): string {
  const rows = Object.entries(FLAGS).map(([flag, f]) => `  --${flag.padEnd(24)} ${f.help}`)
  return `usage: logfunnel writer [options]\n\n${rows.join('\n')}\n  --help                     show this help\n\n` +
    'Prints {"event":"ready",...} on stdout once bound; SIGTERM/SIGINT drain, flush, fsync and print\n' +
    '{"event":"stopped",...}; SIGHUP reopens the file. Stats lines {"event":"stats",...} go to stderr.\n'
}

/** Parses `logfunnel writer` flags into WriterOptions; throws UsageError. */
export function parseWriterArgs (argv: string[]): WriterOptions | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } }
  for (const flag of Object.keys(FLAGS)) options[flag] = { type: 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel writer --help lists the flags)`)
  }
  if (values.help === true) return 'help'
  const opts: Record<string, string | number> = {}
  for (const [flag, f] of Object.entries(FLAGS)) {
    const raw = values[flag]
    if (typeof raw !== 'string') continue
    if (f.kind === 'int') {
      if (!/^\d+$/.test(raw)) throw new UsageError(`--${flag} must be a whole number, got '${raw}'`)
      opts[f.option] = Number(raw)
    } else {
      opts[f.option] = f.kind === 'path' ? resolve(raw) : raw
    }
  }
  return opts as WriterOptions
}

/** `logfunnel writer`: runs until SIGTERM/SIGINT; exit 0 after a clean stop. */
export async function main (argv: string[]): Promise<number> {
  const parsed = parseWriterArgs(argv)
  if (parsed === 'help') {
    process.stdout.write(usage())
    return 0
  }
  const writer = new Writer({ ...parsed, file: resolve(parsed.file ?? WRITER_DEFAULTS.file) })
  writer.on('error', (err: Error & { code?: string }) => {
    process.stderr.write(JSON.stringify({ event: 'error', code: err.code, message: err.message }) + '\n')
  })
  writer.on('stats', (line: StatsLine) => process.stderr.write(JSON.stringify(line) + '\n'))
  await writer.start()
  // Before the ready line: a parent may send SIGTERM as soon as it reads it, and Node's default
  // for a signal without a listener is to die at once.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  process.on('SIGHUP', () => writer.reopen())
  const { endpoint, receiptEndpoint, file } = writer.options
  const metrics = writer.metricsUrl
  process.stdout.write(JSON.stringify({ event: 'ready', endpoint, receiptEndpoint, file, pid: process.pid, ...(metrics === undefined ? {} : { metrics }) }) + '\n')

  await stopped
  const summary = await writer.stop()
  process.stdout.write(JSON.stringify({ event: 'stopped', ...summary }) + '\n')
  return 0
}
