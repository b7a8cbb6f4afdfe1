import { fstatSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { InvalidOptionError, UsageError } from '../shared/errors.js'
import { WRITER_DEFAULTS, type WriterOptions } from '../shared/options.js'
import { WRITER_FLAGS, type FlagKind } from '../shared/writer-flags.js'
import { parseDuration, parseSize } from '../shared/units.js'
import { curvePublicKeyFor } from '../shared/curve-keys.js'
import { SECRET_KEY_ENV } from '../shared/security-options.js'
import type { ZapDenial } from '../writer/zap-handler.js'
import type { StatsLine } from '../writer/stats.js'
import { Writer, type WriterHooks } from '../writer/writer.js'
import { checkPidFileDir, removePidFile, writePidFile } from '../writer/pid-file.js'
import { releaseSignals } from './early-signals.js'

/** Flags of the command itself, not of the Writer: the process's lifetime. */
const PROCESS_FLAGS = {
  'exit-with-parent': { kind: 'boolean', help: 'stop (drain, write, fsync, exit 0) when the process that started the writer is gone: stdin reaches EOF or the parent pid changes (startWriter() sets it)' }
} as const

/** The placeholder shown in --help for each kind of value. */
const PLACEHOLDERS: Record<string, string> = {
  path: 'PATH', string: 'VALUE', int: 'N', size: 'SIZE', duration: 'DURATION', fsync: 'POLICY', mode: 'MODE', secret: 'KEY', 'secret-file': 'PATH', list: 'KEYS', 'list-file': 'PATH', boolean: ''
}
const FLAG_PLACEHOLDERS: Record<string, string> = { endpoint: 'ENDPOINT', 'receipt-endpoint': 'ENDPOINT', 'metrics-host': 'HOST', 'metrics-port': 'PORT' }

/** The writer flags with the options they set. */
export interface WriterArgs {
  options: WriterOptions
  /** `--exit-with-parent`. */
  exitWithParent: boolean
}

function usage (): string {
  const all: Array<[string, { kind: string, help: string }]> = [...Object.entries(WRITER_FLAGS), ...Object.entries(PROCESS_FLAGS)]
  const rows = all.map(([flag, f]) => {
    const value = FLAG_PLACEHOLDERS[flag] ?? PLACEHOLDERS[f.kind] ?? 'VALUE'
    return `  ${`--${flag}${value === '' ? '' : ' ' + value}`.padEnd(34)} ${f.help}`
  })
  return `usage: logfunnel writer [options]\n\n${rows.join('\n')}\n  ${'-h, --help'.padEnd(34)} show this help\n\n` +
    'Prints {"event":"ready",...} on stdout once bound; SIGTERM/SIGINT drain, flush, fsync and print\n' +
    '{"event":"stopped",...}; SIGHUP reopens the file. Stats lines {"event":"stats",...} go to stderr.\n'
}

/**
 * Parses `logfunnel writer` flags into WriterOptions, taking the CURVE secret key from `env`
 * when no flag gives it; throws UsageError.
 */
export function parseWriterArgs (argv: string[], env: NodeJS.ProcessEnv = {}): WriterArgs | 'help' {
  const options: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } }
  // A list flag may be given more than once (--spool-endpoint A --spool-endpoint B): each adds to it.
  for (const [flag, f] of Object.entries(WRITER_FLAGS)) options[flag] = { type: f.kind === 'boolean' ? 'boolean' : 'string', ...(f.kind === 'list' ? { multiple: true } : {}) }
  for (const flag of Object.keys(PROCESS_FLAGS)) options[flag] = { type: 'boolean' }
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel writer --help lists the flags)`)
  }
  if (values.help === true) return 'help'
  const opts: Record<string, string | number | boolean | string[]> = {}
  for (const [flag, f] of Object.entries(WRITER_FLAGS)) {
    const given = values[flag]
    const raw = Array.isArray(given) ? given.join(',') : given
    if (raw === true) opts[f.option] = true
    if (typeof raw !== 'string') continue
    if (f.kind === 'list' || f.kind === 'list-file') {
      const text = f.kind === 'list' ? raw : readFlagFile(flag, raw)
      opts[f.option] = [...(opts[f.option] as string[] | undefined) ?? [], ...text.split(/[\s,]+/).filter(Boolean)]
    } else if (f.kind === 'secret' || f.kind === 'secret-file') {
      if (opts[f.option] !== undefined) throw new UsageError(`--${flag} and --curve-secret-key give the same key; use one`)
      opts[f.option] = f.kind === 'secret-file' ? secretFromFile(flag, raw) : raw
    } else {
      opts[f.option] = parseValue(f.kind, raw, `--${flag}`)
    }
  }
  const envKey = env[SECRET_KEY_ENV]
  if (opts.curveSecretKey === undefined && envKey !== undefined && envKey !== '') opts.curveSecretKey = envKey.trim()
  return { options: opts as WriterOptions, exitWithParent: values['exit-with-parent'] === true }
}

function parseValue (kind: FlagKind, raw: string, flag: string): string | number {
  switch (kind) {
    case 'int':
      if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be a whole number, got '${raw}'`)
      return Number(raw)
    case 'size': return parseSize(raw, flag)
    case 'duration': return parseDuration(raw, flag)
    case 'fsync':
      if (raw === 'off' || raw === 'batch') return raw
      if (!/^\d+(ms|s|m|h|d)?$/.test(raw)) throw new UsageError(`${flag} must be off, batch or an interval like 250 (ms) or 1s, got '${raw}'`)
      return parseDuration(raw, flag)
    case 'mode':
      if (!/^0?[0-7]{3}$/.test(raw)) throw new UsageError(`${flag} must be an octal mode like 0600, got '${raw}'`)
      return parseInt(raw, 8)
    case 'path':
      // resolve('') is the working directory: `--file ""` (an unset shell variable) would write there.
      if (raw === '') throw new UsageError(`${flag} must be a path, got ''`)
      return resolve(raw)
    default: return raw
  }
}

/**
 * Runs `make`; an option it refuses is named by its flag too: `maxFrameBytes (--max-frame-bytes)
 * must be ...`. Before, only the API's name, which is not what an operator typed.
 */
function withFlagNames<T> (make: () => T): T {
  try {
    return make()
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err
    const named = Object.entries(WRITER_FLAGS).find(([, f]) => err.message.startsWith(`${f.option} `))
    throw named === undefined ? err : new InvalidOptionError(`${named[1].option} (--${named[0]})${err.message.slice(named[1].option.length)}`)
  }
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

/**
 * `logfunnel writer`: runs until SIGTERM/SIGINT (or, with --exit-with-parent, until its parent
 * is gone); exit 0 after a clean stop. A signal before ready ends the start (what came in
 * meanwhile is written, as in a stop): exit 1.
 */
export async function main (argv: string[]): Promise<number> {
  return await runWriter(argv)
}

/** `main` with the Writer's test hooks (test/fixtures/slow-writer.ts). */
export async function runWriter (argv: string[], hooks: WriterHooks = {}): Promise<number> {
  const parsed = parseWriterArgs(argv, process.env)
  if (parsed === 'help') {
    process.stdout.write(usage())
    return 0
  }
  // A reader of stdout/stderr that went away (a dead parent, a closed pipe) must not take the
  // writer down: it goes on writing the file, and says nothing more there.
  // Refused before anything is bound or opened, as a bad flag is.
  if (parsed.options.pidFile !== undefined) checkPidFileDir(parsed.options.pidFile)
  const out = quietOnError(process.stdout)
  const err = quietOnError(process.stderr)
  const writer = withFlagNames(() => new Writer({ ...parsed.options, file: resolve(parsed.options.file ?? WRITER_DEFAULTS.file) }, hooks))
  writer.on('error', (e: Error & { code?: string, op?: string, fsCode?: string, retryInMs?: number }) => {
    const { code, message, op, fsCode, retryInMs } = e
    err(JSON.stringify({ event: 'error', code, message, op, fsCode, retryInMs }))
  })
  writer.on('warning', (event: object) => err(JSON.stringify(event)))
  writer.on('stats', (line: StatsLine) => err(JSON.stringify(line)))
  const deniedKeys = new Set<string>()
  writer.on('denied', ({ publicKey, address }: ZapDenial) => {
    // One line per key: a refused client retries, and the summary counts every attempt.
    if (deniedKeys.has(publicKey)) return
    deniedKeys.add(publicKey)
    err(JSON.stringify({ event: 'denied', publicKey, address }))
  })
  // Handlers first, so a signal right after the ready line is never the default (kill).
  // A repeated SIGTERM during the drain does not cut the stop short.
  let stopReason: string | undefined
  const stopped = new Promise<void>((resolve) => {
    const stop = (reason: string): void => {
      stopReason ??= reason
      resolve()
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    // Those that came while the modules loaded (bin.ts held them); SIGHUP then has nothing to reopen.
    for (const signal of releaseSignals()) if (signal !== 'SIGHUP') stop(signal)
    if (parsed.exitWithParent) watchParent(() => stop('parent gone'))
  })
  process.on('SIGHUP', () => writer.reopen())
  // Node's default for SIGUSR1 opens its inspector on 127.0.0.1:9229, where any local user can
  // run code as the writer: a logrotate postrotate copied from nginx's (kill -USR1) did that.
  process.on('SIGUSR1', () => err(JSON.stringify({ event: 'signal-ignored', signal: 'SIGUSR1', hint: 'SIGHUP reopens the file; the inspector is not opened by a signal here (start node with --inspect to debug)' })))
  for (const event of ['resumed', 'recovered', 'moved']) {
    writer.on(event, (info: object) => err(JSON.stringify({ event, ...info })))
  }
  const starting = writer.start()
  const started = await Promise.race([starting.then(() => true), stopped.then(() => false)])
  if (!started) {
    err(`logfunnel: LOGFUNNEL_ERR_WRITER_START: ${stopReason ?? 'stopped'} before the writer was ready`)
    // start() goes on (it may already receive): once it ends, stop what it started, so that
    // what came in meanwhile is written and the process ends.
    if (await starting.then(() => true, () => false)) await writer.stop()
    return 1
  }
  const { endpoint, receiptEndpoint, file, curveSecretKey, pidFile } = writer.options
  if (pidFile !== undefined) {
    try {
      writePidFile(pidFile, process.pid)
    } catch (e) {
      await writer.stop()
      throw e
    }
  }
  const curve = curveSecretKey === null ? {} : { curvePublicKey: curvePublicKeyFor(curveSecretKey) }
  const metrics = writer.metricsUrl
  out(JSON.stringify({ event: 'ready', endpoint, receiptEndpoint, file, pid: process.pid, ...curve, ...(metrics === undefined ? {} : { metrics }) }))
  await stopped
  const summary = await writer.stop()
  if (pidFile !== undefined) removePidFile(pidFile)
  out(JSON.stringify({ event: 'stopped', reason: stopReason, ...summary }))
  // Lines a reader has not taken (a full pipe nobody reads) would keep the process alive for
  // ever: Node ends only once they are written. The file is done; they get STDIO_DRAIN_MS.
  await stdioDrained(STDIO_DRAIN_MS)
  // Ended here rather than by an empty event loop: Node's teardown gives SIGTERM and SIGINT back
  // their default action, and one more (a service manager's second SIGTERM) killed a writer
  // that had stopped cleanly: exit status 143 (2 of 24 runs of two signals 5 ms apart).
  process.exit(0)
}

/**
 * How long a stopped writer waits for stdout and stderr to take what it printed. Before, with
 * stderr a pipe nobody read (4 KiB of stats lines), the writer printed its stopped line and
 * never exited: a service manager waited its stop timeout, then SIGKILLed it.
 */
const STDIO_DRAIN_MS = 1000

async function stdioDrained (deadlineMs: number): Promise<boolean> {
  const pending = (): boolean => [process.stdout, process.stderr].some((s) => !s.destroyed && s.writableLength > 0)
  const until = performance.now() + deadlineMs
  while (pending() && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  return !pending()
}

/**
 * Bytes of stdout/stderr lines waiting for their reader past which further lines are dropped: a
 * reader that stopped reading (a full pipe) must not make the writer hold every stats line.
 */
const MAX_PENDING_STDIO_BYTES = 1024 * 1024

/**
 * A line writer for stdout/stderr that ignores EPIPE/EBADF and anything after them, and drops
 * lines while MAX_PENDING_STDIO_BYTES wait for a reader that does not read.
 */
function quietOnError (stream: NodeJS.WriteStream): (line: string) => void {
  stream.on('error', () => {})
  return (line) => {
    if (stream.destroyed || !stream.writable || stream.writableLength > MAX_PENDING_STDIO_BYTES) return
    try {
      stream.write(line + '\n')
    } catch {}
  }
}

/** How often the parent pid is compared: an orphan is noticed within this long. */
const PARENT_CHECK_MS = 500

/**
 * Calls `gone` once the parent is: stdin (a pipe the parent holds open) reaches EOF, or the
 * parent pid changes (the process was reparented). Both survive a SIGKILL of the parent.
 */
function watchParent (gone: () => void): void {
  const parentPid = process.ppid
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) gone()
  }, PARENT_CHECK_MS)
  timer.unref()
  let stdinIsPipe = false
  try {
    const st = fstatSync(0)
    stdinIsPipe = st.isFIFO() || st.isSocket()
  } catch {}
  if (!stdinIsPipe) return
  process.stdin.on('data', () => {})
  process.stdin.on('end', gone)
  process.stdin.on('error', gone)
  process.stdin.unref?.()
}
