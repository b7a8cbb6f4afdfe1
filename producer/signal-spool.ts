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

function ignoreFileSizeSignal (): void {}

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
    // Node ignores SIGXFSZ: a write past the file size limit (RLIMIT_FSIZE) fails with EFBIG. With
    // signal-exit's listener alone it ended the process (status 153) once that listener ran,
    // whoever wrote. A listener of ours that does nothing keeps it as Node has it (signal-exit
    // leaves a signal with other listeners to them; removing its own would not: Node then
    // restores the default action, which ends the process).
    process.on('SIGXFSZ', ignoreFileSizeSignal)
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
