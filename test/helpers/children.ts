import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readJsonLines } from '../../shared/json-lines.js'

/** Repository root (tests run against the compiled `dist/`). */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const BIN = join(ROOT, 'dist', 'cli', 'bin.js')

/** Path of a compiled fixture: `fixture('producer-logs')` -> dist/test/fixtures/producer-logs.js */
export function fixture (name: string): string {
  return join(ROOT, 'dist', 'test', 'fixtures', `${name}.js`)
}

/** Grace period between SIGTERM and SIGKILL during cleanup. */
const KILL_GRACE_MS = 3000

export interface Child {
  proc: ChildProcess
  /** Everything the child printed so far. */
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or the signal name) once the child exits. */
  exited: Promise<number | string>
  /** Resolves with the first stdout line (printed so far or later) that parses as JSON and satisfies `match`. */
  waitForLine: (match: (obj: any) => boolean, deadlineMs?: number) => Promise<any>
  /** Text for failure messages: the child's argv, stdout and stderr. */
  describe: () => string
}

const live = new Set<Child>()
const dirs = new Set<string>()

/**
 * Spawns `node <args>` and registers its cleanup at once: after each test every child still
 * running gets SIGTERM, then SIGKILL after a grace period, and is always awaited (cleanUpChildren).
 */
export function spawnNode (args: string[], opts: SpawnOptions = {}): Child {
  return spawnCommand(process.execPath, args, opts)
}

/** spawnNode for any program: `command <args>`, with the same cleanup. */
export function spawnCommand (command: string, args: string[], opts: SpawnOptions = {}): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  let out = ''
  let err = ''
  const lineWaiters: Array<{ match: (obj: any) => boolean, resolve: (v: any) => void }> = []
  /** Every JSON line printed so far, so a wait that starts late still sees an earlier line. */
  const seen: unknown[] = []
  proc.stdout?.on('data', (chunk: Buffer | string) => { out += chunk.toString() })
  if (proc.stdout !== null) {
    readJsonLines(proc.stdout, (obj) => {
      seen.push(obj)
      for (let i = lineWaiters.length - 1; i >= 0; i--) {
        const w = lineWaiters[i]!
        if (w.match(obj)) {
          lineWaiters.splice(i, 1)
          w.resolve(obj)
        }
      }
    })
  }
  proc.stderr?.setEncoding('utf8')
  proc.stderr?.on('data', (chunk: string) => { err += chunk })
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1))
  })
  const child: Child = {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    describe: () => `${command} ${args.join(' ')}\n--- stdout ---\n${out.slice(-4000)}\n--- stderr ---\n${err.slice(-4000)}`,
    waitForLine: (match, deadlineMs = 20_000) => new Promise((resolve, reject) => {
      const earlier = seen.find((obj) => match(obj))
      if (earlier !== undefined) {
        resolve(earlier)
        return
      }
      const timer = setTimeout(() => {
        reject(new Error(`no matching line within ${deadlineMs} ms; child ${proc.exitCode === null ? 'still running' : `exited ${proc.exitCode}`}\n${child.describe()}`))
      }, deadlineMs)
      const waiter = { match, resolve: (v: any) => { clearTimeout(timer); resolve(v) } }
      lineWaiters.push(waiter)
      void exited.then((code) => {
        if (lineWaiters.includes(waiter)) {
          clearTimeout(timer)
          reject(new Error(`child exited (${code}) before the expected line\n${child.describe()}`))
        }
      })
    })
  }
  live.add(child)
  void exited.then(() => live.delete(child))
  return child
}

/** Waits for the exit code, failing with the child's output when it passes the deadline. */
export async function exitCode (child: Child, deadlineMs = 60_000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`child did not exit within ${deadlineMs} ms\n${child.describe()}`)), deadlineMs)
  })
  try {
    return await Promise.race([child.exited, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** A fresh temp dir, removed after the test. Short, so ipc paths stay under the OS limit. */
export function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'lf-'))
  dirs.add(dir)
  return dir
}

/** Stops every child still running: SIGTERM, grace period, SIGKILL, and waits for exit. */
export async function killAll (): Promise<void> {
  await Promise.all([...live].map(async (child) => {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) return
    child.proc.kill('SIGTERM')
    const timer = setTimeout(() => child.proc.kill('SIGKILL'), KILL_GRACE_MS)
    await child.exited
    clearTimeout(timer)
  }))
}

/**
 * After each test (test/helpers/cleanup.ts, a setup file, registers it for every test file):
 * stops every child still running and removes every temp dir the test made.
 */
export async function cleanUpChildren (): Promise<void> {
  await killAll()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

export { once }

/**
 * Polls `check` every 20 ms until it returns true; fails after `deadlineMs` with `describe()`,
 * which should say what state was seen.
 */
export async function waitFor (check: () => boolean | Promise<boolean>, deadlineMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${deadlineMs} ms: ${describe()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * Whether a process of user `uid` can load the compiled fixtures and their packages (a test
 * that runs a producer as another user needs the checkout readable by it; a clone in a 0700
 * temp directory is not). Warns with the reason when not.
 */
export function canRunFixturesAs (uid: number): boolean {
  const probe = `const fs = require('fs'); fs.accessSync(${JSON.stringify(fixture('producer-logs'))}, fs.constants.R_OK); fs.accessSync(${JSON.stringify(join(ROOT, 'node_modules', 'pino', 'package.json'))}, fs.constants.R_OK)`
  const result = spawnSync(process.execPath, ['-e', probe], { uid, gid: uid, stdio: 'pipe' })
  if (result.status === 0) return true
  console.warn(`skipping tests that run a producer as uid ${uid}: it cannot read ${ROOT} (${String(result.stderr ?? result.error).split('\n').find((l) => l.includes('Error')) ?? 'no access'})`)
  return false
}

/** The writer's JSON lines on stderr with the given event. */
export function stderrEvents (child: Child, event: string): any[] {
  return child.stderr().split('\n').flatMap((line) => {
    try {
      const obj = JSON.parse(line)
      return obj?.event === event ? [obj] : []
    } catch {
      return []
    }
  })
}

/**
 * Newlines in `data`. Tests poll files of 10 MB and more every 20 ms (waitFor): splitting the
 * text into a string per line took 70 ms a read of 100,000 lines, counting the bytes 18 ms.
 */
export function newlines (data: Buffer): number {
  let count = 0
  for (let at = data.indexOf(0x0a); at !== -1; at = data.indexOf(0x0a, at + 1)) count++
  return count
}

/** Lines in a file so far (0 while it does not exist). */
export function lineCount (file: string): number {
  try {
    return newlines(readFileSync(file))
  } catch {
    return 0
  }
}
