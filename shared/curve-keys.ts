import { createPrivateKey, createPublicKey } from 'node:crypto'

/**
 * CURVE keys in their text form, Z85 (ZeroMQ RFC 32): 32 bytes <-> 40 characters.
 * zeromq.js exposes `curveKeyPair()` but no Z85 codec, and the ZAP handler receives a client's
 * public key as 32 raw bytes, so the writer compares keys in binary.
 */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
const DIGITS = new Map([...ALPHABET].map((ch, i) => [ch, i]))

/** A CURVE key is 32 bytes, 40 characters in Z85. */
export const CURVE_KEY_BYTES = 32
export const CURVE_KEY_CHARS = 40

/** Decodes Z85 text (a multiple of 5 characters); undefined when it is not valid Z85. */
export function z85Decode (text: string): Buffer | undefined {
  if (text.length % 5 !== 0) return undefined
  const out = Buffer.allocUnsafe(text.length / 5 * 4)
  for (let i = 0; i < text.length; i += 5) {
    let value = 0
    for (let j = 0; j < 5; j++) {
      const digit = DIGITS.get(text[i + j] as string)
      if (digit === undefined) return undefined
      value = value * 85 + digit
    }
    if (value > 0xffff_ffff) return undefined
    out.writeUInt32BE(value, i / 5 * 4)
  }
  return out
}

/** Encodes bytes (a multiple of 4) as Z85 text. */
export function z85Encode (bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let text = ''
  for (let i = 0; i + 4 <= buf.length; i += 4) {
    let value = buf.readUInt32BE(i)
    let group = ''
    for (let j = 0; j < 5; j++) {
      group = ALPHABET[value % 85] + group
      value = Math.floor(value / 85)
    }
    text += group
  }
  return text
}

/** The 32 bytes of a Z85 CURVE key, or undefined when `key` is not one. */
export function decodeCurveKey (key: unknown): Buffer | undefined {
  if (typeof key !== 'string' || key.length !== CURVE_KEY_CHARS) return undefined
  return z85Decode(key)
}

/** DER prefix of a PKCS#8 X25519 private key (RFC 8410): the 32 key bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/**
 * The Z85 public key of a Z85 CURVE secret key. A CURVE key pair is an X25519 pair (libsodium's
 * crypto_box), so node:crypto derives the public half; undefined when `secretKey` is not a key.
 */
export function curvePublicKeyFor (secretKey: string): string | undefined {
  const secret = decodeCurveKey(secretKey)
  if (secret === undefined) return undefined
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
  return z85Encode(spki.subarray(spki.length - CURVE_KEY_BYTES))
}
