import { EventEmitter } from 'node:events'
import { debuglog } from 'node:util'
import { curveLoaded, loadCurve, type CurveKeys } from './curve-client.js'
import { ZmtpConnection, type SocketType } from './connection.js'

const debug = debuglog('logfunnel')

/**
 * Reconnect backoff: the first retry after RECONNECT_MIN_MS, doubling up to RECONNECT_MAX_MS,
 * back to the minimum after a handshake. libzmq retries every 100 ms (ZMQ_RECONNECT_IVL); a
 * restarting writer is back within a few hundred ms, and a missing one costs a failed
 * connect(2) per second.
 */
const RECONNECT_MIN_MS = 50
const RECONNECT_MAX_MS = 1000

/** Subscription message of ZMTP 3.0: `\x01` then the topic (rfc 23/ZMTP, PUB-SUB). */
const SUBSCRIBE = 0x01

export interface ZmtpSocketOptions {
  /** CURVE keys, or undefined for the NULL mechanism. */
  curve: CurveKeys | undefined
}

/**
 * A producer's ZeroMQ socket, one peer: connects, keeps reconnecting with backoff, and tells
 * when a connection is accepted (`'accepted'`), when it is ready (`'ready'`), when it ended (`'down'`, with the reason) and when
 * the writer answered a heartbeat (`'pong'`).
 * Sockets and timers are unref'd: a producer waiting for its writer never holds its process.
 */
abstract class ZmtpSocket extends EventEmitter {
  readonly endpoint: string
  readonly #type: SocketType
  readonly #opts: ZmtpSocketOptions
  protected connection: ZmtpConnection | undefined
  #retryMs = RECONNECT_MIN_MS
  #timer: NodeJS.Timeout | undefined
  #loading = false
  #closed = false

  constructor (type: SocketType, endpoint: string, opts: ZmtpSocketOptions) {
    super()
    this.#type = type
    this.endpoint = endpoint
    this.#opts = opts
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Starts connecting (once). */
  connect (): void {
    if (this.connection === undefined && this.#timer === undefined && !this.#loading && !this.#closed) this.#dial()
  }

  #dial (): void {
    this.#timer = undefined
    if (this.#opts.curve !== undefined && !curveLoaded()) {
      // tweetnacl first (curve-client.ts); where it cannot be loaded, a connection that failed
      // (its reason reported as a failed handshake's is), tried again as one.
      this.#loading = true
      loadCurve().then(() => {
        this.#loading = false
        if (!this.#closed) this.#dial()
      }, (err: Error) => {
        this.#loading = false
        this.emit('down', err, false)
        this.#schedule()
      })
      return
    }
    const conn: ZmtpConnection = new ZmtpConnection(this.endpoint, this.#type, this.#opts.curve, {
      onConnect: () => this.emit('accepted'),
      onReady: () => {
        this.#retryMs = RECONNECT_MIN_MS
        this.onReady(conn)
        this.emit('ready')
      },
      onMessage: (frames) => this.onMessage(frames),
      onDrain: () => this.onDrain(),
      onPong: () => this.emit('pong'),
      onClose: (err, handshaken) => {
        if (this.connection === conn) this.connection = undefined
        debug('%s %s: connection ended%s', this.#type, this.endpoint, err === undefined ? '' : `: ${err.message}`)
        this.emit('down', err, handshaken)
        this.onDown()
        this.#schedule()
      }
    })
    conn.ref(false)
    this.connection = conn
  }

  #schedule (): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => this.#dial(), this.#retryMs)
    this.#timer.unref()
    this.#retryMs = Math.min(RECONNECT_MAX_MS, this.#retryMs * 2)
  }

  /** Asks the writer for a `'pong'` (a heartbeat: its ZeroMQ I/O thread runs). */
  ping (): void {
    this.connection?.ping()
  }

  /** Drops the connection (made or being made) and dials again, as after a connection lost. */
  redial (why: string): void {
    this.connection?.abort(new Error(why))
  }

  protected onReady (_conn: ZmtpConnection): void {}
  protected onMessage (_frames: Buffer[]): void {}
  protected onDrain (): void {}
  protected onDown (): void {}

  /** Stops reconnecting and closes at once: what the kernel took still reaches the writer. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    const conn = this.connection
    this.connection = undefined
    conn?.destroy()
    this.onDown()
  }
}

/**
 * PUSH to the writer's PULL. `send()` writes a message into the connection that is ready, or
 * waits for one (as libzmq's PUSH with ZMQ_IMMEDIATE); it resolves once the bytes are in the
 * socket (most often straight in the kernel), and waits while the socket's buffer is full.
 * Delivery is not promised: the producer's receipts tell what reached the file.
 */
export class PushSocket extends ZmtpSocket {
  #waiters: Array<() => void> = []

  constructor (endpoint: string, opts: ZmtpSocketOptions) {
    super('PUSH', endpoint, opts)
  }

  /** True while a connection is ready to take messages. */
  get ready (): boolean {
    return this.connection?.ready === true
  }

  /** Rejects only once the socket is closed. */
  async send (frames: readonly Buffer[]): Promise<void> {
    for (;;) {
      if (this.closed) throw new Error('socket closed')
      const conn = this.connection
      if (conn?.ready === true) {
        if (!conn.write(frames)) await this.#wait()
        return
      }
      await this.#wait()
    }
  }

  async #wait (): Promise<void> {
    await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  #wake (): void {
    for (const resolve of this.#waiters.splice(0)) resolve()
  }

  protected override onReady (): void { this.#wake() }
  protected override onDrain (): void { this.#wake() }
  protected override onDown (): void { this.#wake() }
}

/** SUB to the writer's PUB: subscribes to one topic on every connection; `'message'` per message. */
export class SubSocket extends ZmtpSocket {
  readonly #subscription: Buffer

  constructor (endpoint: string, topic: Buffer, opts: ZmtpSocketOptions) {
    super('SUB', endpoint, opts)
    this.#subscription = Buffer.concat([Buffer.from([SUBSCRIBE]), topic])
  }

  protected override onReady (conn: ZmtpConnection): void {
    conn.write([this.#subscription])
  }

  protected override onMessage (frames: Buffer[]): void {
    this.emit('message', frames)
  }
}
