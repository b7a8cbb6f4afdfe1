import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchError, type LogfunnelError } from '../shared/errors.js'

/** Code of every failure of the benchmark harness itself (a child crashed, hung or lied). */
export const BENCH_ERROR_CODE = 'LOGFUNNEL_ERR_BENCH'

/** Grace period between SIGTERM and SIGKILL when the harness cleans up after a failure. */
const KILL_GRACE_MS = 2000

/** Output kept for failure messages: the tail is what explains a crash. */
const KEEP_OUTPUT_CHARS = 4000

const HERE = dirname(fileURLToPath(import.meta.url))

/**
 * Path of a compiled script, relative to `dist/bench/` (`producer.js`, `../cli/bin.js`).
 * The scripts sit beside this module in `dist/bench/`; when this module is loaded from its
 * `.ts` source they are looked up in the repository's `dist/bench/`.
 */
export function compiledScript (relativePath: string): string {
  const beside = join(HERE, relativePath)
  return existsSync(beside) ? beside : join(HERE, '..', 'dist', 'bench', relativePath)
}

/** A harness failure with the stable code `LOGFUNNEL_ERR_BENCH`. */
export function benchError (message: string, cause?: unknown): LogfunnelError {
  return new BenchError(message, cause === undefined ? undefined : { cause })
}

/**
 * A bench child process (`node <script> <args...>`) that talks in JSON lines: it prints
 * `{"event":...}` lines on stdout and reads commands from stdin. `next(event)` waits for the
 * next line of that event with a deadline; a child that exits first fails the wait with its
 * stderr. `stop()` ends it (SIGTERM, then SIGKILL) and always waits for the exit.
 *
 * Rejects with `LOGFUNNEL_ERR_BENCH` when a deadline passes or the child exits early.
 */
export class BenchChild {
  readonly proc: ChildProcess
  readonly name: string
  readonly exited: Promise<number | string>
  #seen: Array<Record<string, unknown>> = []
  #waiting = new Map<string, (line: Record<string, unknown>) => void>()
  #stderr = ''
  #pending = ''

  /**
   * Spawns `node [...nodeArgs] script [...args]`; `nodeArgs` are node's own options, e.g.
   * `['--cpu-prof', '--cpu-prof-dir', dir]`. `name` appears in error messages.
   */
  constructor (script: string, args: string[], name: string, nodeArgs: string[] = []) {
    this.name = name
    this.proc = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1))
    })
    this.proc.stdin?.on('error', () => {})
    this.proc.stderr?.setEncoding('utf8')
    this.proc.stderr?.on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-KEEP_OUTPUT_CHARS) })
    this.proc.stdout?.setEncoding('utf8')
    this.proc.stdout?.on('data', (chunk: string) => this.#onData(chunk))
  }

  get pid (): number {
    return this.proc.pid ?? -1
  }

  /** Writes one command line to the child's stdin; `end` closes stdin after it. */
  send (line: string, end = false): void {
    if (end) this.proc.stdin?.end(`${line}\n`)
    else this.proc.stdin?.write(`${line}\n`)
  }

  /** Resolves with the next `{"event": event}` line; rejects when the child exits or the deadline passes. */
  async next (event: string, deadlineMs: number): Promise<Record<string, unknown>> {
    const i = this.#seen.findIndex((line) => line.event === event)
    if (i !== -1) return this.#seen.splice(i, 1)[0] as Record<string, unknown>
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(event, resolve)),
        this.exited.then((code) => {
          throw benchError(`${this.name} (pid ${this.pid}) exited with ${String(code)} before printing "${event}"${this.#tail()}`)
        }),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(benchError(`${this.name} (pid ${this.pid}) did not print "${event}" within ${deadlineMs} ms${this.#tail()}`)), deadlineMs)
        })
      ])
    } finally {
      clearTimeout(timer)
      this.#waiting.delete(event)
    }
  }

  /** Waits for the exit and rejects unless the exit code is 0. */
  async expectExit (deadlineMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([
      this.exited,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(benchError(`${this.name} (pid ${this.pid}) did not exit within ${deadlineMs} ms${this.#tail()}`)), deadlineMs)
      })
    ]).finally(() => clearTimeout(timer))
    if (code !== 0) throw benchError(`${this.name} (pid ${this.pid}) exited with ${String(code)}${this.#tail()}`)
  }

  /** SIGTERM, SIGKILL after a grace period; resolves once the child has exited. */
  async stop (): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.kill('SIGTERM')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), KILL_GRACE_MS)
    await this.exited
    clearTimeout(timer)
  }

  #onData (chunk: string): void {
    this.#pending += chunk
    let nl = this.#pending.indexOf('\n')
    while (nl !== -1) {
      const text = this.#pending.slice(0, nl)
      this.#pending = this.#pending.slice(nl + 1)
      nl = this.#pending.indexOf('\n')
      let line: unknown
      try { line = JSON.parse(text) } catch { continue }
      const event = (line as { event?: unknown } | null)?.event
      if (typeof event !== 'string') continue
      const resolve = this.#waiting.get(event)
      if (resolve !== undefined) resolve(line as Record<string, unknown>)
      else this.#seen.push(line as Record<string, unknown>)
    }
  }

  #tail (): string {
    return this.#stderr.length > 0 ? `; stderr:\n${this.#stderr}` : ''
  }
}

/** Stops every child still running, in parallel. */
export async function stopAll (children: BenchChild[]): Promise<void> {
  await Promise.all(children.map(async (child) => await child.stop()))
}
