/**
 * The process's 'beforeExit' and 'exit' for objects held weakly: a destination dropped without
 * close() (a logger made per request) must still be collected, and until then its hooks run.
 *
 * These were on-exit-leak-free's (pino's helper), whose cleanup after a collection removes the
 * wrong entries (`splice(index, index + 1)`: the collected object's entry and as many again
 * after it). So one collected destination took the hooks of the destinations and collected
 * senders registered after it: those were never closed at 'beforeExit' nor spooled at 'exit',
 * and their records without a receipt were lost without a word (per-request loggers with a
 * collection now and then: up to 5 of 80 loggers' records lost, the process exiting 0).
 */
import { addHostListener, removeHostListener, sandboxed, type EndEvent } from './host-process.js'

export type ExitEvent = EndEvent

/** A hook holds its target weakly; its function is kept in `fns`, keyed by the target. */
interface Hook {
  ref: WeakRef<object>
}

const hooks: Record<ExitEvent, Set<Hook>> = { beforeExit: new Set(), exit: new Set() }
/** Each target's hooks, found again by the target (unregister) or once it is collected. */
const byTarget = new WeakMap<object, Hook[]>()
/**
 * Each hook's function, an entry of its target's (a WeakMap's value holds its key only while the
 * key lives elsewhere): a function that holds its target, even through the context V8 gives all
 * closures of one scope, cannot keep it alive. Held by the hook itself, an orphan sender's
 * function did: its thread, 4 MiB ring and Worker stayed for the process's life.
 */
const fns = new WeakMap<object, Map<Hook, (target: any) => void>>()
const registry = new FinalizationRegistry<Hook[]>((gone) => {
  for (const hook of gone) {
    hooks.beforeExit.delete(hook)
    hooks.exit.delete(hook)
  }
  uninstallIdle()
})
const installed = new Set<ExitEvent>()
/**
 * This copy of the module's listeners. In a sandbox (jest: host-process.ts) each test file loads
 * the module again, and each copy takes its own out once it has no hook left, so that a test
 * file's module graph is not held for the process's life.
 */
const listeners: Record<ExitEvent, () => void> = { beforeExit: () => run('beforeExit'), exit: () => run('exit') }

function install (event: ExitEvent): void {
  if (installed.has(event)) return
  installed.add(event)
  addHostListener(event, listeners[event])
}

/** In a sandbox only: the listener of an event with no hook left goes. */
function uninstallIdle (): void {
  if (!sandboxed) return
  for (const event of installed) {
    if (hooks[event].size > 0) continue
    installed.delete(event)
    removeHostListener(event, listeners[event])
  }
}

/** Calls each hook of `event` whose target is alive, once, in the order they were registered. */
function run (event: ExitEvent): void {
  const due = [...hooks[event]]
  hooks[event].clear()
  for (const hook of due) {
    const target = hook.ref.deref()
    if (target !== undefined) fns.get(target)?.get(hook)?.(target)
  }
  uninstallIdle()
}

/**
 * Calls `fn(target)` once at the process's next `event`, unless `target` was collected or
 * unregistered by then. `fn` may hold `target`: it is kept only as long as the target lives.
 */
export function onProcessEnd<T extends object> (event: ExitEvent, target: T, fn: (target: T) => void): void {
  install(event)
  const hook: Hook = { ref: new WeakRef(target) }
  hooks[event].add(hook)
  const own = fns.get(target) ?? new Map<Hook, (target: any) => void>()
  own.set(hook, fn)
  fns.set(target, own)
  const list = byTarget.get(target)
  if (list !== undefined) {
    list.push(hook)
  } else {
    const first = [hook]
    byTarget.set(target, first)
    registry.register(target, first, target)
  }
}

/** Removes every hook of `target`. */
export function offProcessEnd (target: object): void {
  const own = byTarget.get(target)
  if (own === undefined) return
  byTarget.delete(target)
  fns.delete(target)
  registry.unregister(target)
  for (const hook of own) {
    hooks.beforeExit.delete(hook)
    hooks.exit.delete(hook)
  }
  uninstallIdle()
}
