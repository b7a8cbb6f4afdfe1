import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as zmq from 'zeromq'
import { verifyFile } from '../shared/verify.js'
import { lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer } from './helpers/cluster.js'
import { freePortPair } from './helpers/ports.js'
import { startWriterWith } from './helpers/writer-cli.js'

const FD_LIMIT = 256
/** The plain path's cap (test/fd-limit-connections.test.ts): 64 descriptors for files, half the rest. */
const CAP = (FD_LIMIT - 64) / 2
/** CURVE connections with an allowed key, past the cap by this many beyond the good producer's. */
const FLOOD = 150
const RECORDS = 2000

describe('a CURVE writer under a small descriptor limit', () => {
  it(`${FLOOD} CURVE connections with an allowed key under ulimit -n ${FD_LIMIT}: ${CAP} admitted (a producer's among them), the rest refused and counted (refusedConnections, connections-refused); the producer's records all written once`, async () => {
    const dir = tempDir()
    const [server, good, flood] = [zmq.curveKeyPair(), zmq.curveKeyPair(), zmq.curveKeyPair()]
    const port = await freePortPair()
    const endpoint = `tcp://127.0.0.1:${port}`
    const file = join(dir, 'app.log')
    // NODE_DEBUG=logfunnel: the writer says each refusal as it answers it ("ZAP: no room"), the signal that all are answered.
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, `--curve-allowed-keys=${good.publicKey},${flood.publicKey}`],
      { LOGFUNNEL_CURVE_SECRET_KEY: server.secretKey, NODE_DEBUG: 'logfunnel' })
    const pid = writer.child.proc.pid as number
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`]).status).toBe(0)

    // The producer's data connection is admitted first (a receipt for its first half), then it waits.
    const gate = join(dir, 'go')
    const producer = spawnProducer({
      endpoint, records: RECORDS, flushEvery: RECORDS / 2, announceAfter: RECORDS / 2, waitForFile: gate, producer: { curveServerKey: server.publicKey, curveSecretKey: good.secretKey }
    })
    await producer.waitForLine((l) => l.event === 'receipted', 30_000)
    await producer.waitForLine((l) => l.event === 'logging', 30_000)

    const pushes: zmq.Push[] = []
    let handshakes = 0
    const refusals = (): number => writer.child.stderr().split('\n').filter((l) => l.includes('ZAP: no room')).length
    try {
      for (let i = 0; i < FLOOD; i++) {
        // libzmq's client does not dial again after the writer's ERROR: one refusal per socket.
        const push = new zmq.Push({ curveServerKey: server.publicKey, curvePublicKey: flood.publicKey, curveSecretKey: flood.secretKey, linger: 0 })
        void (async () => { for await (const event of push.events) if (event.type === 'handshake') handshakes++ })()
        push.connect(endpoint)
        pushes.push(push)
      }
      // Before, libzmq admitted all of them (and any number more, until the writer ran out of descriptors).
      await waitFor(() => handshakes === CAP - 1 && refusals() === FLOOD - (CAP - 1), 30_000,
        () => `${handshakes} CURVE connections admitted, ${refusals()} refused\n${writer.child.stderr().slice(-2000)}`)
      expect(stderrEvents(writer.child, 'connections-refused')[0]).toMatchObject({ reason: 'descriptor-limit', refused: 1, open: CAP, maxConnections: CAP, descriptorLimit: FD_LIMIT })

      // The admitted producer logs on past the cap: every record in the file, once.
      writeFileSync(gate, '')
      const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
      expect(done.stats).toMatchObject({ records: RECORDS, heldBytes: 0, spooled: 0 })
      expect(handshakes).toBe(CAP - 1)
    } finally {
      for (const push of pushes) push.close()
    }
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: RECORDS, producers: 1, duplicates: 0, rejected: {}, denied: 0, refusedConnections: FLOOD - (CAP - 1) })
    expect(lineCount(file)).toBe(RECORDS)
    expect(await verifyFile(file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, ok: true })
  })
}, 120_000)
