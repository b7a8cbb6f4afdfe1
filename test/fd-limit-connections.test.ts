import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { freePortPair } from './helpers/ports.js'
import { startWriterWith, waitSpoolTaken } from './helpers/writer-cli.js'

const FD_LIMIT = 256
/** The writer keeps 64 descriptors for its files, and half the rest for receipt connections. */
const CAP = (FD_LIMIT - 64) / 2
const CONNECTIONS = 600
const PRODUCERS = 3
const RECORDS = 1000

describe('a tcp writer under a small descriptor limit', () => {
  it(`${CONNECTIONS} connections under ulimit -n ${FD_LIMIT}: ${CAP} taken, the rest refused and said (connections-refused); producers' records all written once, spool and state file still work`, async () => {
    const dir = tempDir()
    const port = await freePortPair()
    const spoolDir = join(dir, 'spool')
    const endpoint = `tcp://127.0.0.1:${port}`
    const writer = await startWriterWith(['--file', join(dir, 'app.log'), '--endpoint', endpoint, '--spool-dir', spoolDir, '--spool-poll-ms', '100'])
    const pid = writer.child.proc.pid as number
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`]).status).toBe(0)

    const sockets: Socket[] = []
    let closedByWriter = 0
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = connect({ host: '127.0.0.1', port })
        socket.on('error', () => {})
        socket.on('close', () => { closedByWriter++ })
        sockets.push(socket)
      }
      await Promise.all(sockets.map(async (s) => await Promise.race([once(s, 'connect'), once(s, 'close')])))
      // Before, accept(2) failed with EMFILE past ~225 connections, libuv closed the rest unread,
      // the writer said nothing, and its spool scans and state saves failed with EMFILE.
      await waitFor(() => closedByWriter === CONNECTIONS - CAP, 20_000, () => `${closedByWriter} connections closed by the writer`)
      await waitFor(() => stderrEvents(writer.child, 'connections-refused').length > 0, 10_000, () => writer.child.stderr())
      expect(stderrEvents(writer.child, 'connections-refused')[0]).toMatchObject({ reason: 'descriptor-limit', refused: 1, open: CAP, maxConnections: CAP, descriptorLimit: FD_LIMIT })
      expect(readdirSync(`/proc/${pid}/fd`).length).toBeLessThanOrEqual(FD_LIMIT - 32)

      // Producers refused on the data port keep their records and spool them at close.
      await runProducers(PRODUCERS, { endpoint, records: RECORDS, closeDeadlineMs: 2000, producer: { spoolDir } })
      await waitSpoolTaken(spoolDir, 30_000, writer.child)
      expect(closedByWriter).toBe(CONNECTIONS - CAP)
    } finally {
      for (const s of sockets) s.destroy()
    }
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, duplicates: 0, rejected: {} })
    expect(summary.refusedConnections).toBeGreaterThanOrEqual(CONNECTIONS - CAP)
    for (const event of ['state-not-saved', 'spool-error', 'error']) expect(stderrEvents(writer.child, event), writer.child.stderr()).toEqual([])
    expect(lineCount(join(dir, 'app.log'))).toBe(PRODUCERS * RECORDS)
    expect(await verifyFile(join(dir, 'app.log'))).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, gaps: 0, duplicates: 0, ok: true })
  })
}, 120_000)
