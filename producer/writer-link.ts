import { EventEmitter } from 'node:events'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { decodeReceipt, decodeTooLargeFlag, GAP_FLAG } from '../shared/protocol.js'
import { producerEndpointProblem } from '../shared/dir-check.js'
import { ConnectWatch } from './connect-watch.js'
import { WriterLiveness } from './writer-liveness.js'
import { WriterReach } from './writer-reach.js'
import { curveKeysOf } from './zmtp/curve-keys.js'
import { PushSocket, SubSocket } from './zmtp/socket.js'

/** A writer's gap reports make at most one `'gap'` event this often (see #onMessage). */
const GAP_INTERVAL_MS = 250

/**
 * A producer's connections to its writer: batches go out on PUSH, receipts come in on SUB,
 * which also carries the heartbeat (`liveness`): the data connection's PING can wait unread
 * behind batches while the writer applies backpressure (its disk full, its queue at the mark).
 * A squatted socket directory is never connected to (the squatter would get the lines).
 *
 * The writer counts as away (`away`) while there is no data connection, and from when the sender
 * judged it away by `liveness` (`judgedAway()`: stopped, or hung) until it is heard from again.
 *
 * Events, from the receipt connection: `'receipt'` (seq), the writer has every batch through
 * `seq`; `'gap'`, it refused a batch that skipped ahead; `'tooLarge'` (limit), it refused a batch
 * over its `maxFrameBytes`. From the data connection: `'connected'`, a data connection is ready;
 * `'reconnected'`, then, when one that carried batches ended before (what was in flight may be
 * gone with it). And `'unreachable'`, once, as ConnectWatch says (LOGFUNNEL_ERR_UNSAFE_ENDPOINT
 * at once for a socket directory others could control).
 */
export class WriterLink extends EventEmitter {
  readonly liveness: WriterLiveness
  /** How often the sender checks receipts and the writer's liveness (ms). */
  readonly checkMs: number
  readonly #push: PushSocket
  readonly #sub: SubSocket
  readonly #watch: ConnectWatch
  readonly #tcp: boolean
  #rewindSoon = false
  #judgedAway = false
  #lastGap = -Infinity

  /** `reach`: where what the connections show of the writer is kept (a handshake, a refused connect). */
  constructor (opts: ResolvedProducerOptions, producerId: Buffer, reach = new WriterReach()) {
    super()
    const curve = curveKeysOf(opts)
    this.#tcp = opts.endpoint.startsWith('tcp://')
    this.#push = new PushSocket(opts.endpoint, { curve })
    this.#sub = new SubSocket(opts.receiptEndpoint, producerId, { curve })
    this.#sub.on('message', (frames: Buffer[]) => {
      reach.markReached()
      this.#watch.heard()
      this.#judgedAway = false
      this.#onMessage(frames)
    })
    this.#push.on('down', (err: Error | undefined, handshaken: boolean) => {
      reach.connectionEnded(err, handshaken)
      if (handshaken) this.#rewindSoon = true
    })
    this.#sub.on('down', (err: Error | undefined, handshaken: boolean) => reach.connectionEnded(err, handshaken))
    this.#push.on('accepted', () => reach.markAccepted())
    this.#sub.on('accepted', () => reach.markAccepted())
    this.checkMs = Math.max(5, Math.floor(opts.spoolAfterMs > 0 ? Math.min(opts.receiptTimeoutMs / 4, opts.spoolAfterMs / 2) : opts.receiptTimeoutMs / 4))
    this.liveness = new WriterLiveness(opts.spoolAfterMs, this.checkMs, () => this.#sub.ping())
    this.#sub.on('pong', () => {
      this.#judgedAway = false
      this.liveness.pong(performance.now())
    })
    this.#sub.on('ready', () => {
      reach.markReached()
      this.#judgedAway = false
      this.liveness.alive(performance.now())
    })
    this.#push.on('ready', () => {
      reach.markReached()
      this.#judgedAway = false
      this.liveness.alive(performance.now())
      this.emit('connected')
      if (!this.#rewindSoon) return
      this.#rewindSoon = false
      this.emit('reconnected')
    })
    const unsafe = producerEndpointProblem([opts.endpoint, opts.receiptEndpoint])
    this.#watch = new ConnectWatch({ ...opts, curve: opts.curveSecretKey !== null, connectTimeoutMs: unsafe === undefined ? opts.connectTimeoutMs : 0 }, (err) => this.emit('unreachable', err))
    if (unsafe !== undefined) {
      setImmediate(() => this.emit('unreachable', unsafe))
    } else {
      reach.markDialed()
      this.#push.connect()
      this.#sub.connect()
    }
  }

  #onMessage ([, seqFrame, flag]: Buffer[]): void {
    const seq = seqFrame === undefined ? undefined : decodeReceipt(seqFrame)
    if (seq !== undefined) this.emit('receipt', seq)
    if (flag === undefined) return
    if (flag.equals(GAP_FLAG)) {
      // The writer refuses each batch in flight after the first that skipped ahead: one event
      // for them all (the sender resends from its first batch without a receipt).
      if (performance.now() - this.#lastGap < GAP_INTERVAL_MS) return
      this.#lastGap = performance.now()
      this.emit('gap')
      return
    }
    const limit = decodeTooLargeFlag(flag)
    if (limit !== undefined) this.emit('tooLarge', limit)
  }

  /** True while there is no data connection, or the writer was judged away and has not been heard from since. */
  get away (): boolean {
    return this.#judgedAway || !this.#push.ready
  }

  /** The sender judged the writer away by `liveness.away()`: it counts as away until heard from. */
  judgedAway (): void {
    this.#judgedAway = true
  }

  /**
   * Over tcp, a writer silent for `silentMs` (its PINGs unanswered, while batches wait: see
   * WriterLiveness) may be behind a connection the network dropped without a word: a NAT or
   * firewall entry expired, a load balancer failed over, a partition. Such a connection never
   * ends by itself while the kernel gets no RST (Linux gives up on unacknowledged data after
   * about 15 minutes, `tcp_retries2`), and a new one may work at once; so both are dropped and
   * dialed again (libzmq's ZMQ_HEARTBEAT_TIMEOUT does the same), and the sender resends what has
   * no receipt on the new one (the writer skips what it has). True when it did. Over ipc the
   * kernel holds both ends: a silent writer is stopped or hung, and a new connection would not
   * help.
   */
  redialIfSilent (now: number, silentMs: number): boolean {
    if (!this.#tcp || this.liveness.silentMs(now) < silentMs) return false
    this.liveness.redialed()
    const why = `the writer answered no heartbeat for ${silentMs} ms: connection dropped, dialing again`
    this.#push.redial(why)
    this.#sub.redial(why)
    return true
  }

  /**
   * Over tcp, the data connection alone dropped and dialed again (as `redialIfSilent()` does
   * both): batches get no receipt while the writer answers heartbeats on the receipt connection.
   * True when it did.
   */
  redialData (): boolean {
    if (!this.#tcp) return false
    this.#push.redial('no receipt for two receipt timeouts in a row: data connection dropped, dialing again')
    return true
  }

  /** Writes a message on the data connection (see PushSocket.send); rejects once closed. */
  async send (frames: readonly Buffer[]): Promise<void> {
    await this.#push.send(frames)
  }

  /** Closes both connections at once. */
  close (): void {
    this.#watch.close()
    this.#push.close()
    this.#sub.close()
  }
}
