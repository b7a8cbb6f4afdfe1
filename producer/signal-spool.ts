import { isMainThread } from 'node:worker_threads'
import { onExit } from 'signal-exit'
import { signals } from 'signal-exit/signals'

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

/** Stands for an application's once-handler that has removed itself, until this signal's listeners have run. */
function standIn (): void {}

/**
 * An application's handler added with `process.once()` (a graceful shutdown: close the server,
 * then exit) removes itself as the signal is emitted, before signal-exit's listener counts the
 * listeners: it then saw none but its own, spooled, and sent the signal again, so the process
 * ended by it (status 143) while the application's handler had only begun (its server.close(),
 * its await dest.close(), its process.exit(0) never ran). A listener of ours, first, counts the
 * once-handlers present and adds as many stand-ins, removed once the listeners have run, so
 * signal-exit leaves the signal to the application as it does for one added with `on()`. It
 * counts in signal-exit's shared count (as another copy of signal-exit does), so that with no
 * handler of the application's signal-exit still ends the process.
 */
const censuses = new Map<string, () => void>()

function countOnceHandlers (): void {
  const shared = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')]
  if (typeof shared?.count !== 'number') return
  let added = 0
  for (const sig of signals) {
    const census = (): void => {
      const once = process.rawListeners(sig).filter((l) => l !== census && (l as { listener?: unknown }).listener !== undefined).length
      if (once === 0) return
      for (let i = 0; i < once; i++) process.on(sig, standIn)
      process.nextTick(() => { for (let i = 0; i < once; i++) process.removeListener(sig, standIn) })
    }
    try {
      process.prependListener(sig, census)
      censuses.set(sig, census)
      added++
    } catch {}
  }
  if (added > 0) shared.count += 1
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
      if (signal === null) return
      // signal-exit has removed its listeners and sends the signal again: ours must go too.
      for (const [sig, census] of censuses) process.removeListener(sig, census)
      onFatalSignal()
    }, { alwaysLast: true })
    // Node ignores SIGXFSZ: a write past the file size limit (RLIMIT_FSIZE) fails with EFBIG. With
    // signal-exit's listener alone it ended the process (status 153) once that listener ran,
    // whoever wrote. A listener of ours that does nothing keeps it as Node has it (signal-exit
    // leaves a signal with other listeners to them; removing its own would not: Node then
    // restores the default action, which ends the process).
    process.on('SIGXFSZ', ignoreFileSizeSignal)
    countOnceHandlers()
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
