import { workerData } from 'node:worker_threads'

/**
 * The worker side of thread-stream's shared state. The slot index is thread-stream's
 * (lib/indexes.js).
 */
const SEQ_INDEX = 2

/**
 * thread-stream's worker sleeps in Atomics.waitAsync until the logging thread bumps the shared
 * sequence slot and notifies. Seen here once: the worker idle in epoll_wait for two minutes
 * while the logging thread waited in flushSync for it to read (a lost wake-up; thread-stream
 * itself only re-checks every 10 s). A spurious notify is harmless and bounds such a stall.
 */
const WAKE_INTERVAL_MS = 20

function sharedState (): Int32Array | undefined {
  const stateBuf = (workerData as { stateBuf?: unknown } | null)?.stateBuf
  return stateBuf instanceof SharedArrayBuffer ? new Int32Array(stateBuf) : undefined
}

/** Starts the periodic wake-up; undefined outside a thread-stream worker. */
export function wakeReaderPeriodically (): NodeJS.Timeout | undefined {
  const state = sharedState()
  if (state === undefined) return undefined
  const timer = setInterval(() => Atomics.notify(state, SEQ_INDEX), WAKE_INTERVAL_MS)
  timer.unref()
  return timer
}
