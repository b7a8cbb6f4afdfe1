import { EventEmitter } from 'node:events'
import { unlinkSync } from 'node:fs'
import net from 'node:net'
import { debuglog } from 'node:util'
import Denque from 'denque'
import { parseEndpoint } from '../shared/endpoint.js'
import {
  decodeProperties, encodeCommand, encodeGreeting, encodeProperties, FLAG_COMMAND, FLAG_LONG, FLAG_MORE,
  GREETING_BYTES, greetingProblem, parseCommand
} from '../shared/zmtp-frames.js'
import { FrameRing, type Evict } from './frame-ring.js'

const debug = debuglog('logfunnel')

/** Bytes one read takes from a connection, into the connection's one reused buffer. */
const READ_BYTES = 256 * 1024
/** Data frames at least this large go to the ring; headers, commands and small frames do not. */
const RING_MIN_BYTES = 4096
/** The longest a command (READY, PING) may be: nothing a PUSH peer sends needs more. */
const MAX_COMMAND_BYTES = 4096
/** Frames in one message: a batch has two; more only ever gets rejected (bad_frame_count), so more than this drops the peer. */
const MAX_PARTS = 64
const READY = encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PULL' }))
const RESERVED_FLAGS = ~(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) & 0xff

/**
 * The writer's data socket for endpoints without CURVE: a ZMTP 3 PULL server of its own over
 * `node:net` (ipc or tcp), in place of a zeromq.js `Pull`, so that received bytes land in
 * reused memory (each connection reads into one buffer; frame bodies go to a `FrameRing`),
 * which took a fifth to a third off the writer's CPU per record on the measuring machine
 * (bench/README.md, "Fifth round"). Any ZMTP 3 PUSH peer works: libzmq (pyzmq, zeromq.js), the producers' own.
 *
 * A peer is dropped, and the writer goes on serving the others, when its greeting is not ZMTP 3
 * with NULL, its first command is not READY from a PUSH socket, a frame has reserved flags set,
 * a command is over 4 KiB, or a message has more than 64 frames. A message over
 * `maxMessageBytes` is read past without being kept (its bytes are not held anywhere) and
 * reported as `'oversize'` (its frames under the limit, and its size), so the writer can tell
 * the producer, which then sends within the limit; libzmq's ZMQ_MAXMSGSIZE (with CURVE) drops
 * the connection instead. PING is answered with PONG.
 *
 * Messages are taken in turns, one per connection with messages waiting, as libzmq's PULL
 * fair-queues its pipes: no producer waits behind another's flood. `highWaterMark` bounds the
 * messages received and not yet taken, in all: each connection's share of it is
 * ceil(highWaterMark / connections), at least one; a connection holding its share stops reading
 * until half of it is taken (its producer's sends then wait in its socket). One read can hold
 * more messages than the share (one read buffer's worth). Events on `events`: `'accept'` and
 * `'disconnect'`, per connection; `'oversize'` (frames, bytes) per message over the limit;
 * `'refused'` (`'limit'`, `'EMFILE'` or `'ENFILE'`, and the connections open) per connection
 * closed unread: past `maxConnections`, or for want of a descriptor to accept it.
 */
export class ZmtpPull {
  readonly events = new EventEmitter()
  /** Regions of received bodies; the writer holds and releases them (see FrameRing). */
  readonly ring: FrameRing
  closed = false
  #server: net.Server | undefined
  #path: string | undefined
  /** Connections with messages waiting, in the order they are served; one turn per message. */
  readonly #turns = new Denque<Connection>()
  #waiter: { resolve: (msg: Buffer[]) => void, reject: (err: Error) => void } | undefined
  readonly #connections = new Set<Connection>()
  readonly #maxMessageBytes: number
  readonly #highWaterMark: number
  readonly #maxConnections: () => number
  /** The last answer of `#maxConnections`. */
  #cap = 0

  /**
   * `maxConnections`: the open connections allowed, asked at each accept past the last answer
   * (descriptor-limit.ts: it follows the process's descriptor limit); a connection past it is
   * closed at once and reported as `'refused'`.
   */
  constructor (opts: { maxMessageBytes: number, highWaterMark: number, ringBytes: number, maxConnections?: () => number }) {
    this.#maxMessageBytes = opts.maxMessageBytes
    this.#highWaterMark = opts.highWaterMark
    this.#maxConnections = opts.maxConnections ?? (() => Infinity)
    this.ring = new FrameRing(opts.ringBytes)
  }

  /** Listens on `ipc://path` (a stale socket file there is removed, as libzmq does) or `tcp://host:port`. */
  async bind (endpoint: string): Promise<void> {
    const parsed = parseEndpoint(endpoint)
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.#accept(socket))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      const listening = (): void => {
        server.off('error', reject)
        server.on('error', (err: NodeJS.ErrnoException) => {
          // An accept that failed for want of a descriptor: libuv closed the connection at once.
          if (err.code === 'EMFILE' || err.code === 'ENFILE') this.events.emit('refused', err.code, this.#connections.size)
          else debug('data socket: %o', err)
        })
        resolve()
      }
      if (parsed.transport === 'ipc') {
        try { unlinkSync(parsed.path) } catch {}
        this.#path = parsed.path
        server.listen(parsed.path, listening)
      } else {
        const host = parsed.host === '*' ? '0.0.0.0' : parsed.host.replace(/^\[(.*)\]$/, '$1')
        server.listen(parsed.port, host, listening)
      }
    })
  }

  /** No connection is open and no message waits: a stop need not wait for more. */
  get drained (): boolean {
    return this.#connections.size === 0 && this.#turns.length === 0
  }

  /** The next message (its frames); rejects with code EBADF once closed. */
  async receive (): Promise<Buffer[]> {
    if (this.#turns.length > 0) return this.#take()
    if (this.closed) throw closedError()
    return await new Promise<Buffer[]>((resolve, reject) => { this.#waiter = { resolve, reject } })
  }

  /** Stops listening and drops every connection; what was received and not taken is discarded. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.#server?.close()
    for (const { socket } of this.#connections) socket.destroy()
    if (this.#path !== undefined) try { unlinkSync(this.#path) } catch {}
    this.#turns.clear()
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.reject(closedError())
  }

  #take (): Buffer[] {
    const conn = this.#turns.shift() as Connection
    const msg = conn.queue.shift() as Buffer[]
    if (conn.queue.length > 0) this.#turns.push(conn)
    if (conn.paused && conn.queue.length <= this.#share() >> 1) {
      conn.paused = false
      conn.socket.resume()
    }
    return msg
  }

  #deliver (conn: Connection, msg: Buffer[]): void {
    const waiter = this.#waiter
    if (waiter !== undefined) {
      this.#waiter = undefined
      waiter.resolve(msg)
      return
    }
    if (conn.queue.length === 0) this.#turns.push(conn)
    conn.queue.push(msg)
    if (!conn.paused && conn.queue.length >= this.#share()) {
      conn.paused = true
      conn.socket.pause()
    }
  }

  /** Messages each open connection may hold before it stops reading. */
  #share (): number {
    return Math.max(1, Math.ceil(this.#highWaterMark / Math.max(1, this.#connections.size)))
  }

  #accept (accepted: net.Socket): void {
    if (this.closed) {
      accepted.destroy()
      return
    }
    if (this.#connections.size >= this.#cap && this.#connections.size >= (this.#cap = this.#maxConnections())) {
      // Closed before its greeting: its producer dials again (every 100 ms, libzmq's
      // ZMQ_RECONNECT_IVL) and keeps its records meanwhile.
      accepted.destroy()
      this.events.emit('refused', 'limit', this.#connections.size)
      return
    }
    const peer = new PeerReader(this.#maxMessageBytes, this.ring, (msg) => this.#deliver(conn, msg), (frames, bytes) => this.events.emit('oversize', frames, bytes))
    const socket = readInto(accepted, (n, buf) => {
      const problem = peer.read(n, buf, socket)
      if (problem !== undefined) {
        debug('data socket: dropping a peer: %s', problem)
        socket.destroy()
      }
    })
    const conn: Connection = { socket, queue: new Denque(), paused: false }
    this.#connections.add(conn)
    this.events.emit('accept')
    socket.on('error', (err) => debug('data socket: %o', err))
    socket.on('close', () => {
      // Its whole messages still waiting are taken in their turns.
      peer.abandon()
      this.#connections.delete(conn)
      this.events.emit('disconnect')
    })
    socket.write(encodeGreeting('NULL', true))
    socket.resume() // accepted paused (pauseOnConnect)
  }
}

/** An accepted connection and its whole messages not yet taken. */
interface Connection {
  readonly socket: net.Socket
  readonly queue: Denque<Buffer[]>
  paused: boolean
}

function closedError (): Error {
  return Object.assign(new Error('the data socket is closed'), { code: 'EBADF' })
}

/**
 * The accepted socket, reading into one reused buffer: a `net.Socket` over the accepted
 * socket's handle with `onread`, which `net.Server` does not offer for the sockets it accepts.
 * Where that handle is not there (another runtime), Node's own read buffers are used.
 */
function readInto (accepted: net.Socket, onBytes: (n: number, buf: Buffer) => void): net.Socket {
  const internal = accepted as unknown as { _handle?: unknown }
  if (internal._handle === undefined || internal._handle === null) {
    accepted.on('data', (chunk: Buffer) => onBytes(chunk.length, chunk))
    return accepted
  }
  const handle = internal._handle
  internal._handle = null
  const buffer = Buffer.alloc(READ_BYTES)
  const options = { handle, onread: { buffer, callback: (n: number, buf: Uint8Array) => { onBytes(n, buf as Buffer) } } }
  return new net.Socket(options as net.SocketConstructorOpts)
}

/**
 * One connection's byte stream: the greeting, the peer's READY, then frames, parsed as bytes
 * arrive (a frame may span reads). Bodies are copied out of the read buffer as they come,
 * data bodies into the ring when there is room.
 */
class PeerReader {
  readonly #maxMessageBytes: number
  readonly #ring: FrameRing
  readonly #deliver: (msg: Buffer[]) => void
  readonly #oversize: (frames: Buffer[], bytes: number) => void
  readonly #greeting = Buffer.alloc(GREETING_BYTES)
  #greetingAt = 0
  #ready = false
  readonly #header = Buffer.alloc(9)
  #headerAt = 0
  #headerBytes = 0
  #flags = 0
  #body: Buffer | undefined
  #bodyAt = 0
  #parts: Buffer[] = []
  #partsBytes = 0
  /** Bytes of the current frame still to be read past (a message over the limit). */
  #skip = 0
  /** Size so far of a message over the limit that is being read past; 0 otherwise. */
  #skippedBytes = 0
  /** Gives the ring back a region of a message not yet whole: its bytes so far move to fresh memory. */
  readonly #evict: Evict = (region) => {
    const copy = Buffer.allocUnsafe(region.length)
    if (region === this.#body) {
      region.copy(copy, 0, 0, this.#bodyAt)
      this.#body = copy
      return true
    }
    const i = this.#parts.indexOf(region)
    if (i === -1) return false
    region.copy(copy)
    this.#parts[i] = copy
    return true
  }

  constructor (maxMessageBytes: number, ring: FrameRing, deliver: (msg: Buffer[]) => void, oversize: (frames: Buffer[], bytes: number) => void) {
    this.#maxMessageBytes = maxMessageBytes
    this.#ring = ring
    this.#deliver = deliver
    this.#oversize = oversize
  }

  /** Takes `n` bytes of `buf`; returns why the peer must be dropped, if it must. */
  read (n: number, buf: Buffer, socket: net.Socket): string | undefined {
    let i = 0
    while (i < n) {
      if (this.#greetingAt < GREETING_BYTES) {
        const k = Math.min(GREETING_BYTES - this.#greetingAt, n - i)
        buf.copy(this.#greeting, this.#greetingAt, i, i + k)
        this.#greetingAt += k
        i += k
        if (this.#greetingAt === GREETING_BYTES) {
          const problem = greetingProblem(this.#greeting, 'NULL')
          if (problem !== undefined) return problem
          socket.write(READY)
        }
      } else if (this.#skip > 0) {
        const k = Math.min(this.#skip, n - i)
        this.#skip -= k
        i += k
        if (this.#skip === 0) this.#skipDone()
      } else if (this.#body !== undefined) {
        const k = Math.min(this.#body.length - this.#bodyAt, n - i)
        buf.copy(this.#body, this.#bodyAt, i, i + k)
        this.#bodyAt += k
        i += k
        if (this.#bodyAt === this.#body.length) {
          const problem = this.#frameDone(socket)
          if (problem !== undefined) return problem
        }
      } else {
        const problem = this.#headerByte(buf[i++] as number, socket)
        if (problem !== undefined) return problem
      }
    }
    return undefined
  }

  /** The connection closed: a message it had begun will not come; its regions are free. */
  abandon (): void {
    this.#ring.hold(this.#body === undefined ? this.#parts : [...this.#parts, this.#body], 0)
    this.#parts = []
    this.#body = undefined
  }

  #headerByte (byte: number, socket: net.Socket): string | undefined {
    this.#header[this.#headerAt++] = byte
    if (this.#headerAt === 1) {
      if ((byte & RESERVED_FLAGS) !== 0) return `a frame with reserved flags 0x${byte.toString(16)}`
      this.#headerBytes = (byte & FLAG_LONG) !== 0 ? 9 : 2
      return undefined
    }
    if (this.#headerAt < this.#headerBytes) return undefined
    this.#headerAt = 0
    this.#flags = this.#header[0] as number
    const size = this.#headerBytes === 2 ? this.#header[1] as number : this.#header.readUInt32BE(1) * 0x1_0000_0000 + this.#header.readUInt32BE(5)
    const command = (this.#flags & FLAG_COMMAND) !== 0
    if (command && size > MAX_COMMAND_BYTES) return `a command of ${size} bytes`
    if (!command && !this.#ready) return 'a message before READY'
    if (!command && this.#parts.length === MAX_PARTS) return `a message of more than ${MAX_PARTS} frames`
    if (!command && (this.#skippedBytes > 0 || this.#partsBytes + size > this.#maxMessageBytes)) {
      // Over the limit: read past it, keeping nothing of it.
      if (this.#skippedBytes === 0) this.#skippedBytes = this.#partsBytes
      this.#skippedBytes += size
      this.#skip = size
      if (size === 0) this.#skipDone()
      return undefined
    }
    this.#body = (!command && size >= RING_MIN_BYTES ? this.#ring.take(size, this.#evict) : undefined) ?? Buffer.allocUnsafe(size)
    this.#bodyAt = 0
    return size === 0 ? this.#frameDone(socket) : undefined
  }

  /** A frame of a message over the limit is read past; at the message's end, it is reported. */
  #skipDone (): void {
    if ((this.#flags & FLAG_MORE) !== 0) return
    const frames = this.#parts.map((part) => Buffer.from(part))
    const bytes = this.#skippedBytes
    this.#ring.hold(this.#parts, 0)
    this.#parts = []
    this.#partsBytes = 0
    this.#skippedBytes = 0
    this.#oversize(frames, bytes)
  }

  #frameDone (socket: net.Socket): string | undefined {
    const body = this.#body as Buffer
    this.#body = undefined
    if ((this.#flags & FLAG_COMMAND) !== 0) return this.#command(body, socket)
    this.#parts.push(body)
    this.#partsBytes += body.length
    if ((this.#flags & FLAG_MORE) === 0) {
      const msg = this.#parts
      this.#parts = []
      this.#partsBytes = 0
      this.#deliver(msg)
    }
    return undefined
  }

  #command (body: Buffer, socket: net.Socket): string | undefined {
    const cmd = parseCommand(body)
    if (cmd === undefined) return 'a malformed command'
    if (!this.#ready) {
      if (cmd.name !== 'READY') return `${cmd.name} before READY`
      const type = decodeProperties(cmd.data)?.get('socket-type')?.toString('latin1')
      if (type !== 'PUSH') return `a ${String(type)} socket (a PULL socket takes PUSH peers)`
      this.#ready = true
      return undefined
    }
    // rfc 37: a PING carries a TTL (2 octets) and a context that the PONG returns.
    if (cmd.name === 'PING' && cmd.data.length >= 2) socket.write(encodeCommand('PONG', cmd.data.subarray(2)))
    return undefined
  }
}
