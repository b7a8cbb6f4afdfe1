import { ClosedError } from '../shared/errors.js'
import type { DoneReply, SenderRequest } from './sender-requests.js'
import type { SenderThread } from './sender-thread-handle.js'
import { reviveError } from './thread-errors.js'

/** A request that gets a reply: its message without the id. */
export type SenderCall = { code: 'flush', through: number, spooledEnds?: boolean, keep?: boolean } | { code: 'close' }

interface Pending {
  resolve: (reply: DoneReply) => void
  reject: (err: Error) => void
}

/**
 * funnel()'s requests to its sender thread (sender-requests.ts) with their replies: each gets an
 * id and a promise settled by the thread's 'done' reply, or rejected with LOGFUNNEL_ERR_CLOSED
 * once the thread has exited. The worker is ref'd while any is pending (a flush or a close keeps
 * the process alive; the worker alone does not, like pino.transport), and unref'd after the last
 * unless `keepRef()` says the destination is closing.
 */
export class SenderCalls {
  readonly #thread: SenderThread
  readonly #keepRef: () => boolean
  #nextId = 0
  readonly #pending = new Map<number, Pending>()

  constructor (thread: SenderThread, keepRef: () => boolean) {
    this.#thread = thread
    this.#keepRef = keepRef
  }

  /**
   * Sends `msg` with a new id; resolves with the reply. Rejects with LOGFUNNEL_ERR_CLOSED when the
   * thread has exited (or exits first); with a `deadline`, with its error once it passes. The
   * request then stops holding the worker's ref and a late reply is ignored: a flush that timed
   * out must not keep the process alive until the thread answers it (with no writer, maybe never).
   */
  async request (msg: SenderCall, deadline?: { ms: number, error: () => Error }): Promise<DoneReply> {
    if (this.#thread.exited) throw new ClosedError()
    const id = ++this.#nextId
    const reply = new Promise<DoneReply>((resolve, reject) => this.#pending.set(id, { resolve, reject }))
    if (this.#pending.size === 1) this.#thread.worker.ref()
    this.post({ ...msg, id })
    try {
      return await (deadline === undefined ? reply : withDeadline(reply, deadline.ms, deadline.error))
    } finally {
      this.#pending.delete(id)
      if (this.#pending.size === 0 && !this.#thread.exited && !this.#keepRef()) this.#thread.worker.unref()
    }
  }

  /** Sends a message without a reply; nothing once the thread has exited. */
  post (msg: SenderRequest): void {
    if (!this.#thread.exited) this.#thread.worker.postMessage(msg)
  }

  /** The thread's 'done' reply settles its request. */
  done (msg: DoneReply): void {
    const pending = this.#pending.get(msg.id)
    if (msg.err !== undefined) pending?.reject(reviveError(msg.err))
    else pending?.resolve(msg)
  }

  /** The thread has exited: every pending request fails with LOGFUNNEL_ERR_CLOSED. */
  rejectAll (): void {
    for (const pending of this.#pending.values()) pending.reject(new ClosedError())
    this.#pending.clear()
  }
}

/** Settles as `work` does, or rejects with `makeError()` after `deadlineMs`. */
export async function withDeadline<T> (work: Promise<T>, deadlineMs: number, makeError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(makeError()), deadlineMs)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
