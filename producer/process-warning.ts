/**
 * Process warnings that are said even when the process ends right away. Node's
 * `process.emitWarning()` emits on the next tick, so `await dest.close(); process.exit(0)`
 * (how an application with a SIGTERM handler of its own ends) exited before the warning of that
 * close() was printed: a report that the records went to the spool was lost without a word.
 *
 * Each is said once: on the next tick, as `process.emitWarning()` would, or in the process's
 * 'exit' if that comes first. Either way it reaches the 'warning' listeners (Node prints it
 * unless `--no-warnings`), in 'exit' synchronously, where stderr still takes a write. One
 * 'exit' listener for all of them: many destinations reporting at once add no listener each.
 * On the real process (host-process.ts): jest's copy of `process` has no 'warning' listener.
 */
import { addHostListener, hostProcess } from './host-process.js'

const pending = new Set<Error>()
let installed = false

function say (err: Error): void {
  if (pending.delete(err)) hostProcess.emit('warning', err)
}

/**
 * Emits `err` as a process warning on the next tick, or in the process's 'exit' if that comes
 * first; never twice.
 */
export function warnBeforeExit (err: Error): void {
  if (!installed) {
    installed = true
    addHostListener('exit', () => {
      for (const due of [...pending]) say(due)
    })
  }
  pending.add(err)
  process.nextTick(say, err)
}
