import { EventEmitter } from 'node:events'
import { parentPort } from 'node:worker_threads'
import type { LogfunnelError } from '../shared/errors.js'
import { resolveProducerOptions, type ProducerOptions } from '../shared/options.js'
import { BatchSender } from './sender.js'
import { ERROR_EVENT, FUNNEL_CONTROL, onDestroyRequest, STATS_EVENT, toPlainError } from './worker-messages.js'

/** Keys pino and thread-stream add to a transport's options; they are not ours to check. */
const HOST_KEYS = ['$context', 'pinoWillSendConfig', FUNNEL_CONTROL]

/**
 * The stream the worker thread writes into: thread-stream's worker calls `write()` with text
 * read from the shared buffer, stops reading while it returns false, and resumes on `'drain'`.
 * So `onFull: 'block'` fills the shared buffer and the logging thread blocks in `write()`;
 * `onFull: 'drop'` keeps reading and drops past `highWaterMark`.
 *
 * pino-abstract-transport is not used here on purpose: it parses each line (JSON or split2)
 * into objects, while logfunnel forwards the bytes untouched and batches whole chunks.
 */
export class FunnelStream extends EventEmitter {
  readonly sender: BatchSender
  #drop: boolean
  #needDrain = false
  #ending = false

  /** `control`: given by funnel(), whose logging thread reports errors and asks for teardown. */
  constructor (opts: ProducerOptions, control?: Int32Array) {
    super()
    const viaFunnel = control !== undefined
    const resolved = resolveProducerOptions(opts)
    this.#drop = resolved.onFull === 'drop'
    this.sender = new BatchSender(resolved)
    let warnedTooLarge = false
    this.sender.on('reject', (err: Error) => {
      if (warnedTooLarge) return
      warnedTooLarge = true
      warn(err)
    })
    this.sender.on('unreachable', (err: LogfunnelError) => report(err, viaFunnel))
    if (control !== undefined) onDestroyRequest(control, () => this.sender.destroy())
  }

  get writableNeedDrain (): boolean {
    return this.#needDrain
  }

  get writableEnded (): boolean {
    return this.#ending
  }

  write (chunk: string): boolean {
    this.sender.write(chunk)
    if (this.#drop || this.sender.hasRoom) return true
    if (!this.#needDrain) {
      this.#needDrain = true
      void this.sender.waitForRoom().then(() => {
        this.#needDrain = false
        this.emit('drain')
      })
    }
    return false
  }

  /** thread-stream calls this for `flush(cb)`: resolves when everything so far has a receipt. */
  async flush (): Promise<void> {
    await this.sender.flush()
  }

  /** Flushes within `closeTimeoutMs`, closes the sockets, reports the counters, emits 'close'. */
  end (): void {
    if (this.#ending) return
    this.#ending = true
    this.sender.close().catch(warn).finally(() => {
      parentPort?.postMessage({ code: 'EVENT', name: STATS_EVENT, args: [this.sender.stats] })
      this.emit('close')
    })
  }
}

function warn (err: Error): void {
  if (parentPort !== null) parentPort.postMessage({ code: 'WARNING', err })
  else process.emitWarning(err)
}

/**
 * A failure the logging thread must hear of: ERROR_EVENT on the ThreadStream always; a process
 * warning too unless funnel() is there to raise it. The code goes into the warning's text,
 * since the clone of an Error loses it.
 */
function report (err: LogfunnelError, viaFunnel: boolean): void {
  if (parentPort === null) {
    process.emitWarning(err)
    return
  }
  parentPort.postMessage({ code: 'EVENT', name: ERROR_EVENT, args: [toPlainError(err)] })
  if (!viaFunnel) parentPort.postMessage({ code: 'WARNING', err: new Error(`${err.code}: ${err.message}`) })
}

/**
 * pino transport target: `pino.transport({ target: 'logfunnel/transport', options })`.
 * Options are the producer options (see README); unknown keys are rejected.
 */
export default function build (opts: ProducerOptions & Record<string, unknown> = {}): FunnelStream {
  const own: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(opts)) {
    if (!HOST_KEYS.includes(key)) own[key] = value
  }
  const control = opts[FUNNEL_CONTROL]
  return new FunnelStream(own as ProducerOptions, control instanceof Int32Array ? control : undefined)
}
