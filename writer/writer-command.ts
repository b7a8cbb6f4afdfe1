import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { curvePublicKeyFor } from '../shared/curve-keys.js'
import { UsageError } from '../shared/errors.js'
import { WRITER_DEFAULTS, type WriterOptions } from '../shared/options.js'
import { SECRET_KEY_ENV } from '../shared/security-options.js'
import { defaultEndpoint } from '../shared/endpoint.js'
import { Writer } from './writer.js'
import type { ZapDenial } from './zap-handler.js'

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
  'socket-mode': { option: 'socketMode', kind: 'mode', help: 'mode of the ipc socket files, 0600 or 0660 to let their group connect (default 0600)' },
  'curve-secret-key': { option: 'curveSecretKey', kind: 'string', help: `CURVE secret key (Z85); visible in ps: prefer --curve-secret-key-file or ${SECRET_KEY_ENV}` },
  'curve-secret-key-file': { option: 'curveSecretKey', kind: 'secret-file', help: 'file holding the CURVE secret key, or the JSON printed by logfunnel keygen' },
  'curve-allowed-keys': { option: 'curveAllowedKeys', kind: 'list', help: 'comma-separated Z85 public keys of the producers let in' },
  'curve-allowed-keys-file': { option: 'curveAllowedKeys', kind: 'list-file', help: 'file of producer public keys, one per line' }
} as const

function usage (): string {
  const rows = Object.entries(FLAGS).map(([flag, f]) => `  --${flag.padEnd(24)} ${f.help}`)
  return `usage: logfunnel writer [options]\n\n${rows.join('\n')}\n  --help                     show this help\n\n` +
    'Prints {"event":"ready",...} on stdout once bound; SIGTERM/SIGINT drain, flush, fsync and print\n' +
    '{"event":"stopped",...}; SIGHUP reopens the file.\n'
}

/**
 * Parses `logfunnel writer` flags into WriterOptions, taking the CURVE secret key from `env`
 * when no flag gives it; throws UsageError.
 */
export function parseWriterArgs (argv: string[], env: NodeJS.ProcessEnv = {}): WriterOptions | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } }
  for (const flag of Object.keys(FLAGS)) options[flag] = { type: 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel writer --help lists the flags)`)
  }
  if (values.help === true) return 'help'
  const opts: Record<string, string | number | string[]> = {}
  for (const [flag, f] of Object.entries(FLAGS)) {
    const raw = values[flag]
    if (typeof raw !== 'string') continue
    if (f.kind === 'int') {
      if (!/^\d+$/.test(raw)) throw new UsageError(`--${flag} must be a whole number, got '${raw}'`)
      opts[f.option] = Number(raw)
    } else if (f.kind === 'mode') {
      if (!/^0?[0-7]{3}$/.test(raw)) throw new UsageError(`--${flag} must be an octal mode like 0600, got '${raw}'`)
      opts[f.option] = parseInt(raw, 8)
    } else if (f.kind === 'list' || f.kind === 'list-file') {
      const text = f.kind === 'list' ? raw : readFlagFile(flag, raw)
      opts[f.option] = [...(opts[f.option] as string[] | undefined) ?? [], ...text.split(/[\s,]+/).filter(Boolean)]
    } else if (opts[f.option] !== undefined) {
      throw new UsageError(`--${flag} and --curve-secret-key give the same key; use one`)
    } else {
      opts[f.option] = f.kind === 'path' ? resolve(raw) : f.kind === 'secret-file' ? secretFromFile(flag, raw) : raw
    }
  }
  const envKey = env[SECRET_KEY_ENV]
  if (opts.curveSecretKey === undefined && envKey !== undefined && envKey !== '') opts.curveSecretKey = envKey.trim()
  return opts as WriterOptions
}

function readFlagFile (flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(err as Error).message}`)
  }
}

/** The key itself, or `logfunnel keygen`'s JSON output. */
function secretFromFile (flag: string, path: string): string {
  const text = readFlagFile(flag, path).trim()
  if (!text.startsWith('{')) return text
  try {
    return String((JSON.parse(text) as { secretKey?: unknown }).secretKey)
  } catch {
    throw new UsageError(`--${flag}: ${path} is neither a Z85 key nor logfunnel keygen's JSON`)
  }
}

/** `logfunnel writer`: runs until SIGTERM/SIGINT; exit 0 after a clean stop. */
export async function main (argv: string[]): Promise<number> {
  const parsed = parseWriterArgs(argv, process.env)
  if (parsed === 'help') {
    process.stdout.write(usage())
    return 0
  }
  const writer = new Writer({ ...parsed, file: resolve(parsed.file ?? WRITER_DEFAULTS.file) })
  writer.on('error', (err: Error & { code?: string }) => {
    process.stderr.write(JSON.stringify({ event: 'error', code: err.code, message: err.message }) + '\n')
  })
  const deniedKeys = new Set<string>()
  writer.on('denied', ({ publicKey, address }: ZapDenial) => {
    // One line per key: a refused client retries, and the summary counts every attempt.
    if (deniedKeys.has(publicKey)) return
    deniedKeys.add(publicKey)
    process.stderr.write(JSON.stringify({ event: 'denied', publicKey, address }) + '\n')
  })
  await writer.start()
  const { endpoint, receiptEndpoint, file, curveSecretKey } = writer.options
  const curve = curveSecretKey === null ? {} : { curvePublicKey: curvePublicKeyFor(curveSecretKey) }
  // Handlers first: whoever reads the ready line may signal at once, before the next statement.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  process.on('SIGHUP', () => writer.reopen())
  process.stdout.write(JSON.stringify({ event: 'ready', endpoint, receiptEndpoint, file, pid: process.pid, ...curve }) + '\n')
  await stopped
  const summary = await writer.stop()
  process.stdout.write(JSON.stringify({ event: 'stopped', ...summary }) + '\n')
  return 0
}
