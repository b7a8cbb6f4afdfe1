import * as zmq from 'zeromq'
import { UsageError } from '../shared/errors.js'
import { newSealKey, sealKeyText } from '../shared/seal-key.js'

const USAGE = `usage: logfunnel keygen [--seal]

Prints a new CURVE key pair as one JSON line: {"publicKey":"<Z85>","secretKey":"<Z85>"}.
For the writer: keep the output private (--curve-secret-key-file takes it as is) and give
producers its publicKey as curveServerKey. For a producer: add its publicKey to the writer's
--curve-allowed-keys, and give the producer both keys (curvePublicKey, curveSecretKey).

--seal prints a new initial checkpoint sealing key instead (one JSON line). Keep a copy off
the machine for logfunnel verify --seal-key-file; give the writer another copy as
--seal-key-file (it evolves that file forward after every checkpoint).
`

/** `logfunnel keygen`: prints a CURVE key pair (zmq_curve_keypair). */
export async function main (argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE)
    return 0
  }
  if (argv.length === 1 && argv[0] === '--seal') {
    process.stdout.write(sealKeyText(newSealKey()))
    return 0
  }
  if (argv.length > 0) throw new UsageError(`logfunnel keygen takes only --seal, got '${argv.join(' ')}'`)
  const { publicKey, secretKey } = zmq.curveKeyPair()
  process.stdout.write(JSON.stringify({ publicKey, secretKey }) + '\n')
  return 0
}
