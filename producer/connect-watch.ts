import { connect, type Socket } from 'node:net'
import { debuglog } from 'node:util'
import { parseEndpoint } from '../shared/endpoint.js'
import { ConnectError, HandshakeError, type LogfunnelError } from '../shared/errors.js'

const debug = debuglog('logfunnel')

/** The diagnosis's plain connect gets this long before it counts as timed out. */
const PROBE_TIMEOUT_MS = 2000

export interface ConnectWatchOptions {
  endpoint: string
  receiptEndpoint: string
  connectTimeoutMs: number
  /** CURVE is configured: a handshake failure then most likely means refused keys. */
  curve: boolean
}

/**
 * Tells a producer, once, that no writer answers it. libzmq hides connection failures: it
 * retries forever and `send()` waits, so a producer whose socket is EACCES, or whose CURVE
 * handshake is refused, would hold its records in silence.
 *
 * The writer answers every new subscription with a receipt or the welcome (see protocol.ts),
 * so hearing anything on the receipt socket proves the whole path: connection, handshake, a
 * writer. When nothing is heard within `connectTimeoutMs`, a plain `net.connect()` to each
 * endpoint says why: an OS error (ENOENT, EACCES, ECONNREFUSED) is LOGFUNNEL_ERR_CONNECT;
 * a connection that is accepted is LOGFUNNEL_ERR_HANDSHAKE (ZeroMQ never completed).
 */
export class ConnectWatch {
  #opts: ConnectWatchOptions
  #onUnreachable: (err: LogfunnelError) => void
  #timer: NodeJS.Timeout | undefined
  #heard = false
  #closed = false

  constructor (opts: ConnectWatchOptions, onUnreachable: (err: LogfunnelError) => void) {
    this.#opts = opts
    this.#onUnreachable = onUnreachable
    if (opts.connectTimeoutMs > 0) {
      this.#timer = setTimeout(() => { void this.#diagnose() }, opts.connectTimeoutMs)
      this.#timer.unref()
    }
  }

  /** Something arrived from the writer. */
  heard (): void {
    if (this.#heard) return
    this.#heard = true
    clearTimeout(this.#timer)
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
  }

  async #diagnose (): Promise<void> {
    const err = await diagnose(this.#opts)
    if (this.#heard || this.#closed) return
    debug('unreachable: %s', err.message)
    this.#onUnreachable(err)
  }
}

/** Why no writer answered: the first endpoint whose plain connect fails, else the handshake. */
export async function diagnose (opts: ConnectWatchOptions): Promise<LogfunnelError> {
  const { endpoint, receiptEndpoint, connectTimeoutMs, curve } = opts
  for (const ep of [endpoint, receiptEndpoint]) {
    const err = await probe(ep)
    if (err !== undefined) return new ConnectError(ep, connectTimeoutMs, explain(err), { cause: err })
  }
  return new HandshakeError(endpoint, connectTimeoutMs, handshakeProblem(curve))
}

/** Why a connection accepted never completed its handshake, most likely. */
export function handshakeProblem (curve: boolean): string {
  return curve
    ? "the writer refused the CURVE handshake: check curveServerKey, and that curvePublicKey is in the writer's curveAllowedKeys, " +
      'or the writer is at its connection cap (it then says connections-refused on its stderr)'
    : 'the writer closed the connection before its handshake: it is out of descriptors (it then says connections-refused on its stderr), it requires CURVE (set curveServerKey and curveSecretKey), or the endpoint is not a logfunnel writer'
}

function explain (err: NodeJS.ErrnoException): string {
  if (err.code === 'ETIMEDOUT') return `no connection within ${PROBE_TIMEOUT_MS} ms`
  return explainRefusal(err.code) ?? err.message
}

/** A failed connect's OS error code in words; undefined for one not listed here. */
export function explainRefusal (code: string | undefined): string | undefined {
  switch (code) {
    case 'ENOENT': return 'no socket at that path (is the writer running?)'
    case 'EACCES': return "permission denied: this process's user may not use the socket or its directory (see the writer's socketMode)"
    case 'ECONNREFUSED': return 'connection refused (is the writer running?)'
    default: return undefined
  }
}

/** A plain connect, closed at once; resolves the OS error, or undefined when it connects. */
async function probe (endpoint: string): Promise<NodeJS.ErrnoException | undefined> {
  const parsed = parseEndpoint(endpoint)
  const socket: Socket = parsed.transport === 'ipc'
    ? connect({ path: parsed.path })
    : connect({ host: parsed.host.replace(/^\[(.*)\]$/, '$1'), port: parsed.port })
  socket.unref()
  return await new Promise((resolve) => {
    const timer = setTimeout(() => done(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), PROBE_TIMEOUT_MS)
    timer.unref()
    function done (err: NodeJS.ErrnoException | undefined): void {
      clearTimeout(timer)
      socket.destroy()
      resolve(err)
    }
    socket.once('connect', () => done(undefined))
    socket.once('error', done)
  })
}
