import { EventEmitter } from 'node:events'
import { BroadcastChannel, parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { ClosedError, type LogfunnelError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { EarlyHandOver } from './early-hand-over.js'
import type { RingMemory } from './ring-layout.js'
import { RingReader } from './ring-reader.js'
import { stallAtClose, stallAtExit, stuckAtTake } from './sender-faults.js'
import { catchThreadFaults, GuardedSender } from './sender-guard.js'
import { BEAT_MS, SENDER_STOPPED, markDestroyed, onDestroyRequest, publishBeat, publishPosition, publishReach, type SenderRequest, type SenderReply } from './sender-requests.js'
import { toPlainError } from './thread-errors.js'
import { WriterReach } from './writer-reach.js'
import { MAX_TIMER_MS } from '../shared/units.js'
import { writeStdioToFds } from './stdio-lines.js'
import { hostedChannels, type HostedReply } from './hosted-names.js'

/**
 * funnel()'s sender thread: takes whole lines from the ring (ring-reader.ts) into a BatchSender.
 * With `onFull: 'block'` it stops taking slots while the sender holds `highWaterMark` bytes
 * without a receipt, so the ring fills and the logging thread waits: memory stays bounded.
 *
 * Nothing here holds native resources (the sockets are node:net, see zmtp/), so the thread may
 * be terminated at any moment; an exception is caught at the thread's top (sender-guard.ts).
 */

/** A missed wake-up of the ring costs at most this much. */
const RING_RECHECK_MS = 1000

interface SenderThreadData {
  options: ResolvedProducerOptions
  ring: RingMemory
  /** Started by the logging thread: the port of lines too large for a slot. */
  port?: MessagePort
  /**
   * Started by the logging thread's host thread (sender-host.ts): the name of the channels it
   * shares with the logging thread (hostedChannels), for requests and those lines both.
   */
  hosted?: string
  control: Int32Array
  /** Made by the logging thread, which owns the producer's start (early-spool.ts). */
  producerId: Uint8Array
  /** When the logging thread made it (SpoolPreamble.made). */
  made: string
  /** The logging thread writes the first lines to the spool (early-spool.ts) until this thread ends that. */
  early: boolean
}

writeStdioToFds()
const { options, ring, port, hosted, control, producerId: id, made, early } = workerData as SenderThreadData
const parent = parentPort as NonNullable<typeof parentPort>
/**
 * Requests come on the parent port; a hosted thread's also on the channel it shares with the
 * logging thread (its host, which only starts it, asks on the port once the logging thread is gone).
 */
const requests = new EventEmitter()
parent.on('message', (msg) => requests.emit('message', msg))
const channels = hosted === undefined ? undefined : hostedChannels(hosted)
const shared = channels === undefined ? undefined : new BroadcastChannel(channels.messages)
if (shared !== undefined) shared.onmessage = (event) => requests.emit('message', (event as MessageEvent).data)
const lines = port ?? new BroadcastChannel((channels as NonNullable<typeof channels>).lines)
const reader = new RingReader(ring, lines)
const producerId = Buffer.from(id.buffer, id.byteOffset, id.byteLength)
const start = {
  producerId,
  made,
  // The logging thread reads it at close and exit, where it cannot wait for a message (unreached-report.ts).
  reach: new WriterReach((word) => publishReach(control, word)),
  early: early && options.spoolDir !== undefined ? new EarlyHandOver(control, options.spoolDir, producerId, () => post({ code: 'early-closed' })) : undefined
}
const guard = new GuardedSender(options, (s) => {
  s.on('unreachable', (err: LogfunnelError) => post({ code: 'error', err: toPlainError(err) }))
}, (err) => {
  post({ code: 'error', err: toPlainError(err) })
  if (guard.broken) {
    // A failure that keeps coming back: stop taking records; the logging thread counts them lost,
    // and a flush can no longer be met (before, close() waited out its deadline for it).
    closed = true
    reader.markGone()
    for (const f of flushes) f.reject(new ClosedError(SENDER_STOPPED))
    flushes = []
  } else {
    void pump()
  }
}, start)
catchThreadFaults(guard)
const block = options.onFull === 'block'
/** At exit nothing may wait: every slot is taken, whatever the sender holds. */
let exiting = false
/** The sender's sockets are closed: nothing more is taken. */
let closed = false
let flushes: Array<{ through: number, resolve: () => void, reject: (err: Error) => void }> = []


process.on('exit', () => reader.markGone())

// Signs of life for close(), which ends a thread that gives none for long (funnel-close.ts):
// a loop stuck in this thread stops them, a thread that is merely starved of CPU does not.
publishBeat(control, 0)
setInterval(() => publishBeat(control, guard.current.heldRecords), BEAT_MS).unref()

const take = (bytes: Buffer, records: number): void => {
  stuckAtTake()
  guard.current.writeBytes(bytes, records)
}
const more = (): boolean => exiting || !block || guard.current.hasRoom
let pumping = false

function drain (): void {
  if (closed) return
  reader.takeAll(take, more)
  if (flushes.length > 0) {
    const due = flushes.filter((f) => reader.reached(f.through))
    flushes = flushes.filter((f) => !reader.reached(f.through))
    for (const f of due) f.resolve()
  }
}

function destroy (): void {
  const sender = guard.current
  if (!sender.spoolAndDestroy()) sender.destroy()
  closed = true
}

/**
 * close()'s deadline or the process's exit: nothing may wait any more. Every slot is taken first
 * (a 'block' wait may still hold some), then what has no receipt goes to the spool.
 */
function takeAllAndDestroy (): void {
  exiting = true
  drain()
  destroy()
}

async function pump (): Promise<void> {
  if (pumping) return
  pumping = true
  try {
    while (!exiting && !closed) {
      drain()
      if (reader.awaitingPosted) await reader.waitForPosted(RING_RECHECK_MS)
      else if (!more() && reader.hasPublished) await guard.current.waitForRoom()
      else await reader.waitForPublished(RING_RECHECK_MS)
    }
  } finally {
    pumping = false
  }
}

async function reachRing (through: number): Promise<void> {
  if (reader.reached(through)) return
  if (guard.broken) throw new ClosedError(SENDER_STOPPED)
  await new Promise<void>((resolve, reject) => flushes.push({ through, resolve, reject }))
}

/**
 * After a failure the records so far are receipted or in the spool: the new sender's count.
 * With `spooledEnds`, true when it ended because the writer is away and the rest is in the spool.
 */
async function flush (through: number, spooledEnds: boolean, keep = false): Promise<boolean> {
  await reachRing(through)
  for (;;) {
    const sender = guard.current
    // The close of the last destination, the sender kept: its drops' notice goes with its records.
    if (keep) sender.reportDrops()
    try {
      if (!spooledEnds) {
        await sender.flush(MAX_TIMER_MS)
        return false
      }
      return await sender.settle(MAX_TIMER_MS) === 'spooled'
    } catch (err) {
      if (sender === guard.current || closed) throw err
    }
  }
}

async function close (settle: boolean): Promise<void> {
  exiting = true
  drain()
  // After funnel()'s flush everything has a receipt; after an abandoned one the sender is closed.
  // A destination gone without close() (orphan-senders.ts) gets that flush's wait here: receipts,
  // or the writer judged away with the rest in the spool.
  if (settle) await guard.current.settle(options.closeTimeoutMs).catch(() => {})
  const sender = guard.current
  if (!sender.spoolAndDestroy()) await sender.close(options.closeTimeoutMs).catch(() => {})
  closed = true
}

function post (reply: SenderReply | HostedReply): void {
  parent.postMessage(reply)
  shared?.postMessage(reply)
}

requests.on('message', (msg: SenderRequest) => {
  if (msg.code === 'flush') {
    flush(msg.through, msg.spooledEnds === true, msg.keep === true).then(
      (spooled) => post(msg.keep === true ? { code: 'done', id: msg.id, spooled, stats: guard.stats } : { code: 'done', id: msg.id, spooled }),
      (err: LogfunnelError) => post({ code: 'done', id: msg.id, err: toPlainError(err) }))
  } else if (msg.code === 'abandon') {
    takeAllAndDestroy()
  } else if (msg.code === 'close') {
    stallAtClose()
    close(msg.settle === true).finally(() => {
      reader.markGone()
      publishPosition(control, guard.current.spoolPosition)
      markDestroyed(control)
      post({ code: 'done', id: msg.id, stats: guard.stats })
      // Nothing runs here after this: a hosted thread's logging thread takes it as ended (hosted-link.ts).
      if (shared !== undefined) post({ code: 'closed' })
      lines.close()
      shared?.close()
      parent.close()
    })
  }
})

// At process exit the logging thread waits here: take every slot, spool what has no receipt.
onDestroyRequest(control, () => {
  stallAtExit()
  takeAllAndDestroy()
  reader.markGone()
  publishPosition(control, guard.current.spoolPosition)
  const stats = guard.stats
  return { lost: stats.abandoned, spooled: stats.spooledRecords }
}, requests)
// The logging thread posts lines too large for a slot once it knows this thread listens (hosted-link.ts).
if (shared !== undefined) post({ code: 'listening' })

void pump()
