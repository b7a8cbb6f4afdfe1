import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { LogfunnelError, WriterStartError, WriterStopError } from '../shared/errors.js'
import { checkKnownKeys, checkObject, deadline } from '../shared/option-values.js'
import { resolveWriterOptions, WRITER_OPTION_KEYS, type WriterOptions } from '../shared/options.js'
import { SECRET_KEY_ENV } from '../shared/security-options.js'
import { FLAG_OF_OPTION, flagValue } from '../shared/writer-flags.js'
import { readJsonLines } from '../shared/json-lines.js'
import type { StoppedLine } from '../shared/summary.js'
import { moduleBase } from '../shared/module-base.js'

/** The key of `globalThis.__bundlerPathsOverrides` naming the CLI startWriter() runs (pino's convention for bundles, as for the sender thread). */
export const WRITER_CLI_KEY = 'logfunnel-cli'

/**
 * The CLI the writer runs: where `globalThis.__bundlerPathsOverrides` says, else `../cli/bin.js`
 * from this module; found when startWriter() is called, not as a (CommonJS) bundle loads
 * (module-base.ts). Throws LOGFUNNEL_ERR_MISSING_DEPENDENCY when there is no such file: in an
 * application bundled into one file that is a path beside the bundle's directory. Before, the
 * child node failed with `Cannot find module '/srv/cli/bin.js'`, which startWriter() passed on as
 * LOGFUNNEL_ERR_WRITER_START "writer exited with code 1 before it was ready", naming neither the
 * bundle nor what to do.
 */
function bin (): string {
  const overrides = (globalThis as { __bundlerPathsOverrides?: Record<string, unknown> }).__bundlerPathsOverrides
  const override = overrides?.[WRITER_CLI_KEY]
  const file = typeof override === 'string'
    ? (override.startsWith('file:') ? fileURLToPath(override) : override)
    : fileURLToPath(new URL('../cli/bin.js', moduleBase(import.meta.url)))
  if (existsSync(file)) return file
  const where = typeof override === 'string' ? `globalThis.__bundlerPathsOverrides['${WRITER_CLI_KEY}'] names` : 'it looks for the writer\'s CLI at'
  throw new LogfunnelError('LOGFUNNEL_ERR_MISSING_DEPENDENCY',
    `startWriter() cannot start the writer: ${where} ${file}, and there is no such file. The writer runs logfunnel's CLI ` +
    'from the installed package (it needs ZeroMQ\'s native addon), which a bundle does not hold: install logfunnel beside ' +
    `the bundle and set globalThis.__bundlerPathsOverrides['${WRITER_CLI_KEY}'] to node_modules/logfunnel/dist/cli/bin.js, ` +
    'or leave logfunnel out of the bundle (external), or start the writer on its own (logfunnel writer); see docs/producer.md#bundlers')
}

/** The tail of the child's stderr kept for error messages; the writer prints a stats line every interval for as long as it runs. */
const STDERR_TAIL_CHARS = 16 * 1024

/** startWriter()'s options: the writer's, and how long to wait for it to be ready. */
export interface StartWriterOptions extends WriterOptions {
  /** Deadline for the ready line, in ms, 1 to 3600000 (default 10000); past it LOGFUNNEL_ERR_WRITER_START. */
  startTimeoutMs?: number | undefined
}

/** The writer's `{"event":"stopped",...}` line. */
export type StoppedSummary = StoppedLine

export interface RunningWriter {
  endpoint: string
  receiptEndpoint: string
  /** The writer's CURVE public key (for producers' `curveServerKey`), when CURVE is on. */
  curvePublicKey?: string
  file: string
  pid: number
  /**
   * SIGTERM, then waits for the summary and the exit. Rejects with LOGFUNNEL_ERR_WRITER_STOP
   * after `deadlineMs` (1 to 3600000, default 30000; another value rejects with
   * LOGFUNNEL_ERR_INVALID_OPTION and signals nothing) (the child is then killed), and at once when the writer exits without a
   * summary (it had already died, e.g. by SIGKILL). Calling it again returns the first call's
   * outcome.
   */
  stop: (deadlineMs?: number) => Promise<StoppedSummary>
}

/**
 * Spawns `logfunnel writer` as a child process and resolves once it is bound and ready; for a
 * pool parent or a `node:cluster` primary. Rejects with LOGFUNNEL_ERR_WRITER_START (with the
 * child's stderr) when it exits first or is not ready within `startTimeoutMs` (default 10 s), and
 * with LOGFUNNEL_ERR_MISSING_DEPENDENCY, spawning nothing, when the CLI's file is not there (a
 * bundle: see `__bundlerPathsOverrides['logfunnel-cli']`).
 *
 * @example
 * ```ts
 * const writer = await startWriter({ file: './logs/app.log' })
 * // fork workers with writer.endpoint ...
 * const summary = await writer.stop()
 * ```
 */
export async function startWriter (opts: StartWriterOptions = {}): Promise<RunningWriter> {
  // Bad options fail here, in the API's terms, before a process is spawned.
  checkObject(opts, 'startWriter() options')
  checkKnownKeys(opts, [...WRITER_OPTION_KEYS, 'startTimeoutMs'], 'startWriter()')
  const { startTimeoutMs: _startTimeoutMs, ...writerOptions } = opts
  resolveWriterOptions(writerOptions)
  const startTimeoutMs = deadline(opts.startTimeoutMs, 'startTimeoutMs', 10_000)
  // The writer ends with this process: it stops gracefully once the stdin pipe held here
  // reaches EOF, which happens however this process ends (exit, crash, SIGKILL).
  const args = [bin(), 'writer', '--exit-with-parent']
  const env = { ...process.env }
  delete env[SECRET_KEY_ENV]
  for (const [key, flag] of Object.entries(FLAG_OF_OPTION)) {
    const value = opts[key as keyof WriterOptions]
    if (value === undefined || value === null || value === false) continue
    if (key === 'curveSecretKey') env[SECRET_KEY_ENV] = value as string
    else if (value === true) args.push(flag)
    // --flag=value: a value may start with '-' (a Z85 key can), which a separate argument would make ambiguous
    else args.push(`${flag}=${flagValue(key as keyof WriterOptions, value)}`)
  }
  const child = spawnWriter(args, env)
  child.stdin.on('error', () => {})
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS) })
  const lines = jsonLines(child.stdout)
  const exited = once(child, 'exit')
  // 'close' comes after the exit and after the last of stdout was read: by then a stopped line
  // the writer printed has been seen.
  const closed = once(child, 'close').then(([code, signal]) => code === null ? `signal ${String(signal)}` : `code ${String(code)}`)
  closed.catch(() => {})

  let timer: NodeJS.Timeout | undefined
  const ready = await Promise.race([
    lines.next('ready'),
    exited.then(([code]) => { throw new WriterStartError(`writer exited with code ${String(code)} before it was ready: ${stderr.trim()}`) }),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new WriterStartError(`writer not ready within ${startTimeoutMs} ms: ${stderr.trim()}`)), startTimeoutMs)
    })
  ]).catch((err: Error) => {
    child.kill('SIGKILL')
    throw err
  }).finally(() => clearTimeout(timer))

  // A program that forgets stop() still ends by itself; its writer then stops on its own.
  const handles = [child, child.stdin, child.stdout, child.stderr] as Handle[]
  let stopping: Promise<StoppedSummary> | undefined
  for (const handle of handles) handle.unref()

  return {
    endpoint: ready.endpoint,
    receiptEndpoint: ready.receiptEndpoint,
    ...(ready.curvePublicKey === undefined ? {} : { curvePublicKey: ready.curvePublicKey }),
    file: ready.file,
    pid: ready.pid,
    stop: async (deadlineMs?: number) => {
      // A bad deadline is refused before the SIGTERM: a timer firing at once would SIGKILL the writer mid-drain.
      const ms = deadline(deadlineMs, 'stop() deadlineMs', 30_000)
      // The writer stops once: a second call (or one made meanwhile) gets the first one's outcome.
      stopping ??= stopChild(child, lines, closed, handles, ms, () => stderr.trim())
      return await stopping
    }
  }
}

interface Handle { ref: () => void, unref: () => void }

/**
 * SIGTERM, then the exit within `deadlineMs`, resolving with the `stopped` line. A writer that
 * ended without one (killed by an operator or the OOM killer, before stop() or during it) gives
 * nothing more to wait for: that rejects at once. One that ended by itself after its summary (a
 * SIGTERM from elsewhere) resolves with that summary.
 */
async function stopChild (child: ChildProcess, lines: JsonLines, closed: Promise<string>, handles: Handle[], deadlineMs: number, stderr: () => string): Promise<StoppedSummary> {
  const alreadyExited = child.exitCode !== null || child.signalCode !== null
  for (const handle of handles) handle.ref()
  if (!alreadyExited) child.kill('SIGTERM')
  let stopTimer: NodeJS.Timeout | undefined
  try {
    const status = await Promise.race([
      closed,
      new Promise<never>((_resolve, reject) => {
        stopTimer = setTimeout(() => reject(new WriterStopError(`writer did not stop within ${deadlineMs} ms`)), deadlineMs)
      })
    ])
    const summary = lines.take('stopped')
    if (summary !== undefined) return summary as StoppedSummary
    const tail = stderr() === '' ? '' : `: ${stderr()}`
    throw new WriterStopError(`writer ${alreadyExited ? 'had already exited' : 'exited'} (${status}) without a stopped line${tail}`)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(stopTimer)
  }
}

interface JsonLines {
  /** Resolves with the next line of that event. */
  next: (event: string) => Promise<any>
  /** The first line of that event seen so far and not taken, if any. */
  take: (event: string) => any
}

/** JSON lines of a stream; `next(event)` resolves with the next line of that event. */
function jsonLines (stream: NodeJS.ReadableStream): JsonLines {
  const seen: any[] = []
  const waiting = new Map<string, (line: any) => void>()
  readJsonLines(stream, (line: any) => {
    const resolve = waiting.get(line?.event)
    if (resolve !== undefined) {
      waiting.delete(line.event)
      resolve(line)
    } else {
      seen.push(line)
    }
  })
  const take = (event: string): any => {
    const i = seen.findIndex((line) => line?.event === event)
    return i === -1 ? undefined : seen.splice(i, 1)[0]
  }
  return {
    next: async (event) => take(event) ?? await new Promise((resolve) => waiting.set(event, resolve)),
    take
  }
}

/**
 * The writer's process. Node's permission model without --allow-child-process refuses it
 * (ERR_ACCESS_DENIED, thrown at once): said in the writer's terms. Before, Node's bare
 * "Access to this API has been restricted".
 */
function spawnWriter (args: string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  try {
    return spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_ACCESS_DENIED') throw err
    throw new WriterStartError('the writer process cannot start: Node\'s permission model (--experimental-permission, ' +
      '--permission) allows this process no child processes. Run node with --allow-child-process, or start the writer ' +
      'on its own (logfunnel writer) and give the producers its endpoint', { cause: err })
  }
}
