import { MessageChannel, type Worker } from 'node:worker_threads'
import { orphanExited, orphanMessage } from './orphan-senders.js'
import { warnBeforeExit } from './process-warning.js'
import { refusedStart } from './refused-threads.js'
import type { SenderReply } from './sender-requests.js'
import type { SenderThread, SenderWorker } from './sender-thread-handle.js'
import { spawnSenderThread } from './sender-thread-file.js'
import { explainStartFailure } from './thread-errors.js'

/**
 * What a destination does with its sender thread's events. Each is handed the destination, so
 * that none holds it: the thread's listeners must not keep a dropped destination alive.
 */
export interface SenderThreadEvents<D> {
  message: (dest: D, msg: SenderReply) => void
  error: (dest: D, err: Error) => void
  /** After `thread.exited` is set. */
  exit: (dest: D) => void
}

/**
 * Starts funnel()'s sender thread (spawnSenderThread) on `thread`'s ring, a new port to it given to
 * the ring and in `workerData` (as `port`), and listens to it (listenToSender).
 */
export function startSenderThread<D extends object> (file: URL, thread: SenderThread, workerData: object, owner: WeakRef<D>, on: SenderThreadEvents<D>): Worker {
  const worker = spawnOwnSender(file, thread, workerData)
  listenToSender(worker, thread, owner, on)
  return worker
}

/** The sender thread, started by this thread: a new port to it given to the ring and in `workerData` (as `port`). */
export function spawnOwnSender (file: URL, thread: SenderThread, workerData: object): Worker {
  const { port1, port2 } = new MessageChannel()
  port1.unref()
  thread.ring.setPort(port1)
  return spawnSenderThread(file, port2, { ...workerData, port: port2 })
}

/**
 * The sender thread's events to the destination. The listeners reach it through `owner`, a
 * WeakRef (see orphan-senders.ts); once it is collected, the thread's reports are its orphan's.
 */
export function listenToSender<D extends object> (worker: SenderWorker, thread: SenderThread, owner: WeakRef<D>, on: SenderThreadEvents<D>): void {
  worker.on('message', (msg: SenderReply) => {
    const dest = owner.deref()
    if (dest !== undefined) on.message(dest, msg)
    else orphanMessage(thread, msg)
  })
  worker.on('error', (err: Error) => {
    const dest = owner.deref()
    if (dest === undefined) warnBeforeExit(err)
    else on.error(dest, err)
  })
  worker.on('exit', () => {
    thread.exited = true
    const dest = owner.deref()
    if (dest !== undefined) on.exit(dest)
    else orphanExited(thread)
  })
  // Like pino.transport: the worker alone does not keep the process alive; a pending flush
  // or close() refs it. Only after the 'message' listener: a Worker's first one refs it again.
  worker.unref()
}

/** A destination's failures to start its sender thread, of which only the first is reported. */
export class StartFailures {
  /** Times the sender thread failed to start. */
  #count = 0
  /** Why the sender thread could not start, the first time: what a flush() with no thread rejects with. */
  error: Error | undefined

  /** A failure to start `thread`'s sender: the error to report for the first (explainStartFailure), undefined for a later one. */
  first (err: Error, thread: SenderThread): Error | undefined {
    if (this.#count++ > 0) return undefined
    this.error = explainStartFailure(err)
    // A cause of the process's (the permission model, a removed working directory): said once per process.
    if (this.error !== err) thread.refused = refusedStart() ? 'first' : 'later'
    return this.error
  }
}
