import { randomUUID } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { BroadcastChannel, threadId, type Worker } from 'node:worker_threads'
import { claimSenderStart, DESTROY, STARTER_OWN, type SenderReply } from './sender-requests.js'
import type { SenderThread, SenderWorker } from './sender-thread-handle.js'
import { fromThreadFailure } from './thread-errors.js'
import { hostChannel, hostedChannels, type HostData, type HostedReply, type RelayRequest, type StartRequest, type TerminateRequest } from './hosted-names.js'

/**
 * A worker thread's sender thread, started by the thread that made the worker (its host,
 * sender-host.ts) when that one has loaded logfunnel: it outlives the worker. A worker ended by
 * `worker.terminate()` (a pool's `destroy()`, an idle pool thread) runs no code, and a sender
 * thread it started itself ends with it, with what it had not sent yet; a hosted one is told by
 * the host that its logging thread is gone, sends what the ring holds and ends.
 *
 * This side drives the hosted thread as it would a Worker of its own (SenderWorker): requests
 * and replies go over a BroadcastChannel both threads open by name, and so do lines too large
 * for a slot, once the sender thread listens. The host only starts the thread and reports its
 * failures and its exit.
 */

/** A host that has not started the sender thread this long after the request is passed by: this thread starts its own. */
export const HOST_START_MS = 1000

/** The channel to ask the host on: one per thread (sender-host.ts listens on it). */
let toHost: BroadcastChannel | undefined

export class HostedLink extends EventEmitter implements SenderWorker {
  readonly #messages: BroadcastChannel
  readonly #lines: BroadcastChannel
  readonly #thread: SenderThread
  /** The name of the sender's channels (hostedChannels). */
  readonly #name: string
  /** Starts a sender thread of this thread's own (the host did not in time). */
  readonly #startOwn: () => Worker
  #own: Worker | undefined
  readonly #passBy: NodeJS.Timeout
  readonly #madeAt = performance.now()
  #exited = false
  #refed = false
  /**
   * Requests made before the sender thread listens: a BroadcastChannel gives a message only to
   * those open when it is posted.
   */
  #waiting: unknown[] | undefined = []

  constructor (host: HostData, thread: SenderThread, file: URL, workerData: StartRequest['workerData'], startOwn: () => Worker) {
    super()
    this.#thread = thread
    this.#startOwn = startOwn
    const name = `${process.pid}-${threadId}-${randomUUID()}`
    this.#name = name
    const channels = hostedChannels(name)
    this.#messages = new BroadcastChannel(channels.messages)
    this.#messages.onmessage = (event) => this.#onMessage((event as { data: SenderReply | HostedReply }).data)
    this.#messages.unref()
    this.#lines = new BroadcastChannel(channels.lines)
    this.#lines.unref()
    if (toHost === undefined) {
      toHost = new BroadcastChannel(hostChannel(host))
      toHost.unref()
    }
    const start: StartRequest = { code: 'start', name, threadId, file: file.href, workerData }
    toHost.postMessage(start)
    this.#passBy = setTimeout(() => this.hostLate(), HOST_START_MS)
    this.#passBy.unref()
  }

  /**
   * Called once HOST_START_MS have passed (and by the ring while it waits for a sender thread):
   * a host that has not started the thread by then is passed by. Its event loop may be busy (a
   * main thread blocked in synchronous work), and a thread of this thread's own starts at once.
   */
  hostLate (now = false): void {
    if (this.#own !== undefined || this.#exited) return
    if (!now && performance.now() - this.#madeAt < HOST_START_MS) return
    if (!claimSenderStart(this.#thread.control, STARTER_OWN)) return
    clearTimeout(this.#passBy)
    this.#closeChannels()
    const waiting = this.#waiting ?? []
    this.#waiting = undefined
    let own: Worker
    try {
      own = this.#startOwn()
    } catch (err) {
      this.#exited = true
      process.nextTick(() => {
        this.emit('error', err)
        this.emit('exit', 1)
      })
      return
    }
    this.#own = own
    for (const request of waiting) own.postMessage(request)
    own.on('message', (msg) => this.emit('message', msg))
    own.on('error', (err) => this.emit('error', err))
    own.on('exit', (code) => this.emit('exit', code))
    if (!this.#refed) own.unref()
  }

  #onMessage (msg: SenderReply | HostedReply): void {
    if (this.#exited) return
    switch (msg.code) {
      case 'listening':
        return this.#listening()
      case 'closed':
        return this.#ended(0)
      case 'host-exit':
        return this.#ended(msg.exitCode)
      case 'host-error':
        this.emit('error', fromThreadFailure(msg.err))
        return
      default:
        this.emit('message', msg)
    }
  }

  /**
   * This thread is exiting (funnel-exit.ts) and waits for the sender thread's answer to the exit
   * request: a host that has not started it yet is passed by now; one that has passes the request
   * on (postMessage), as the thread may still be starting.
   */
  forExit (): void {
    this.hostLate(true)
  }

  /** The sender thread listens: lines too large for a slot, and the requests made so far, go to it. */
  #listening (): void {
    if (this.#waiting === undefined) return
    clearTimeout(this.#passBy)
    this.#thread.ring.setPort(this.#lines)
    const waiting = this.#waiting
    this.#waiting = undefined
    for (const request of waiting) this.#messages.postMessage(request)
  }

  #ended (exitCode: number): void {
    this.#exited = true
    clearTimeout(this.#passBy)
    this.#closeChannels()
    this.emit('exit', exitCode)
  }

  #closeChannels (): void {
    this.#messages.close()
    this.#lines.close()
  }

  postMessage (msg: unknown): void {
    if (this.#own !== undefined) this.#own.postMessage(msg)
    else if (this.#exited) return
    else {
      // Started, its channels are open (sender-thread.ts opens them first): at an exit request this
      // thread waits, and the sender's own word would never reach it.
      if (this.#thread.ring.senderStarted) this.#listening()
      if (this.#waiting === undefined) this.#messages.postMessage(msg)
      else if ((msg as { code?: unknown }).code === DESTROY) this.#relay(msg)
      else this.#waiting.push(msg)
    }
  }

  /** Through the host, to the sender thread's port: a Worker takes messages before it runs. */
  #relay (msg: unknown): void {
    const relay: RelayRequest = { code: 'relay', name: this.#name, msg }
    toHost?.postMessage(relay)
  }

  ref (): void {
    this.#refed = true
    if (this.#own !== undefined) this.#own.ref()
    else if (!this.#exited) this.#messages.ref()
  }

  unref (): void {
    this.#refed = false
    if (this.#own !== undefined) this.#own.unref()
    else if (!this.#exited) this.#messages.unref()
  }

  async terminate (): Promise<number> {
    if (this.#own !== undefined) return await this.#own.terminate()
    if (this.#exited) return 1
    const ended = once(this, 'exit')
    const request: TerminateRequest = { code: 'host-terminate' }
    this.#messages.postMessage(request)
    const [code] = await ended as [number]
    return code
  }
}
