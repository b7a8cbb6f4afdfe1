import { setTimeout as delay } from 'node:timers/promises'
import { debuglog } from 'node:util'
import * as zmq from 'zeromq'
import { CURVE_KEY_BYTES, decodeCurveKey, z85Encode } from '../shared/curve-keys.js'
import { BindError } from '../shared/errors.js'
import { messages } from '../shared/receive.js'

const debug = debuglog('logfunnel')

/** Where libzmq sends authentication requests, fixed by ZMQ RFC 27 (ZAP). */
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01'
const ZAP_VERSION = '1.0'
const STATUS_OK = '200'
const STATUS_DENIED = '400'
/**
 * A listed key the writer has no room for now (its connection cap): libzmq sends the client
 * ERROR "500" and closes the connection at once. Not RFC 27's 300 (temporary error): libzmq
 * answers a 300 with nothing and keeps the connection, and its descriptor, until its handshake
 * timeout (30 s), which would let the connections past the cap fill the descriptor table.
 */
const STATUS_FULL = '500'
/** How long a new handler waits for the address a closed one still holds, and how often it tries. */
const REBIND_TIMEOUT_MS = 2000
const REBIND_POLL_MS = 5

/** A refused handshake: the client's public key (Z85) and its address. */
export interface ZapDenial {
  publicKey: string
  address: string
}

interface Domain {
  /** Allowed public keys, hex of the 32 bytes. */
  keys: Set<string>
  onDenied: (denial: ZapDenial) => void
  /** Asked for a listed key: false to refuse it for now (300, "too many connections"). */
  admit?: () => boolean
}

/** One handler per ZeroMQ context (the inproc address is unique), shared by the writers of a process. */
const domains = new Map<string, Domain>()
let router: zmq.Router | undefined
let routerReady: Promise<void> | undefined
let nextDomain = 0
/** Whether a handler of this process was closed: its address may be in use for a moment after. */
let routerClosed = false

/** A ZAP domain registered for one writer; set it as `zapDomain` on its sockets. */
export interface ZapRegistration {
  readonly domain: string
  /** Forgets the domain; the handler closes with the last one. */
  release: () => Promise<void>
}

/**
 * Registers an allow-list with the process's ZAP handler (RFC 27), binding the handler on first
 * use. CURVE alone admits any client that knows the server's public key; the handler answers
 * libzmq's request for every CURVE handshake on a socket with this `zapDomain`: 200 for a listed
 * key, 400 (refused, `onDenied` called) for any other. With `admit`, a listed key is answered 500
 * (libzmq sends the client ERROR "500" and closes) when `admit()` says no.
 * Sockets also set `zapEnforceDomain`, so without a handler libzmq refuses instead of admitting
 * everyone.
 *
 * @throws BindError (LOGFUNNEL_ERR_BIND) when the handler address is taken (another ZAP handler
 *   in the process).
 */
export async function registerZapDomain (allowedKeys: readonly string[], onDenied: (denial: ZapDenial) => void, admit?: () => boolean): Promise<ZapRegistration> {
  const domain = `logfunnel-${process.pid}-${nextDomain++}`
  const keys = new Set(allowedKeys.map((key) => (decodeCurveKey(key) as Buffer).toString('hex')))
  domains.set(domain, { keys, onDenied, admit })
  try {
    routerReady ??= startRouter()
    await routerReady
  } catch (err) {
    domains.delete(domain)
    routerReady = undefined
    throw err
  }
  let released = false
  return {
    domain,
    release: async () => {
      if (released) return
      released = true
      domains.delete(domain)
      if (domains.size === 0) stopRouter()
    }
  }
}

async function startRouter (): Promise<void> {
  const deadline = Date.now() + REBIND_TIMEOUT_MS
  for (;;) {
    const socket = new zmq.Router({ linger: 0 })
    try {
      await socket.bind(ZAP_ENDPOINT)
      router = socket
      void serve(socket)
      return
    } catch (err) {
      socket.close()
      // The handler closed last in this process may still hold the address: libzmq releases it
      // when its reaper ends the socket, a moment after close().
      const closedBefore = routerClosed && (err as { code?: string }).code === 'EADDRINUSE'
      if (!closedBefore || Date.now() >= deadline) throw new BindError(ZAP_ENDPOINT, { cause: err })
      await delay(REBIND_POLL_MS)
    }
  }
}

/**
 * Closes the handler. Never `unbind()` first: zeromq.js unbinds on a libuv pool thread, and a
 * libzmq socket is not thread-safe, so an unbind racing the main thread's read of the next
 * request aborted the writer at its stop (CURVE handshakes arriving meanwhile: libzmq assertions
 * in pipe.cpp and socket_base.cpp, or a segfault).
 */
function stopRouter (): void {
  const socket = router
  router = undefined
  routerReady = undefined
  if (socket === undefined) return
  routerClosed = true
  socket.close()
}

async function serve (socket: zmq.Router): Promise<void> {
  try {
    for await (const frames of messages(socket)) {
      const reply = answer(frames)
      if (reply !== undefined) await socket.send(reply)
    }
  } catch (err) {
    if (!socket.closed) debug('ZAP handler failed: %o', err)
  }
}

/**
 * A request is [routing id, empty, version, request id, domain, address, identity, mechanism,
 * credentials...]; for CURVE the one credential is the client's 32-byte public key. The reply
 * is [routing id, empty, version, request id, status code, status text, user id, metadata].
 */
function answer (frames: Buffer[]): Array<Buffer | string> | undefined {
  const [routingId, delimiter, version, requestId, domainFrame, address, , mechanism, key] = frames
  if (routingId === undefined || delimiter === undefined || requestId === undefined || mechanism === undefined) return undefined
  const domain = domains.get(String(domainFrame))
  const allowed = domain !== undefined && String(version) === ZAP_VERSION && String(mechanism) === 'CURVE' &&
    key !== undefined && key.length === CURVE_KEY_BYTES && domain.keys.has(key.toString('hex'))
  const publicKey = key?.length === CURVE_KEY_BYTES ? z85Encode(key) : ''
  if (!allowed) {
    debug('ZAP: refused %s key %s from %s', String(mechanism), publicKey, String(address))
    domain?.onDenied({ publicKey, address: String(address) })
    return [routingId, delimiter, ZAP_VERSION, requestId, STATUS_DENIED, 'key not allowed', '', '']
  }
  if (domain?.admit?.() === false) {
    debug('ZAP: no room for key %s from %s', publicKey, String(address))
    return [routingId, delimiter, ZAP_VERSION, requestId, STATUS_FULL, 'too many connections', '', '']
  }
  return [routingId, delimiter, ZAP_VERSION, requestId, STATUS_OK, 'OK', publicKey, '']
}

type CurveSocketOptions = { curveServer?: boolean, curveSecretKey?: string, zapDomain?: string, zapEnforceDomain?: boolean }

/** CURVE on the writer's sockets: the options to create them with, and the ZAP registrations. */
export interface CurveServer {
  /** For the receipt socket. */
  socketOptions: CurveSocketOptions
  /** For the data socket: a ZAP domain of its own, whose listed keys are also asked `admitData`. */
  dataSocketOptions: CurveSocketOptions
  release: () => Promise<void>
}

/**
 * Turns CURVE on when `curveSecretKey` is set: registers the allow-list twice, for the receipt
 * socket and for the data socket (there, a listed key is admitted only while `admitData()` says
 * so: the writer's connection cap), and returns the sockets' options; without a key, no options
 * and nothing to release.
 */
export async function startCurveServer (
  options: { curveSecretKey: string | null, curveAllowedKeys: readonly string[] },
  onDenied: (denial: ZapDenial) => void,
  admitData?: () => boolean
): Promise<CurveServer> {
  if (options.curveSecretKey === null) return { socketOptions: {}, dataSocketOptions: {}, release: async () => {} }
  const zap = await registerZapDomain(options.curveAllowedKeys, onDenied)
  let data: ZapRegistration
  try {
    data = await registerZapDomain(options.curveAllowedKeys, onDenied, admitData)
  } catch (err) {
    await zap.release()
    throw err
  }
  const socketOptions = (domain: string): CurveSocketOptions => ({ curveServer: true, curveSecretKey: options.curveSecretKey as string, zapDomain: domain, zapEnforceDomain: true })
  return {
    socketOptions: socketOptions(zap.domain),
    dataSocketOptions: socketOptions(data.domain),
    release: async () => {
      await data.release()
      await zap.release()
    }
  }
}
