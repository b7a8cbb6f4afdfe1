import { runInThisContext } from 'node:vm'

/**
 * The process object Node emits 'beforeExit', 'exit' and 'warning' on. It is `process`, except
 * inside jest's test environment: jest gives each test file a `process` of its own, a copy of the
 * real one (jest-util's createProcessObject) whose events are never emitted, so hooks put there
 * never ran. A jest worker ends when its event loop empties, or by `process.exit()` with
 * `--forceExit`: a `funnel()` was neither closed at 'beforeExit' nor spooled at 'exit', and its
 * records without a receipt were lost without a word (3 files of 40,000 records on 3 workers:
 * 0 to 15,396 of 120,000 lost, writer up; with no writer, no report either). `vm`'s
 * runInThisContext() runs in the main context of the thread, where `process` is the real one.
 */
export const hostProcess: NodeJS.Process = findHostProcess()

/** True when `process` is a copy (jest), and hooks go to `hostProcess` instead. */
export const sandboxed = hostProcess !== process

export type EndEvent = 'beforeExit' | 'exit'
type Shared = Record<EndEvent, Set<() => void>>
const SHARED = Symbol.for('logfunnel.host-process-listeners')

/**
 * Calls `fn` at the host process's `event`. In a sandbox every test file loads logfunnel again:
 * one listener each would gather on the real process (a MaxListenersExceededWarning past 10
 * files in a jest worker), each holding its file's module graph. So there, all copies share one
 * listener per event, made in the thread's main context, which calls each copy's function;
 * `removeHostListener` takes a copy's function out once it has nothing left to do.
 */
export function addHostListener (event: EndEvent, fn: () => void): void {
  if (sandboxed) shared()[event].add(fn)
  else hostProcess.on(event, fn)
}

/** Undoes `addHostListener(event, fn)`. */
export function removeHostListener (event: EndEvent, fn: () => void): void {
  if (sandboxed) shared()[event].delete(fn)
  else hostProcess.removeListener(event, fn)
}

function shared (): Shared {
  const host = hostProcess as NodeJS.Process & { [SHARED]?: Shared }
  let found = host[SHARED]
  if (found === undefined) {
    found = runInThisContext(`(function (host) {
      const calls = { beforeExit: new Set(), exit: new Set() }
      for (const event of ['beforeExit', 'exit']) host.on(event, () => { for (const fn of [...calls[event]]) fn() })
      return calls
    })`)(host) as Shared
    Object.defineProperty(host, SHARED, { value: found })
  }
  return found
}

function findHostProcess (): NodeJS.Process {
  try {
    const found = runInThisContext('process') as unknown
    if (found !== process && isProcess(found) && found.pid === process.pid) return found
  } catch {
    // Code generation refused (a locked-down context): keep the process this module sees.
  }
  return process
}

function isProcess (value: unknown): value is NodeJS.Process {
  const candidate = value as Partial<NodeJS.Process> | null
  return typeof candidate === 'object' && candidate !== null && typeof candidate.on === 'function' &&
    typeof candidate.removeListener === 'function' && typeof candidate.emit === 'function'
}
