import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyCheckpoints } from '../shared/verify-checkpoints.js'
import { tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { verifyCli } from './helpers/checkpoints.js'
import { haveProgram, RSYSLOGD } from './helpers/programs.js'
import { startRsyslogPair } from './helpers/rsyslog.js'

const HAVE_RSYSLOG = haveProgram('rsyslog', RSYSLOGD, ['-v'])
if (!HAVE_RSYSLOG) process.stdout.write(`checkpoint-shipping: skipped, ${RSYSLOGD} is absent (Debian package rsyslog)\n`)

function count (buf: Buffer): number {
  return buf.reduce((n, byte) => byte === 0x0a ? n + 1 : n, 0)
}

describe.runIf(HAVE_RSYSLOG)('checkpoints on a copy shipped by rsyslog (imfile -> omfwd -> imtcp -> omfile)', () => {
  it('the central copy verifies; a line edited, a line removed, a rotated file lost on the way: each found', async () => {
    const dir = tempDir()
    const logDir = join(dir, 'log')
    mkdirSync(logDir)
    const pair = await startRsyslogPair(dir, `${logDir}/app.log.2*Z`)
    const writer = await startWriterChild(logDir, ['--checkpoints', '--checkpoint-size', '4K', '--rotate-size', '16K'])
    await runProducers(2, { endpoint: writer.endpoint, records: 600, sizes: [200], pauseEvery: 20, pauseMs: 2 })
    await writer.stop()
    const rotated = readdirSync(logDir).filter((n) => /^app\.log\.2.*Z$/.test(n)).sort().map((n) => join(logDir, n))
    const texts = rotated.map((f) => readFileSync(f))
    const shipped = texts.reduce((n, t) => n + count(t), 0)
    await waitFor(() => pair.lines() >= shipped, 30_000, () => `central file has ${pair.lines()} of ${shipped} lines`)
    await pair.stop()
    expect(rotated.length).toBeGreaterThanOrEqual(5)

    // Byte for byte what the rotated files hold, in order: the chain proves it without the originals.
    const central = readFileSync(pair.central)
    const clean = await verifyCli([pair.central])
    expect(clean.code, JSON.stringify(clean.report.defects)).toBe(0)
    expect(clean.report).toMatchObject({ ok: true, defects: [], unprovenBytes: 0 })
    expect(central.equals(Buffer.concat(texts))).toBe(true)

    const text = central.toString()
    const lines = text.split('\n')
    const k = lines.findIndex((l, i) => i > 100 && !l.includes('"logfunnel":"checkpoint"'))
    const off = Buffer.byteLength(lines.slice(0, k).map((l) => `${l}\n`).join(''))
    const copy = join(dir, 'copy.log')
    const expectOne = async (kind: string): Promise<void> => {
      const r = await verifyCheckpoints([copy])
      expect(r.defects, JSON.stringify(r.defects)).toHaveLength(1)
      expect(r.defects[0]).toMatchObject({ kind, file: copy })
      expect(r.defects[0]!.from).toBeLessThanOrEqual(off)
      expect(r.defects[0]!.to).toBeGreaterThan(off)
    }
    writeFileSync(copy, lines.map((l, i) => i === k ? l.replace('xxxx', 'xxyx') : l).join('\n'))
    await expectOne('edited')
    writeFileSync(copy, lines.filter((_, i) => i !== k).join('\n'))
    await expectOne('deleted')

    // The third rotated file never arrived.
    const before = texts.slice(0, 2).reduce((n, t) => n + t.length, 0)
    writeFileSync(copy, Buffer.concat([central.subarray(0, before), central.subarray(before + (texts[2] as Buffer).length)]))
    const lost = await verifyCheckpoints([copy])
    expect(lost.defects).toMatchObject([{ kind: 'missing-file', file: copy, from: before }])
  })
}, 60_000)
