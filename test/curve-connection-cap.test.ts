import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
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
const LATE_RECORDS = 500
/** More connections at once than the writer has descriptors. */
const BURST = 600

describe('a CURVE writer under a small descriptor limit', () => {
  it(`${FLOOD} CURVE connections with an allowed key under ulimit -n ${FD_LIMIT}: ${CAP} admitted (a producer's among them), the rest refused and counted (refusedConnections, connections-refused); the producer's records all written once; a producer past the cap dials again and gets in when one closes`, async () => {
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

    // The producer's data connection is admitted first (its first half is in the file), then it waits.
    const gate = join(dir, 'go')
    const producer = spawnProducer({
      endpoint, records: RECORDS, announceAfter: RECORDS / 2, waitForFile: gate, producer: { curveServerKey: server.publicKey, curveSecretKey: good.secretKey }
    })
    await waitFor(() => lineCount(file) === RECORDS / 2, 30_000, () => `${lineCount(file)} lines in the file\n${producer.describe()}`)

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

      // A producer that comes while the writer is full is refused and dials again.
      const late = spawnProducer({ endpoint, records: LATE_RECORDS, closeDeadlineMs: 30_000, producer: { curveServerKey: server.publicKey, curveSecretKey: good.secretKey } })
      await waitFor(() => refusals() > FLOOD - (CAP - 1), 30_000, () => `the late producer was not refused\n${late.describe()}`)

      // The admitted producer logs on past the cap: every record in the file, once.
      writeFileSync(gate, '')
      const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
      expect(done.stats).toMatchObject({ records: RECORDS, heldBytes: 0, spooled: 0 })
      expect(handshakes).toBe(CAP - 1)
      // Its close frees a connection: the late producer gets in, and its records all reach the file.
      const lateDone = await late.waitForLine((l) => l.event === 'done', 60_000)
      expect(lateDone.stats).toMatchObject({ records: LATE_RECORDS, heldBytes: 0, spooled: 0 })
    } finally {
      for (const push of pushes) push.close()
    }
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: RECORDS + LATE_RECORDS, producers: 2, duplicates: 0, rejected: {}, denied: 0, refusedConnections: refusals() })
    expect(lineCount(file)).toBe(RECORDS + LATE_RECORDS)
    expect(await verifyFile(file)).toMatchObject({ lines: RECORDS + LATE_RECORDS, producers: 2, gaps: 0, duplicates: 0, ok: true })
  })

  it(`${BURST} CURVE connections at once, more than its ${FD_LIMIT} descriptors: ${CAP} admitted, the rest refused; its descriptors come back, SIGHUP reopens the file, state saves work`, async () => {
    const dir = tempDir()
    const [server, key] = [zmq.curveKeyPair(), zmq.curveKeyPair()]
    const port = await freePortPair()
    const endpoint = `tcp://127.0.0.1:${port}`
    const file = join(dir, 'app.log')
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, `--curve-allowed-keys=${key.publicKey}`, '--state-persist-ms', '100'],
      { LOGFUNNEL_CURVE_SECRET_KEY: server.secretKey, NODE_DEBUG: 'logfunnel' })
    const pid = writer.child.proc.pid as number
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`]).status).toBe(0)
    const fdCount = (): number => readdirSync(`/proc/${pid}/fd`).length
    const idle = fdCount()

    // libzmq's default context takes 1,023 sockets at most; each Push here is 3 (with its monitor's two).
    const context = new zmq.Context({ maxSockets: 4 * BURST })
    const pushes: zmq.Push[] = []
    let handshakes = 0
    const refusals = (): number => writer.child.stderr().split('\n').filter((l) => l.includes('ZAP: no room')).length
    try {
      for (let i = 0; i < BURST; i++) {
        const push = new zmq.Push({ context, curveServerKey: server.publicKey, curvePublicKey: key.publicKey, curveSecretKey: key.secretKey, linger: 0 })
        void (async () => { for await (const event of push.events) if (event.type === 'handshake') handshakes++ })()
        push.connect(endpoint)
        pushes.push(push)
      }
      // libzmq accepts until its table is full (accept(2) fails with EMFILE), then the next as
      // refused ones close. Before, the cap was asked for when no descriptor was left to read the
      // limit with, was taken as unlimited, and all were admitted: the table stayed full.
      await waitFor(() => handshakes === CAP && refusals() === BURST - CAP, 60_000,
        () => `${handshakes} CURVE connections admitted, ${refusals()} refused, ${fdCount()} descriptors open\n${writer.child.stderr().slice(-2000)}`)
      expect(stderrEvents(writer.child, 'connections-refused')[0]).toMatchObject({ reason: 'descriptor-limit', refused: 1, open: CAP, maxConnections: CAP, descriptorLimit: FD_LIMIT })
      await waitFor(() => fdCount() <= idle + CAP + 2, 20_000, () => `${fdCount()} descriptors open (${idle} idle)`)

      renameSync(file, `${file}.1`)
      writer.child.proc.kill('SIGHUP')
      await waitFor(() => existsSync(file), 10_000, () => `no new file after SIGHUP\n${writer.child.stderr().slice(-2000)}`)
    } finally {
      for (const push of pushes) push.close()
    }
    const summary = await writer.stop()
    expect(summary).toMatchObject({ fileErrors: 0, denied: 0, refusedConnections: BURST - CAP })
    for (const event of ['state-not-saved', 'error']) expect(stderrEvents(writer.child, event), writer.child.stderr()).toEqual([])
  })
}, 120_000)
