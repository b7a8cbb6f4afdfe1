/**
 * rsyslogd as a peer and as a test fixture: the byte-exact settings of docs/shipping.md in one
 * place, and a non-daemon rsyslogd with its own config, work directory and pid file in a temp
 * directory (never the system's). The bench strategy `rsyslog` and test/helpers/rsyslog.ts both
 * build their configs from here.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { benchError } from './child.js'

/** Debian's rsyslogd (package `rsyslog`). */
export const RSYSLOGD = '/usr/sbin/rsyslogd'

/** Output kept for failure messages. */
const KEEP_OUTPUT_CHARS = 4000
/** Between SIGTERM and SIGKILL when a failed run is cleaned up. */
const KILL_GRACE_MS = 2000
/** How often a deadline-bounded poll looks again. */
const POLL_MS = 5

/** True when rsyslogd is installed here (an executable at RSYSLOGD). */
export function haveRsyslogd (): boolean {
  try {
    accessSync(RSYSLOGD, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The `global()` line that keeps lines byte-exact (docs/shipping.md): a work directory of the
 * instance's own, messages up to `maxMessageSize` whole (a longer one is cut in two, a newline
 * the source did not have), and control characters left as they are (not rewritten as `#011`).
 */
export function byteExactGlobal (workDir: string, maxMessageSize = '64k'): string {
  return `global(workDirectory="${workDir}" maxMessageSize="${maxMessageSize}" parser.escapeControlCharactersOnReceive="off")`
}

/** The message text alone, no syslog header: for lines that arrive with one (RFC 5424 from omfwd). */
export const MSG_ONLY_TEMPLATE = 'template(name="msgOnly" type="string" string="%msg%\\n")'

/**
 * The received text as it came, no header parsed off: for lines sent bare over TCP (pino's
 * JSON lines have no syslog header, and the RFC 3164 parser would take `{"level":` for a tag).
 */
export const RAW_MSG_TEMPLATE = 'template(name="rawMsg" type="string" string="%rawmsg%\\n")'

/** What a bare-lines rsyslogd listens on and writes. */
export interface RawLinesConfig {
  workDir: string
  /** imtcp binds port 0 on 127.0.0.1 and writes the port it got here: the readiness signal. */
  portFile: string
  /** omfile's output: every line received, in the order received per connection. */
  file: string
  maxMessageSize: string
}

/**
 * imtcp on loopback (newline framing: a line that starts with `{` is never taken for an octet
 * count) -> one ruleset queue with one worker -> omfile with the raw template. The input is
 * bound to its own ruleset, so rsyslogd's own messages (start, stop) never reach the file.
 */
export function rawLinesConfig (c: RawLinesConfig): string {
  return `${byteExactGlobal(c.workDir, c.maxMessageSize)}
module(load="imtcp")
${RAW_MSG_TEMPLATE}
main_queue(queue.workerThreads="1")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${c.portFile}" ruleset="lines")
ruleset(name="lines" queue.type="linkedList" queue.workerThreads="1") {
    action(type="omfile" file="${c.file}" template="rawMsg")
}
`
}

/** Resolves true when something accepts a TCP connection on `host:port`, false when refused. */
export async function accepts (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** The argv of a non-daemon rsyslogd: `-n` stays in the foreground, `-i` a pid file of its own, not /run's. */
export function rsyslogdArgs (conf: string, pidFile: string): string[] {
  return ['-n', '-f', conf, '-i', pidFile]
}

/** A running rsyslogd started by `startRawLinesRsyslogd`. */
export interface RunningRsyslogd {
  pid: number
  /** The loopback port imtcp listens on. */
  port: number
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>
  /** SIGTERM (rsyslogd drains its queues and exits 0); rejects with LOGFUNNEL_ERR_BENCH on another exit or after `deadlineMs` (it is then killed). */
  stop: (deadlineMs: number) => Promise<void>
  /** SIGTERM, SIGKILL after a grace period; resolves once it has exited. For cleanup after a failure. */
  kill: () => Promise<void>
}

export interface RawLinesOptions {
  /** Its directory: config, pid file, port file and work directory go here. */
  dir: string
  /** The file it writes. */
  file: string
  /** The longest line it must keep whole, in bytes (the config allows at least 64 KiB). */
  maxLineBytes: number
  /** Until imtcp listens. */
  readyDeadlineMs: number
}

/**
 * Starts rsyslogd with `rawLinesConfig` in `dir` and resolves once imtcp listens (its port
 * file is written, polled with a deadline). Rejects with `LOGFUNNEL_ERR_BENCH`, after killing
 * it, when it exits or misses the deadline.
 *
 * @example
 * ```ts
 * const rsyslogd = await startRawLinesRsyslogd({ dir, file: join(dir, 'app.log'), maxLineBytes: 2048, readyDeadlineMs: 10_000 })
 * // connect to 127.0.0.1:rsyslogd.port, write lines, then:
 * await rsyslogd.stop(10_000)
 * ```
 */
export async function startRawLinesRsyslogd (options: RawLinesOptions): Promise<RunningRsyslogd> {
  const workDir = join(options.dir, 'rsyslog-work')
  mkdirSync(workDir)
  const portFile = join(options.dir, 'rsyslog.port')
  const conf = join(options.dir, 'rsyslog.conf')
  const maxMessageSize = `${Math.max(64, Math.ceil(options.maxLineBytes * 2 / 1024))}k`
  writeFileSync(conf, rawLinesConfig({ workDir, portFile, file: options.file, maxMessageSize }))
  const proc = spawn(RSYSLOGD, rsyslogdArgs(conf, join(options.dir, 'rsyslog.pid')), { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-KEEP_OUTPUT_CHARS) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1))
    // A spawn failure (ENOENT) emits 'error' and maybe no 'exit'.
    proc.once('error', (err) => { output += String(err); resolve('spawn error') })
  })
  const describe = (): string => `rsyslogd (pid ${proc.pid ?? '-'}, ${conf})${output.length > 0 ? `; output:\n${output}` : ''}`
  const kill = async (): Promise<void> => await killProcess(proc, exited)
  const port = await waitForPort(portFile, proc, options.readyDeadlineMs).catch(async (err: Error) => {
    await kill()
    throw benchError(`${err.message}: ${describe()}`)
  })
  return {
    pid: proc.pid ?? -1,
    port,
    exited,
    kill,
    stop: async (deadlineMs) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const code = await Promise.race([exited, new Promise<'deadline'>((resolve) => { timer = setTimeout(() => resolve('deadline'), deadlineMs) })])
      clearTimeout(timer)
      if (code === 'deadline') {
        await kill()
        throw benchError(`rsyslogd did not exit within ${deadlineMs} ms of SIGTERM: ${describe()}`)
      }
      if (code !== 0) throw benchError(`rsyslogd exited with ${String(code)}: ${describe()}`)
    }
  }
}

async function waitForPort (portFile: string, proc: ChildProcess, deadlineMs: number): Promise<number> {
  const end = performance.now() + deadlineMs
  while (performance.now() < end) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`rsyslogd exited with ${String(proc.exitCode ?? proc.signalCode)} before listening`)
    let text = ''
    try { text = readFileSync(portFile, 'utf8') } catch {}
    const port = Number(text.trim())
    if (text.trim() !== '' && Number.isInteger(port) && port > 0) return port
    await delay(POLL_MS)
  }
  throw new Error(`rsyslogd did not write its port to ${portFile} within ${deadlineMs} ms`)
}

async function killProcess (proc: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), KILL_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/** A file's size, 0 while it does not exist. */
export function sizeOf (file: string): number {
  try { return statSync(file).size } catch { return 0 }
}

/** When a file first reached a size, with what the probe read at that moment. */
export interface Growth<T> { at: number, size: number, probe: T }

/**
 * Watches a file grow from now on by polling its size every `pollMs`, and tells when it first
 * held at least so many bytes: the end of a run whose writer gives no receipt (rsyslog).
 * `probe` is read with every size seen to change (the run's CPU counters at that moment), so
 * that what is measured stops where the run ends, not when the harness learns it.
 */
export class FileGrowth<T> {
  readonly #file: string
  readonly #probe: () => T
  #size = 0
  #lastGrowthAt = performance.now()
  #samples: Array<Growth<T>> = []
  #timer: NodeJS.Timeout

  constructor (file: string, probe: () => T, pollMs = 2) {
    this.#file = file
    this.#probe = probe
    this.#timer = setInterval(() => this.#poll(), pollMs)
  }

  #poll (): void {
    const size = sizeOf(this.#file)
    if (size === this.#size) return
    const at = performance.now()
    this.#size = size
    this.#lastGrowthAt = at
    this.#samples.push({ at, size, probe: this.#probe() })
  }

  /** Ends the polling (reached() does too). */
  stop (): void {
    clearInterval(this.#timer)
  }

  /**
   * Resolves with the first sample (time in performance.now(), probe) of the file with `bytes`
   * or more, or with the last one when the file did not grow for `stallMs` or `deadlineMs`
   * passed first (the rest is lost, for the integrity check to count), `null` when it never
   * grew. Stops the polling either way.
   */
  async reached (bytes: number, stallMs: number, deadlineMs: number): Promise<{ complete: boolean, growth: Growth<T> | null }> {
    const end = performance.now() + deadlineMs
    try {
      for (;;) {
        this.#poll()
        const hit = this.#samples.find((s) => s.size >= bytes)
        if (hit !== undefined) return { complete: true, growth: hit }
        const now = performance.now()
        if (now - this.#lastGrowthAt > stallMs || now > end) return { complete: false, growth: this.#samples.at(-1) ?? null }
        await delay(POLL_MS)
      }
    } finally {
      this.stop()
    }
  }
}
