import { randomBytes } from 'node:crypto'
import type naclModule from 'tweetnacl'
import { encodeCommand, encodeProperties, parseCommand, decodeProperties } from '../../shared/zmtp-frames.js'

/**
 * The client side of CurveZMQ (rfc 26/CURVEZMQ), as libzmq's CURVE server expects it:
 * HELLO, WELCOME, INITIATE, READY, then every frame as a MESSAGE box.
 *
 * The boxes are NaCl's crypto_box (X25519, XSalsa20, Poly1305) from tweetnacl, a pure-JS port
 * of NaCl: no native code runs in a producer, so ending its thread at any moment is safe.
 * libzmq writes a box without crypto_box's 16 leading zero octets, which is tweetnacl's
 * `box.after` output as it is.
 */

type Nacl = typeof naclModule

/**
 * tweetnacl, loaded by the first CURVE connection of the thread (loadCurve): compiling it cost
 * every sender thread about 35 ms of CPU at its start (a bare thread about 33), CURVE or not.
 */
let nacl: Nacl | undefined

/** Loads tweetnacl for CurveClient (once per thread); rejects where it cannot be loaded. */
export async function loadCurve (): Promise<void> {
  nacl ??= (await import('tweetnacl')).default
}

/** Whether CurveClient can be made now (loadCurve has resolved). */
export function curveLoaded (): boolean {
  return nacl !== undefined
}

/** crypto_box's nonce and its overhead (tweetnacl's `box.nonceLength`, `box.overheadLength`). */
const NONCE_BYTES = 24
const BOX_OVERHEAD_BYTES = 16

const HELLO_NONCE = Buffer.from('CurveZMQHELLO---', 'latin1')
const WELCOME_NONCE = Buffer.from('WELCOME-', 'latin1')
const INITIATE_NONCE = Buffer.from('CurveZMQINITIATE', 'latin1')
const VOUCH_NONCE = Buffer.from('VOUCH---', 'latin1')
const READY_NONCE = Buffer.from('CurveZMQREADY---', 'latin1')
const MESSAGE_NONCE_OUT = Buffer.from('CurveZMQMESSAGEC', 'latin1')
const MESSAGE_NONCE_IN = Buffer.from('CurveZMQMESSAGES', 'latin1')
const MESSAGE = Buffer.from('\x07MESSAGE', 'latin1')
/** rfc 26: HELLO's anti-amplification padding is 72 zero octets in libzmq (the text says 70). */
const HELLO_PADDING = 72
const WELCOME_BYTES = 168
const COOKIE_BYTES = 96
/** Command name, short nonce, box with at least a flags octet: the smallest MESSAGE. */
const MIN_MESSAGE_BYTES = MESSAGE.length + 8 + BOX_OVERHEAD_BYTES + 1
const MESSAGE_FLAG_MORE = 0x01
const MESSAGE_FLAG_COMMAND = 0x02

function nonce (prefix: Buffer, tail: Buffer): Uint8Array {
  return Buffer.concat([prefix, tail], NONCE_BYTES)
}

function shortNonce (n: bigint): Buffer {
  const buf = Buffer.allocUnsafe(8)
  buf.writeBigUInt64BE(n, 0)
  return buf
}

export interface CurveKeys {
  /** The writer's permanent public key S. */
  serverKey: Buffer
  /** This producer's permanent key pair C, c. */
  publicKey: Buffer
  secretKey: Buffer
}

/**
 * One connection's CURVE state: the transient key pair, then the key shared with the
 * writer's transient key, and the nonces of both directions.
 */
export class CurveClient {
  readonly #nacl: Nacl
  readonly #keys: CurveKeys
  readonly #transient: naclModule.BoxKeyPair
  #nonce = 1n
  #peerNonce = 0n
  #serverTransient: Uint8Array | undefined
  #shared: Uint8Array | undefined

  constructor (keys: CurveKeys) {
    if (nacl === undefined) throw new Error('CURVE before loadCurve() resolved')
    this.#nacl = nacl
    this.#keys = keys
    this.#transient = nacl.box.keyPair()
  }

  #nextNonce (): Buffer {
    return shortNonce(this.#nonce++)
  }

  /** The HELLO command frame. */
  hello (): Buffer {
    const short = this.#nextNonce()
    const signature = this.#nacl.box(new Uint8Array(64), nonce(HELLO_NONCE, short), this.#keys.serverKey, this.#transient.secretKey)
    return encodeCommand('HELLO', Buffer.concat([Buffer.from([1, 0]), Buffer.alloc(HELLO_PADDING), this.#transient.publicKey, short, signature]))
  }

  /**
   * Takes the WELCOME command body and returns the INITIATE command frame carrying
   * `properties`; throws when the WELCOME is not from the server key this producer trusts.
   */
  initiate (welcome: Buffer, properties: Record<string, string>): Buffer {
    const cmd = parseCommand(welcome)
    if (cmd?.name === 'ERROR') throw new Error(`the writer refused the CURVE handshake: ${errorReason(cmd.data)}`)
    if (cmd?.name !== 'WELCOME' || welcome.length !== WELCOME_BYTES) throw new Error('expected a CURVE WELCOME')
    const opened = this.#nacl.box.open(cmd.data.subarray(16), nonce(WELCOME_NONCE, cmd.data.subarray(0, 16)), this.#keys.serverKey, this.#transient.secretKey)
    if (opened === null) throw new Error("the writer's WELCOME does not open with curveServerKey (a different writer key?)")
    this.#serverTransient = opened.subarray(0, 32)
    const cookie = opened.subarray(32, 32 + COOKIE_BYTES)
    this.#shared = this.#nacl.box.before(this.#serverTransient, this.#transient.secretKey)

    const vouchTail = randomBytes(16)
    const vouch = this.#nacl.box(Buffer.concat([this.#transient.publicKey, this.#keys.serverKey]), nonce(VOUCH_NONCE, vouchTail), this.#serverTransient, this.#keys.secretKey)
    const plain = Buffer.concat([this.#keys.publicKey, vouchTail, vouch, encodeProperties(properties)])
    const short = this.#nextNonce()
    const box = this.#nacl.box.after(plain, nonce(INITIATE_NONCE, short), this.#shared)
    return encodeCommand('INITIATE', Buffer.concat([cookie, short, box]))
  }

  /** Takes the READY command body; returns the writer's metadata, or throws. */
  ready (body: Buffer): Map<string, Buffer> {
    const cmd = parseCommand(body)
    if (cmd?.name === 'ERROR') throw new Error(`the writer refused the CURVE handshake: ${errorReason(cmd.data)}`)
    if (cmd?.name !== 'READY' || cmd.data.length < 8 + this.#nacl.box.overheadLength || this.#shared === undefined) throw new Error('expected a CURVE READY')
    const short = cmd.data.subarray(0, 8)
    const opened = this.#nacl.box.open.after(cmd.data.subarray(8), nonce(READY_NONCE, short), this.#shared)
    if (opened === null) throw new Error("the writer's READY does not open")
    this.#peerNonce = short.readBigUInt64BE(0)
    const props = decodeProperties(Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength))
    if (props === undefined) throw new Error("the writer's READY metadata is malformed")
    return props
  }

  /**
   * One frame as a MESSAGE box (the ZMTP frame header is the caller's); a command (PING) travels
   * boxed too, marked in the box's flags as libzmq does.
   */
  seal (body: Buffer, more: boolean, command = false): Buffer {
    const short = this.#nextNonce()
    const plain = Buffer.allocUnsafe(1 + body.length)
    plain[0] = (more ? MESSAGE_FLAG_MORE : 0) | (command ? MESSAGE_FLAG_COMMAND : 0)
    body.copy(plain, 1)
    const box = this.#nacl.box.after(plain, nonce(MESSAGE_NONCE_OUT, short), this.#shared as Uint8Array)
    return Buffer.concat([MESSAGE, short, box])
  }

  /** Opens a MESSAGE frame from the writer: its body and flags; throws when it is not one. */
  open (frame: Buffer): { body: Buffer, more: boolean, command: boolean } {
    if (frame.length < MIN_MESSAGE_BYTES || !frame.subarray(0, MESSAGE.length).equals(MESSAGE)) throw new Error('expected a CURVE MESSAGE')
    const short = frame.subarray(MESSAGE.length, MESSAGE.length + 8)
    const n = short.readBigUInt64BE(0)
    if (n <= this.#peerNonce) throw new Error('a CURVE MESSAGE repeated a nonce')
    this.#peerNonce = n
    const opened = this.#nacl.box.open.after(frame.subarray(MESSAGE.length + 8), nonce(MESSAGE_NONCE_IN, short), this.#shared as Uint8Array)
    if (opened === null) throw new Error('a CURVE MESSAGE does not open')
    const plain = Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength)
    const flags = plain[0] as number
    return { body: plain.subarray(1), more: (flags & MESSAGE_FLAG_MORE) !== 0, command: (flags & MESSAGE_FLAG_COMMAND) !== 0 }
  }
}

/** An ERROR command's reason: one length octet, then the text. */
export function errorReason (data: Buffer): string {
  const length = data[0] ?? 0
  return data.toString('latin1', 1, 1 + length) || 'no reason given'
}
