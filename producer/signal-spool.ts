import { isMainThread } from 'node:worker_threads'
import { onExit } from 'signal-exit'

/**
 * A signal whose default action ends the process (SIGTERM from a pool, PM2, systemd or
 * Kubernetes; SIGINT; SIGHUP) ends it without 'exit', so nothing would be spooled. Where the
 * application has no handler of its own for that signal, signal-exit runs ours, then removes
 * its listeners and sends the signal again: the process ends by the same signal, with the
 * same status a supervisor would see without logfunnel (143 for SIGTERM). Where the
 * application has a handler, nothing changes: it decides (close(), then exit).
 *
 * Signals reach the main thread only; a destination in a worker thread relies on `spoolAfterMs`.
 * Destinations are held weakly: a logger made per request and dropped is still collected.
 */
const live = new Set<WeakRef<object>>()
const actions = new WeakMap<object, (target: any) => void>()
const registry = new FinalizationRegistry<WeakRef<object>>((ref) => live.delete(ref))
let installed = false

function onFatalSignal (): void {
  for (const ref of live) {
    const target = ref.deref()
    if (target !== undefined) actions.get(target)?.(target)
  }
}

/**
 * Calls `spool(target)` synchronously when a signal is about to end the process; returns the
 * function that stops it. `spool` must not hold `target` (it is passed in).
 */
export function spoolOnFatalSignal<T extends object> (target: T, spool: (target: T) => void): () => void {
  if (!isMainThread) return () => {}
  if (!installed) {
    installed = true
    onExit((_code, signal) => {
      if (signal !== null) onFatalSignal()
    }, { alwaysLast: true })
  }
  const ref = new WeakRef(target)
  live.add(ref)
  actions.set(target, spool)
  registry.register(target, ref, ref)
  return () => {
    live.delete(ref)
    registry.unregister(ref)
  }
}
