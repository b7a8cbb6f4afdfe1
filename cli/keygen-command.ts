import * as zmq from 'zeromq'
import { UsageError } from '../shared/errors.js'

const USAGE = `usage: logfunnel keygen

Prints a new CURVE key pair as one JSON line: {"publicKey":"<Z85>","secretKey":"<Z85>"}.
For the writer: keep the output private (--curve-secret-key-file takes it as is) and give
producers its publicKey as curveServerKey. For a producer: add its publicKey to the writer's
--curve-allowed-keys, and give the producer both keys (curvePublicKey, curveSecretKey).
`

/** `logfunnel keygen`: prints a CURVE key pair (zmq_curve_keypair). */
export async function main (argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE)
    return 0
  }
  if (argv.length > 0) throw new UsageError(`logfunnel keygen takes no arguments, got '${argv.join(' ')}'`)
  const { publicKey, secretKey } = zmq.curveKeyPair()
  process.stdout.write(JSON.stringify({ publicKey, secretKey }) + '\n')
  return 0
}
