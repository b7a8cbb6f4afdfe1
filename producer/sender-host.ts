import { randomUUID } from 'node:crypto'
import { BroadcastChannel, getEnvironmentData, isMainThread, setEnvironmentData, threadId, type Worker } from 'node:worker_threads'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { hostChannel, hostedChannels, hostKnows, MAX_HOSTED_THREADS, HOST_KEY, type HostData, type HostedReply, type RelayRequest, type StartRequest, type TerminateRequest } from './hosted-names.js'
import { RingWriter } from './line-ring.js'
import type { RingMemory } from './ring-layout.js'
import { claimSenderStart, isDestroyed, markLoggingGone, STARTER_HOST, type SenderReply } from './sender-requests.js'
import { closeOrphan, orphanExited, orphanMessage } from './orphan-senders.js'
import { spawnSenderThread } from './sender-thread-file.js'
import type { SenderThread } from './sender-thread-handle.js'
import { onProcessEnd } from './exit-hooks.js'
import { spoolOnFatalSignal } from './signal-spool.js'
import { spoolAtExit } from './funnel-exit.js'
import { warnBeforeExit } from './process-warning.js'
import { toThreadFailure } from './thread-errors.js'

/**
 * A thread that has loaded logfunnel hosts the sender threads of the worker threads it makes
 * (hosted-link.ts): it starts each on request, and a worker that ends (`worker.terminate()`
 * included: the host sees its `'exit'`) leaves its sender thread here, told to send what the
 * ring holds and end, as for a destination that was collected (orphan-senders.ts): the process
 * waits for that (at most its `closeTimeoutMs`), and an exit or a fatal signal meanwhile has it
 * spool at once. Before, the sender thread ended with its worker: a pool's `destroy()` right
 * after its tasks lost the records they had logged last.
 *
 * The host knows its workers from the process's `'worker'` event and lists their thread ids in
 * shared memory that every worker it makes inherits (`setEnvironmentData`), so that a worker
 * knows at once whether to ask. A worker made before logfunnel was loaded, or by another thread,
 * starts its own sender, as before.
 */

interface Hosted {
  /** The logging thread's id. */
  threadId: number
  worker: Worker
  /** The channel the host reports the sender thread's failures and exit on. */
  channel: BroadcastChannel
  data: StartRequest['workerData']
  /** Once the logging thread is gone: the sender thread as an orphan's (orphan-senders.ts). */
  orphan?: SenderThread
}

/** Sender threads started here whose thread has not exited. */
const hosted = new Set<Hosted>()
/** The same, by the name of their channels. */
const byName = new Map<string, Hosted>()
/** The ids of this thread's live worker threads (those started here excluded). */
const live = new Set<number>()
/** Sender threads started here: the `'worker'` event tells of them too. */
const senders = new WeakSet<Worker>()
let threads: Int32Array | undefined
/** The host of this thread: the thread that made it, if that one hosts (its data is this thread's until hostSenders). */
let parent: HostData | undefined

/** Makes this thread a host of its workers' sender threads; once per thread. */
export function hostSenders (): void {
  if (threads !== undefined) return
  parent = isMainThread ? undefined : getEnvironmentData(HOST_KEY) as HostData | undefined
  threads = new Int32Array(new SharedArrayBuffer(MAX_HOSTED_THREADS * Int32Array.BYTES_PER_ELEMENT))
  const host: HostData = { name: `${process.pid}-${threadId}-${randomUUID()}`, threads }
  const requests = new BroadcastChannel(hostChannel(host))
  requests.onmessage = (event) => {
    const req = (event as { data: StartRequest | RelayRequest }).data
    if (req?.code === 'start') start(req)
    else if (req?.code === 'relay') byName.get(req.name)?.worker.postMessage(req.msg)
  }
  requests.unref()
  process.on('worker', (worker: Worker) => {
    if (senders.has(worker)) return
    const id = worker.threadId
    if (!place(0, id)) return
    live.add(id)
    worker.once('exit', () => {
      place(id, 0)
      live.delete(id)
      for (const h of hosted) {
        if (h.threadId === id) loggingThreadGone(h)
      }
    })
  })
  setEnvironmentData(HOST_KEY, host)
}

/** This thread's host: the thread that made it, when that one hosts senders and knows this thread. */
export function senderHost (): HostData | undefined {
  return parent !== undefined && hostKnows(parent.threads, threadId) ? parent : undefined
}

/** The target of the exit and signal hooks (start), never collected. */
const HOSTED = {}
let hooked = false

/** Puts `to` in the first place of `threads` that holds `from`; false when none does. */
function place (from: number, to: number): boolean {
  const list = threads as Int32Array
  for (let i = 0; i < list.length; i++) {
    if (Atomics.compareExchange(list, i, from, to) === from) return true
  }
  return false
}

function start (req: StartRequest): void {
  if (!claimSenderStart(req.workerData.control, STARTER_HOST)) return
  const channel = new BroadcastChannel(hostedChannels(req.name).messages)
  let worker: Worker
  try {
    worker = spawnSenderThread(new URL(req.file), undefined, { ...req.workerData, hosted: req.name })
  } catch (err) {
    tell(channel, { code: 'host-error', err: toThreadFailure(err as Error) })
    tell(channel, { code: 'host-exit', exitCode: 1 })
    channel.close()
    return
  }
  senders.add(worker)
  if (!hooked) {
    // Only once there is a sender thread here: loading logfunnel changes nothing at a signal.
    hooked = true
    onProcessEnd('exit', HOSTED, () => spoolLive(false))
    spoolOnFatalSignal(HOSTED, () => spoolLive(true))
  }
  const h: Hosted = { threadId: req.threadId, worker, channel, data: req.workerData }
  hosted.add(h)
  byName.set(req.name, h)
  worker.on('message', (msg: SenderReply) => {
    if (h.orphan !== undefined) orphanMessage(h.orphan, msg)
  })
  worker.on('error', (err: Error) => {
    if (h.orphan !== undefined) warnBeforeExit(err)
    else tell(channel, { code: 'host-error', err: toThreadFailure(err) })
  })
  worker.on('exit', (exitCode: number) => {
    hosted.delete(h)
    byName.delete(req.name)
    if (h.orphan !== undefined) {
      h.orphan.exited = true
      orphanExited(h.orphan)
    } else {
      tell(channel, { code: 'host-exit', exitCode })
    }
    channel.close()
  })
  channel.onmessage = (event) => {
    if ((event as { data: TerminateRequest }).data?.code === 'host-terminate') void worker.terminate()
  }
  channel.unref()
  // Like the logging thread's own sender: it alone does not keep the process alive, until its
  // logging thread is gone (loggingThreadGone).
  worker.unref()
  if (!live.has(req.threadId)) loggingThreadGone(h)
}

function tell (channel: BroadcastChannel, msg: HostedReply): void {
  channel.postMessage(msg)
}

/** The sender thread as an orphan's, once its logging thread is gone. */
function asOrphan (h: Hosted): SenderThread {
  const options = h.data.options as ResolvedProducerOptions
  h.orphan ??= {
    options,
    worker: h.worker,
    control: h.data.control,
    ring: RingWriter.adopt(h.data.ring as RingMemory, { maxFrameBytes: options.maxFrameBytes, onTooLarge: () => {} }),
    exited: false
  }
  return h.orphan
}

/**
 * The logging thread ended (terminated, or its own end): its sender thread sends what the ring
 * holds, or spools it, and ends. The process waits for it: the records are the work's.
 */
function loggingThreadGone (h: Hosted): void {
  if (h.orphan !== undefined) return
  markLoggingGone(h.data.control)
  // Closed, or spooled at that thread's exit, which said what it could not keep: nothing is left to do.
  if (isDestroyed(h.data.control)) {
    void h.worker.terminate()
    return
  }
  h.worker.ref()
  closeOrphan(asOrphan(h))
}

/** The process exits: the sender threads of live logging threads spool what has no receipt, at once. */
function spoolLive (atSignal: boolean): void {
  for (const h of hosted) {
    if (h.orphan === undefined) spoolAtExit(asOrphan(h), atSignal)
  }
}
