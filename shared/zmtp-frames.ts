/**
 * ZMTP 3.0 framing (rfc 23/ZMTP): the greeting, commands and message frames, as the producers
 * (a PUSH and a SUB client) and the writer's own PULL server speak them over a stream socket.
 *
 * A frame is a flags octet (MORE 0x01, LONG 0x02, COMMAND 0x04), a size (one octet, or eight
 * in network order when LONG) and the body. A command's body is its name (one length octet,
 * then the name) and its data.
 */

export const GREETING_BYTES = 64
/** Signature, version 3.0, mechanism (20 octets, zero-padded), as-server, filler. */
const SIGNATURE_FIRST = 0xff
const SIGNATURE_LAST = 0x7f
const VERSION_MAJOR = 3
/**
 * Minor version 0: libzmq then expects subscriptions as messages (`\x01` + topic) rather than
 * the SUBSCRIBE command of 3.1, which is what SubSocket sends.
 */
const VERSION_MINOR = 0
const MECHANISM_OFFSET = 12
const MECHANISM_BYTES = 20
const AS_SERVER_OFFSET = 32

export const FLAG_MORE = 0x01
export const FLAG_LONG = 0x02
export const FLAG_COMMAND = 0x04
/** Frames up to this size carry a one-octet size. */
const SHORT_MAX = 255

export type Mechanism = 'NULL' | 'CURVE'

/** Our greeting: version 3.0, the mechanism, as a client (or as the server). */
export function encodeGreeting (mechanism: Mechanism, asServer = false): Buffer {
  const buf = Buffer.alloc(GREETING_BYTES)
  buf[0] = SIGNATURE_FIRST
  buf[9] = SIGNATURE_LAST
  buf[10] = VERSION_MAJOR
  buf[11] = VERSION_MINOR
  buf.write(mechanism, MECHANISM_OFFSET, 'latin1')
  buf[AS_SERVER_OFFSET] = asServer ? 1 : 0
  return buf
}

/** Why a peer's greeting is unusable, or undefined when it is a ZMTP 3 peer with `mechanism`. */
export function greetingProblem (buf: Buffer, mechanism: Mechanism): string | undefined {
  if (buf[0] !== SIGNATURE_FIRST || buf[9] !== SIGNATURE_LAST) return 'the peer is not a ZeroMQ socket (bad greeting signature)'
  if ((buf[10] as number) < VERSION_MAJOR) return `the peer speaks ZMTP ${String(buf[10])}.x, not 3.x`
  const theirs = buf.toString('latin1', MECHANISM_OFFSET, MECHANISM_OFFSET + MECHANISM_BYTES).replace(/\0+$/, '')
  if (theirs !== mechanism) return `the peer uses the ${theirs} mechanism, this end ${mechanism}`
  return undefined
}

/** The header (flags and size) of a frame of `size` bytes. */
export function frameHeader (size: number, flags: number): Buffer {
  if (size <= SHORT_MAX) return Buffer.from([flags, size])
  const buf = Buffer.allocUnsafe(9)
  buf[0] = flags | FLAG_LONG
  buf.writeUInt32BE(Math.floor(size / 0x1_0000_0000), 1)
  buf.writeUInt32BE(size >>> 0, 5)
  return buf
}

/** A whole command frame: name and data. */
export function encodeCommand (name: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1'), data])
  return Buffer.concat([frameHeader(body.length, FLAG_COMMAND), body])
}

/** Metadata properties (READY, INITIATE): name length, name, value size (4 octets), value. */
export function encodeProperties (props: Record<string, string>): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of Object.entries(props)) {
    const v = Buffer.from(value, 'latin1')
    const size = Buffer.allocUnsafe(4)
    size.writeUInt32BE(v.length, 0)
    parts.push(Buffer.from([name.length]), Buffer.from(name, 'latin1'), size, v)
  }
  return Buffer.concat(parts)
}

/** Parses metadata properties; undefined when malformed. Names are case-insensitive. */
export function decodeProperties (buf: Buffer): Map<string, Buffer> | undefined {
  const props = new Map<string, Buffer>()
  let at = 0
  while (at < buf.length) {
    const nameLength = buf[at] as number
    if (nameLength === 0 || at + 1 + nameLength + 4 > buf.length) return undefined
    const name = buf.toString('latin1', at + 1, at + 1 + nameLength).toLowerCase()
    at += 1 + nameLength
    const valueLength = buf.readUInt32BE(at)
    at += 4
    if (at + valueLength > buf.length) return undefined
    props.set(name, buf.subarray(at, at + valueLength))
    at += valueLength
  }
  return props
}

export interface Frame {
  flags: number
  body: Buffer
}

/** A command's name and data, or undefined when the body is not a well-formed command. */
export function parseCommand (body: Buffer): { name: string, data: Buffer } | undefined {
  const nameLength = body[0]
  if (nameLength === undefined || body.length < 1 + nameLength) return undefined
  return { name: body.toString('latin1', 1, 1 + nameLength), data: body.subarray(1 + nameLength) }
}

/**
 * Splits a byte stream into frames. Bytes arrive in chunks of any size; a frame may span
 * chunks. Frames over `maxFrameBytes` are refused (the peer is not a writer we can trust).
 */
export class FrameDecoder {
  #chunks: Buffer[] = []
  #buffered = 0
  readonly #maxFrameBytes: number

  constructor (maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes
  }

  /** Adds received bytes. */
  append (chunk: Buffer): void {
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** Moves every complete frame to `out`; returns an Error for a malformed stream. */
  parse (out: Frame[]): Error | undefined {
    if (this.#buffered === 0) return undefined
    let buf = this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#buffered)
    let at = 0
    for (;;) {
      if (buf.length - at < 2) break
      const flags = buf[at] as number
      if ((flags & ~(FLAG_MORE | FLAG_LONG | FLAG_COMMAND)) !== 0) return new Error(`bad frame flags 0x${flags.toString(16)}`)
      let size: number
      let headerBytes: number
      if ((flags & FLAG_LONG) === 0) {
        size = buf[at + 1] as number
        headerBytes = 2
      } else {
        if (buf.length - at < 9) break
        const hi = buf.readUInt32BE(at + 1)
        size = hi * 0x1_0000_0000 + buf.readUInt32BE(at + 5)
        headerBytes = 9
      }
      if (size > this.#maxFrameBytes) return new Error(`a frame of ${size} bytes is over the limit of ${this.#maxFrameBytes}`)
      if (buf.length - at < headerBytes + size) break
      out.push({ flags, body: buf.subarray(at + headerBytes, at + headerBytes + size) })
      at += headerBytes + size
    }
    buf = buf.subarray(at)
    this.#chunks = buf.length === 0 ? [] : [buf]
    this.#buffered = buf.length
    return undefined
  }

  /** Takes up to `n` raw bytes before frames start (the greeting); undefined until all arrived. */
  take (n: number): Buffer | undefined {
    if (this.#buffered < n) return undefined
    const buf = this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#buffered)
    const rest = buf.subarray(n)
    this.#chunks = rest.length === 0 ? [] : [rest]
    this.#buffered = rest.length
    return buf.subarray(0, n)
  }
}
