import { decodeCurveKey } from '../../shared/curve-keys.js'
import type { Resolved } from '../../shared/option-values.js'
import type { ProducerSecurityOptions } from '../../shared/security-options.js'
import type { CurveKeys } from './curve-client.js'

/** A producer's resolved CURVE options as key bytes, or undefined without CURVE. */
export function curveKeysOf (opts: Resolved<ProducerSecurityOptions>): CurveKeys | undefined {
  const serverKey = decodeCurveKey(opts.curveServerKey)
  const publicKey = decodeCurveKey(opts.curvePublicKey)
  const secretKey = decodeCurveKey(opts.curveSecretKey)
  if (serverKey === undefined || publicKey === undefined || secretKey === undefined) return undefined
  return { serverKey, publicKey, secretKey }
}
