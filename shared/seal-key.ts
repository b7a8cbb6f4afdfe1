import { createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { InvalidOptionError } from './errors.js'

/**
 * Forward-evolving sealing keys for checkpoints (after journald's Forward Secure Sealing):
 * key i+1 = HMAC-SHA256(key i, "logfunnel-seal evolve"), one-way, so the machine that holds
 * key i cannot make key i-1 or any earlier one. Checkpoint sealed with key i carries `seal: i`
 * and `mac`: HMAC-SHA256 under a key derived from key i, over the line without its mac.
 */

/** A sealing key and its index in the evolution (0: the one `keygen --seal` made). */
export interface SealKey {
  i: number
  key: Buffer
}

const KEY_BYTES = 32
const KIND = 'logfunnel-seal-key'

/** A new initial key (index 0), 32 random bytes. */
export function newSealKey (): SealKey {
  return { i: 0, key: randomBytes(KEY_BYTES) }
}

/** The key after this one; the caller erases this one. */
export function evolve (k: SealKey): SealKey {
  return { i: k.i + 1, key: createHmac('sha256', k.key).update('logfunnel-seal evolve').digest() }
}

/** The key file's text: one JSON line. */
export function sealKeyText (k: SealKey): string {
  return `${JSON.stringify({ kind: KIND, i: k.i, key: k.key.toString('hex') })}\n`
}

/** Reads a key file; InvalidOptionError when it is not one. */
export function readSealKey (path: string): SealKey {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidOptionError(`cannot read seal key file ${path}: ${(err as Error).message}`)
  }
  try {
    const o = JSON.parse(text) as { kind?: unknown, i?: unknown, key?: unknown }
    if (o.kind === KIND && Number.isSafeInteger(o.i) && (o.i as number) >= 0 && typeof o.key === 'string' && /^[0-9a-f]{64}$/.test(o.key)) {
      return { i: o.i as number, key: Buffer.from(o.key, 'hex') }
    }
  } catch { /* reported below */ }
  throw new InvalidOptionError(`${path} is not a seal key file (logfunnel keygen --seal makes one)`)
}

/** The MAC of a checkpoint line's body (the JSON object without its mac field). */
export function sealMac (k: SealKey, body: string): string {
  const macKey = createHmac('sha256', k.key).update('logfunnel-seal mac').digest()
  return createHmac('sha256', macKey).update(body).digest('hex')
}

const MAC_TAIL = /,"mac":"([0-9a-f]{64})"\}\n?$/

/** Adds the mac field to a checkpoint's JSON text (no newline). */
export function withMac (k: SealKey, body: string): string {
  return `${body.slice(0, -1)},"mac":"${sealMac(k, body)}"}`
}

/** Splits a sealed line into its body and mac; undefined when it carries no mac. */
export function splitMac (line: string): { body: string, mac: string } | undefined {
  const m = MAC_TAIL.exec(line)
  if (m === null) return undefined
  return { body: `${line.slice(0, m.index)}}`, mac: m[1] as string }
}

/**
 * Keys by index from the initial key, computed forward once: `at(i)` for rising i costs the
 * evolutions between them only.
 */
export class SealKeyChain {
  #cur: SealKey
  readonly #initial: SealKey
  constructor (initial: SealKey) {
    this.#initial = initial
    this.#cur = initial
  }

  at (i: number): SealKey {
    if (i < this.#cur.i) this.#cur = this.#initial
    while (this.#cur.i < i) this.#cur = evolve(this.#cur)
    return this.#cur
  }
}
