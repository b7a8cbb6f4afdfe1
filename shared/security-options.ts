import { curvePublicKeyFor, decodeCurveKey } from './curve-keys.js'
import { InvalidOptionError } from './errors.js'
import type { Resolved } from './option-values.js'

/** Who may use the writer's endpoints: ipc socket file mode, CURVE keys and allow-list. */
export interface WriterSecurityOptions {
  /**
   * Mode of the ipc socket files (data and receipts), set right after bind: 0o600 (only the
   * writer's user), or 0o660 to let the file's group connect. Never bits for others.
   */
  socketMode?: number | undefined
  /** The writer's CURVE secret key (Z85, from `logfunnel keygen`); turns CURVE on for both sockets. */
  curveSecretKey?: string | null | undefined
  /** Z85 public keys of the producers allowed in when CURVE is on; every other key is refused. */
  curveAllowedKeys?: readonly string[] | undefined
}

/** A producer's CURVE keys: all or nothing (`curvePublicKey` is derived when left out). */
export interface ProducerSecurityOptions {
  /** The writer's CURVE public key (ZMQ_CURVE_SERVERKEY). */
  curveServerKey?: string | null | undefined
  /** This producer's CURVE public key (ZMQ_CURVE_PUBLICKEY); must be in the writer's `curveAllowedKeys`. */
  curvePublicKey?: string | null | undefined
  /** This producer's CURVE secret key (ZMQ_CURVE_SECRETKEY). */
  curveSecretKey?: string | null | undefined
}

/**
 * The environment variable `logfunnel writer` reads its CURVE secret key from when no flag gives
 * it; startWriter() uses it because a command line is visible to every user in `ps`.
 */
export const SECRET_KEY_ENV = 'LOGFUNNEL_CURVE_SECRET_KEY'

export const WRITER_SECURITY_DEFAULTS = Object.freeze({
  socketMode: 0o600,
  curveSecretKey: null,
  curveAllowedKeys: Object.freeze([]) as readonly string[]
})

/** The mode bits `socketMode` may hold: read and write for owner and group. */
const SOCKET_MODE_ALLOWED = 0o660
const SOCKET_MODE_REQUIRED = 0o600

export function resolveWriterSecurity (opts: WriterSecurityOptions): Resolved<WriterSecurityOptions> {
  const socketMode = opts.socketMode ?? WRITER_SECURITY_DEFAULTS.socketMode
  if (typeof socketMode !== 'number' || !Number.isInteger(socketMode) ||
      (socketMode & ~SOCKET_MODE_ALLOWED) !== 0 || (socketMode & SOCKET_MODE_REQUIRED) !== SOCKET_MODE_REQUIRED) {
    throw new InvalidOptionError('socketMode must be a mode with read and write for the owner, optionally group bits, ' +
      `nothing for others (0o600 or 0o660), got ${typeof socketMode === 'number' ? `0o${socketMode.toString(8)}` : String(socketMode)}`)
  }
  const curveSecretKey = opts.curveSecretKey ?? null
  if (curveSecretKey !== null) checkKey(curveSecretKey, 'curveSecretKey', false)
  const keys = opts.curveAllowedKeys ?? WRITER_SECURITY_DEFAULTS.curveAllowedKeys
  if (!Array.isArray(keys)) throw new InvalidOptionError('curveAllowedKeys must be an array of Z85 public keys')
  keys.forEach((key: unknown, i) => checkKey(key, `curveAllowedKeys[${i}]`, true))
  if (curveSecretKey !== null && keys.length === 0) {
    // The server's public key is handed to every producer, so it proves nothing about a client.
    throw new InvalidOptionError('curveAllowedKeys must list at least one producer public key when curveSecretKey is set')
  }
  if (curveSecretKey === null && keys.length > 0) {
    throw new InvalidOptionError('curveAllowedKeys needs curveSecretKey (CURVE is off without it)')
  }
  return { socketMode, curveSecretKey, curveAllowedKeys: Object.freeze([...new Set(keys as string[])]) }
}

export function resolveProducerSecurity (opts: ProducerSecurityOptions): Resolved<ProducerSecurityOptions> {
  const curveServerKey = opts.curveServerKey ?? null
  const curveSecretKey = opts.curveSecretKey ?? null
  let curvePublicKey = opts.curvePublicKey ?? null
  if (curveServerKey === null && curveSecretKey === null && curvePublicKey === null) {
    return { curveServerKey, curvePublicKey, curveSecretKey }
  }
  if (curveServerKey === null || curveSecretKey === null) {
    throw new InvalidOptionError('curveServerKey and curveSecretKey must be set together (curvePublicKey is optional)')
  }
  checkKey(curveServerKey, 'curveServerKey', true)
  checkKey(curveSecretKey, 'curveSecretKey', false)
  const derived = curvePublicKeyFor(curveSecretKey) as string
  if (curvePublicKey === null) curvePublicKey = derived
  checkKey(curvePublicKey, 'curvePublicKey', true)
  if (curvePublicKey !== derived) {
    throw new InvalidOptionError('curvePublicKey must be the public half of curveSecretKey (logfunnel keygen prints both)')
  }
  return { curveServerKey, curvePublicKey, curveSecretKey }
}

/** Checks a Z85 key; a secret key is never echoed in the message. */
function checkKey (key: unknown, name: string, isPublic: boolean): void {
  if (decodeCurveKey(key) !== undefined) return
  const shown = isPublic ? `'${String(key)}'` : typeof key === 'string' ? `a string of ${key.length} characters` : typeof key
  throw new InvalidOptionError(`${name} must be a 40-character Z85 CURVE key (logfunnel keygen), got ${shown}`)
}
