import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PYTHON } from './programs.js'

/**
 * The Python package's tests (pytest, clients/python/tests) as one pytest process, or as two
 * side by side, each with about half of the suite's time (most of it is waiting on writers and
 * child processes). Each group writes its outcomes (one JSON line per test phase, see conftest.py) to
 * `pytest-<i>.jsonl`, its output to `pytest-<i>.log` and, once it has ended, its exit code to
 * `pytest-<i>.exit`, all in one directory. No vitest import: the global setup runs it too.
 */

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const PYTEST_TESTS = join(ROOT, 'clients', 'python', 'tests')
/** The files of one of the two processes; the other runs the rest. */
const FIRST_HALF = ['test_celery.py', 'test_exit.py', 'test_package.py', 'test_pools.py']

export interface PytestRun {
  dir: string
  groups: number
  /** Ends what still runs: SIGINT (pytest then runs its fixtures' cleanup), SIGKILL after `graceMs`. */
  stop: (graceMs: number) => Promise<void>
}

export function startPytest (dir: string, processes: 1 | 2): PytestRun {
  const files = readdirSync(PYTEST_TESTS).filter((f) => /^test_.*\.py$/.test(f)).sort()
  const first = files.filter((f) => FIRST_HALF.includes(f))
  const groups = processes === 1 ? [files] : [first, files.filter((f) => !first.includes(f))].filter((g) => g.length > 0)
  const children = groups.map((group, i) => {
    const log = openSync(join(dir, `pytest-${i}.log`), 'w')
    const child = spawn(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...group.map((f) => join(PYTEST_TESTS, f))], {
      cwd: ROOT,
      env: { ...process.env, LOGFUNNEL_PYTEST_REPORT: join(dir, `pytest-${i}.jsonl`), LOGFUNNEL_NODE: process.execPath },
      stdio: ['ignore', log, log],
      detached: true // a process group of its own, so stop() reaches what it started too
    })
    closeSync(log)
    const exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        writeFileSync(join(dir, `pytest-${i}.exit`), String(code ?? signal))
        resolve()
      })
      child.on('error', (err) => {
        writeFileSync(join(dir, `pytest-${i}.exit`), `spawn failed: ${err.message}`)
        resolve()
      })
    })
    return { child, exited }
  })
  return {
    dir,
    groups: groups.length,
    stop: async (graceMs) => {
      const signal = (child: ChildProcess, sig: NodeJS.Signals): void => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
        try { process.kill(-child.pid, sig) } catch {}
      }
      for (const { child } of children) signal(child, 'SIGINT')
      const timer = setTimeout(() => { for (const { child } of children) signal(child, 'SIGKILL') }, graceMs)
      await Promise.all(children.map(async ({ exited }) => await exited))
      clearTimeout(timer)
    }
  }
}

/** Whether every group of the run in `dir` has ended. */
export function pytestEnded (dir: string, groups: number): boolean {
  return Array.from({ length: groups }, (_, i) => existsSync(join(dir, `pytest-${i}.exit`))).every(Boolean)
}

/** The outcomes the groups wrote, and the tail of each one's output (for failure messages). */
export function pytestResults (dir: string, groups: number): { lines: string[], output: string } {
  const lines: string[] = []
  const output: string[] = []
  for (let i = 0; i < groups; i++) {
    const report = join(dir, `pytest-${i}.jsonl`)
    if (existsSync(report)) lines.push(...readFileSync(report, 'utf8').trim().split('\n').filter(Boolean))
    const log = join(dir, `pytest-${i}.log`)
    if (existsSync(log)) output.push(readFileSync(log, 'utf8').trim().split('\n').slice(-20).join('\n'))
    const exit = join(dir, `pytest-${i}.exit`)
    if (existsSync(exit)) output.push(`(exit ${readFileSync(exit, 'utf8')})`)
  }
  return { lines, output: output.join('\n') }
}
