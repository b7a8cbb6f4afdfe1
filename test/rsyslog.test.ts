import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listLogSet } from '../shared/log-set.js'
import { verifyFile, verifyFiles } from '../shared/verify.js'
import { exitCode, spawnCommand, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { haveProgram, LOGROTATE, RSYSLOGD } from './helpers/programs.js'
import { startRsyslogPair } from './helpers/rsyslog.js'

const HAVE_RSYSLOG = haveProgram('rsyslog', RSYSLOGD, ['-v'])
const HAVE_LOGROTATE = haveProgram('logrotate', LOGROTATE, ['--version'])
const PRODUCERS = 4
const RECORDS = 25_000
const TOTAL = PRODUCERS * RECORDS
const PACED = { records: RECORDS, pauseEvery: 250, pauseMs: 10 }

function countLines (path: string): number {
  return readFileSync(path).reduce((n, byte) => byte === 0x0a ? n + 1 : n, 0)
}

async function producersDone (producers: ReturnType<typeof spawnProducer>[]): Promise<void> {
  for (const p of producers) {
    const done = await p.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(p), p.describe()).toBe(0)
    expect(done.closeError, p.describe()).toBe(null)
  }
}

/** The central file holds every record once, in each producer's order. */
async function expectCentralComplete (central: string): Promise<void> {
  const report = await verifyFile(central, { expect: RECORDS, expectTotal: TOTAL })
  expect(report, report.examples.join('\n')).toMatchObject({
    lines: TOTAL, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, ok: true
  })
}

describe.runIf(HAVE_RSYSLOG)('shipping with rsyslog: imfile on the rotated files -> TCP on loopback -> central file', () => {
  it(`built-in rotation (256K or 1 s): ${PRODUCERS} x ${RECORDS} records arrive once, in order`, async () => {
    const dir = tempDir()
    const logDir = join(dir, 'log')
    mkdirSync(logDir)
    const pair = await startRsyslogPair(dir, `${logDir}/app.log.2*Z`)
    const writer = await startWriterChild(logDir, ['--rotate-size', '256K', '--rotate-interval', '1s'])
    await producersDone(Array.from({ length: PRODUCERS }, () => spawnProducer({ endpoint: writer.endpoint, ...PACED })))
    // The last records reach a rotated file at the next 1 s boundary; then imfile ships them.
    await waitFor(() => pair.lines() >= TOTAL, 40_000, () => `central file has ${pair.lines()} of ${TOTAL} lines; ${readdirSync(logDir).length} files in ${logDir}`)
    const summary = await writer.stop()
    await pair.stop()

    expect(summary.records).toBe(TOTAL)
    expect(summary.rotations).toBeGreaterThanOrEqual(20)
    await expectCentralComplete(pair.central)
  })

  it.runIf(HAVE_LOGROTATE)(`logrotate (dateext, create, SIGHUP) forced 5 times: ${PRODUCERS} x ${RECORDS} records arrive once, in order`, async () => {
    const dir = tempDir()
    const logDir = join(dir, 'log')
    mkdirSync(logDir)
    const pair = await startRsyslogPair(dir, `${logDir}/app.log-[0-9]*[0-9]`)
    const pidFile = join(dir, 'app.pid')
    const writer = await startWriterChild(logDir, ['--pid-file', pidFile])
    const { pid } = await writer.child.waitForLine((l) => l.event === 'ready')
    const conf = join(dir, 'logrotate.conf')
    // dateext names never change once given (no .1 -> .2 renames under imfile); %s makes them unique per second.
    writeFileSync(conf, `${writer.file} {\n  create\n  dateext\n  dateformat -%Y%m%d-%s\n  rotate 1000\n  compress\n  delaycompress\n  postrotate\n    kill -HUP "$(cat ${pidFile})"\n  endscript\n}\n`)
    const rotate = async (): Promise<void> => {
      // delaycompress removes the previous rotated file at this rotation: imfile must be done with it.
      const rotatedLines = readdirSync(logDir).filter((n) => /^app\.log-\d+-\d+$/.test(n)).reduce((n, name) => n + countLines(join(logDir, name)), 0)
      await waitFor(() => pair.lines() >= rotatedLines, 20_000, () => `central ${pair.lines()} of the ${rotatedLines} rotated lines`)
      const second = Math.floor(Date.now() / 1000)
      await waitFor(() => Math.floor(Date.now() / 1000) > second, 2000, () => 'clock')
      const run = spawnCommand(LOGROTATE, ['-f', '-s', join(dir, 'logrotate.state'), conf])
      expect(await exitCode(run, 30_000), run.describe()).toBe(0)
      await waitFor(() => {
        const ino = statSync(writer.file).ino
        return readdirSync(`/proc/${pid}/fd`).some((fd) => { try { return statSync(`/proc/${pid}/fd/${fd}`).ino === ino } catch { return false } })
      }, 10_000, () => `writer ${pid} did not reopen ${writer.file}`)
    }

    const producers = Array.from({ length: PRODUCERS }, () => spawnProducer({ endpoint: writer.endpoint, ...PACED, announceAfter: 100 }))
    await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging', 30_000)))
    for (let i = 0; i < 4; i++) await rotate()
    await producersDone(producers)
    await rotate() // the last records into a rotated file, which imfile follows
    await waitFor(() => pair.lines() >= TOTAL, 30_000, () => `central file has ${pair.lines()} of ${TOTAL} lines`)
    const summary = await writer.stop()
    await pair.stop()

    expect(summary.records).toBe(TOTAL)
    const set = await listLogSet(logDir, 'app.log')
    expect(set.files).toHaveLength(6)
    const local = await verifyFiles(set.files, { expect: RECORDS }, set.missing)
    expect(local, local.examples.join('\n')).toMatchObject({ lines: TOTAL, ok: true })
    await expectCentralComplete(pair.central)
  })
}, 120_000)
