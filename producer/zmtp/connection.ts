import { connect, type Socket } from 'node:net'
import { parseEndpoint } from '../../shared/endpoint.js'
import { CurveClient, errorReason, type CurveKeys } from './curve-client.js'
import {
  decodeProperties, encodeCommand, encodeGreeting, encodeProperties, FLAG_COMMAND, FLAG_MORE, frameHeader,
  FrameDecoder, greetingProblem, GREETING_BYTES, parseCommand, type Frame
} from '../../shared/zmtp-frames.js'

/** Receipts are tiny; anything much larger from the writer's side is not a writer. */
const MAX_INBOUND_FRAME_BYTES = 1024 * 1024

export type SocketType = 'PUSH' | 'SUB'
/** The socket type a peer must have for ours (rfc 23: PUSH talks to PULL, SUB to PUB or XPUB). */
const PEER_TYPES: Record<SocketType, readonly string[]> = { PUSH: ['PULL'], SUB: ['PUB', 'XPUB'] }

export interface ConnectionHandlers {
  /** The peer accepted the connection (the handshake starts). */
  onConnect: () => void
  /** The handshake is done: messages may flow. */
  onReady: () => void
  /** A whole message from the writer (SUB). */
  onMessage: (frames: Buffer[]) => void
  /** The connection ended, before or after the handshake; `err` says why when it failed. */
  onClose: (err: Error | undefined, handshaken: boolean) => void
  /** The socket's buffered writes reached the kernel. */
  onDrain: () => void
  /** The writer answered a PING: its ZeroMQ I/O thread runs, whatever its JS is busy with. */
  onPong: () => void
}

/**
 * One ZMTP 3.0 connection of a producer socket over `node:net` (ipc path or tcp): the greeting,
 * the NULL or CURVE handshake, then frames. Node owns the file descriptor and its teardown, so
 * a thread holding this connection can be terminated at any moment.
 */
export class ZmtpConnection {
  readonly #socket: Socket
  readonly #type: SocketType
  readonly #handlers: ConnectionHandlers
  readonly #decoder = new FrameDecoder(MAX_INBOUND_FRAME_BYTES)
  readonly #curve: CurveClient | undefined
  #greeted = false
  #handshaken = false
  #ended = false
  #parts: Buffer[] = []
  #frames: Frame[] = []

  constructor (endpoint: string, type: SocketType, curve: CurveKeys | undefined, handlers: ConnectionHandlers) {
    this.#type = type
    this.#handlers = handlers
    this.#curve = curve === undefined ? undefined : new CurveClient(curve)
    const parsed = parseEndpoint(endpoint)
    this.#socket = parsed.transport === 'ipc'
      ? connect({ path: parsed.path })
      : connect({ host: parsed.host.replace(/^\[(.*)\]$/, '$1'), port: parsed.port, noDelay: true })
    this.#socket.on('connect', () => this.#onConnect())
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.#socket.on('drain', () => handlers.onDrain())
    this.#socket.on('error', (err) => this.#fail(err))
    this.#socket.on('close', () => this.#fail(undefined))
  }

  get ready (): boolean {
    return this.#handshaken && !this.#ended
  }

  /** Bytes written but not yet taken by the kernel. */
  get bufferedBytes (): number {
    return this.#socket.writableLength
  }

  /** Keeps the process alive or not (a reconnecting producer must not hold its process). */
  ref (on: boolean): void {
    if (on) this.#socket.ref()
    else this.#socket.unref()
  }

  #onConnect (): void {
    this.#handlers.onConnect()
    this.#socket.write(encodeGreeting(this.#curve === undefined ? 'NULL' : 'CURVE'))
    if (this.#curve === undefined) this.#socket.write(encodeCommand('READY', encodeProperties({ 'Socket-Type': this.#type })))
    else this.#socket.write(this.#curve.hello())
  }

  #onData (chunk: Buffer): void {
    this.#decoder.append(chunk)
    if (!this.#greeted) {
      const greeting = this.#decoder.take(GREETING_BYTES)
      if (greeting === undefined) return
      const problem = greetingProblem(greeting, this.#curve === undefined ? 'NULL' : 'CURVE')
      if (problem !== undefined) return this.#fail(new Error(problem))
      this.#greeted = true
    }
    const err = this.#decoder.parse(this.#frames)
    if (err !== undefined) return this.#fail(err)
    const frames = this.#frames
    this.#frames = []
    try {
      for (const frame of frames) {
        if (this.#ended) return
        this.#onFrame(frame)
      }
    } catch (err) {
      this.#fail(err as Error)
    }
  }

  #onFrame (frame: Frame): void {
    if (!this.#handshaken) return this.#onHandshakeFrame(frame)
    let body = frame.body
    let more = (frame.flags & FLAG_MORE) !== 0
    let command = (frame.flags & FLAG_COMMAND) !== 0
    if (this.#curve !== undefined && !command) ({ body, more, command } = this.#curve.open(body))
    if (command) return this.#onCommand(body)
    this.#parts.push(body)
    if (more) return
    const parts = this.#parts
    this.#parts = []
    this.#handlers.onMessage(parts)
  }

  /** After the handshake: heartbeats (rfc 37) and a closing ERROR. */
  #onCommand (body: Buffer): void {
    const cmd = parseCommand(body)
    // A writer with ZMQ_HEARTBEAT_IVL pings: answer with its context.
    if (cmd?.name === 'PING' && cmd.data.length >= 2) this.#writeCommand('PONG', cmd.data.subarray(2))
    else if (cmd?.name === 'PONG') this.#handlers.onPong()
    else if (cmd?.name === 'ERROR') throw new Error(`the writer closed the connection: ${errorReason(cmd.data)}`)
  }

  /**
   * Asks the writer's ZeroMQ I/O thread for a PONG (`onPong`). TTL 0: the writer sets no
   * heartbeat timer of its own for this connection.
   */
  ping (): void {
    if (this.ready) this.#writeCommand('PING', PING_TTL_ZERO)
  }

  #writeCommand (name: string, data: Buffer): void {
    const frame = encodeCommand(name, data)
    if (this.#curve === undefined) {
      this.#socket.write(frame)
      return
    }
    // Under CURVE a command is boxed like a message frame, its command flag inside the box.
    const body = frame.subarray(frame.length - 1 - name.length - data.length)
    const box = this.#curve.seal(body, false, true)
    this.#socket.write(Buffer.concat([frameHeader(box.length, 0), box]))
  }

  #onHandshakeFrame (frame: Frame): void {
    if ((frame.flags & FLAG_COMMAND) === 0) throw new Error('a message before the handshake ended')
    let props: Map<string, Buffer> | undefined
    if (this.#curve === undefined) {
      const cmd = parseCommand(frame.body)
      if (cmd?.name === 'ERROR') throw new Error(`the writer refused the handshake: ${errorReason(cmd.data)}`)
      if (cmd?.name !== 'READY') throw new Error(`expected READY, got ${cmd?.name ?? 'a malformed command'}`)
      props = decodeProperties(cmd.data)
    } else if (parseCommand(frame.body)?.name !== 'READY') {
      this.#socket.write(this.#curve.initiate(frame.body, { 'Socket-Type': this.#type }))
      return
    } else {
      props = this.#curve.ready(frame.body)
    }
    const peer = props?.get('socket-type')?.toString('latin1')
    if (peer === undefined || !PEER_TYPES[this.#type].includes(peer)) {
      throw new Error(`the peer is a ${peer ?? 'socket without a type'}, not a logfunnel writer's ${PEER_TYPES[this.#type].join(' or ')}`)
    }
    this.#handshaken = true
    this.#handlers.onReady()
  }

  /**
   * Writes one message (its frames in order, as one write). Returns false when the socket's
   * buffer is over its high-water mark: wait for `onDrain` before writing more.
   */
  write (frames: readonly Buffer[]): boolean {
    if (!this.ready) return false
    const curve = this.#curve
    if (curve !== undefined) return this.#writeFrames(frames.map((f, i) => curve.seal(f, i < frames.length - 1)), 0)
    return this.#writeFrames(frames, FLAG_MORE)
  }

  /**
   * Headers and small frames are copied together; a large frame's body is written as it is
   * (the caller keeps it unchanged until its receipt), so a batch costs one small copy.
   */
  #writeFrames (frames: readonly Buffer[], moreFlag: number): boolean {
    let small: Buffer[] = []
    let ok = true
    this.#socket.cork()
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i] as Buffer
      small.push(frameHeader(f.length, i < frames.length - 1 ? moreFlag : 0))
      if (f.length <= SMALL_FRAME_BYTES) {
        small.push(f)
        continue
      }
      ok = this.#socket.write(Buffer.concat(small)) && ok
      ok = this.#socket.write(f) && ok
      small = []
    }
    if (small.length > 0) ok = this.#socket.write(Buffer.concat(small)) && ok
    this.#socket.uncork()
    return ok
  }

  /** Ends the connection: written bytes still reach the kernel, then it closes. */
  end (): void {
    if (!this.#ended) this.#socket.end()
  }

  /** Closes at once, without `onClose`; unwritten bytes are dropped. */
  destroy (): void {
    this.#ended = true
    this.#socket.destroy()
  }

  /** Closes at once and reports it (`onClose` with `err`), as if the peer had: the socket dials again. */
  abort (err: Error): void {
    this.#fail(err)
  }

  /** The first end of the connection, whatever caused it, is reported once. */
  #fail (err: Error | undefined): void {
    if (this.#ended) return
    this.#ended = true
    this.#socket.destroy()
    this.#handlers.onClose(err, this.#handshaken)
  }
}

/** A PING's 16-bit TTL, in tenths of a second (rfc 37): none. */
const PING_TTL_ZERO = Buffer.alloc(2)

/** Frames up to this size are copied next to their header rather than written on their own. */
const SMALL_FRAME_BYTES = 1024
