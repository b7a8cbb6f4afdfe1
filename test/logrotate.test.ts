import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listLogSet } from '../shared/log-set.js'
import { verifyFiles } from '../shared/verify.js'
import { exitCode, spawnCommand, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { haveProgram, LOGROTATE } from './helpers/programs.js'

const HAVE_LOGROTATE = haveProgram('logrotate', LOGROTATE, ['--version'])
const PRODUCERS = 4
const RECORDS = 20_000
const ROTATIONS = 10

/** The README's recommended config, with the test's paths. */
function config (file: string, pidFile: string): string {
  return `${file} {
    create
    rotate 1000
    compress
    delaycompress
    missingok
    sharedscripts
    postrotate
        kill -HUP "$(cat ${pidFile})"
    endscript
}
`
}

/** Whether process `pid` holds `file` (by inode) open: the writer has reopened after SIGHUP. */
function holdsOpen (pid: number, file: string): boolean {
  let ino: number
  try { ino = statSync(file).ino } catch { return false }
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try { return statSync(`/proc/${pid}/fd/${fd}`).ino === ino } catch { return false }
  })
}

describe.runIf(HAVE_LOGROTATE)('Debian logrotate (create, SIGHUP from postrotate via --pid-file)', () => {
  it(`forced ${ROTATIONS} times while ${PRODUCERS} producers log: the rotated files and the current one hold every record once, in order`, async () => {
    const dir = tempDir()
    const pidFile = join(dir, 'app.pid')
    const writer = await startWriterChild(dir, ['--pid-file', pidFile])
    const { pid } = await writer.child.waitForLine((l) => l.event === 'ready')
    const conf = join(dir, 'logrotate.conf')
    writeFileSync(conf, config(writer.file, pidFile))

    const producers = Array.from({ length: PRODUCERS }, () => spawnProducer({ endpoint: writer.endpoint, records: RECORDS, pauseEvery: 100, pauseMs: 10, announceAfter: 100 }))
    await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging', 30_000)))
    for (let i = 1; i <= ROTATIONS; i++) {
      const run = spawnCommand(LOGROTATE, ['-f', '-s', join(dir, 'logrotate.state'), conf])
      expect(await exitCode(run, 30_000), run.describe()).toBe(0)
      // delaycompress compresses a file one rotation later; the writer must have left it by then.
      await waitFor(() => holdsOpen(pid, writer.file), 10_000, () => `writer ${pid} has not reopened ${writer.file} after rotation ${i}`)
    }
    for (const p of producers) {
      const done = await p.waitForLine((l) => l.event === 'done', 60_000)
      expect(await exitCode(p), p.describe()).toBe(0)
      expect(done.closeError, p.describe()).toBe(null)
    }
    const summary = await writer.stop({ spoolTaken: true })

    const set = await listLogSet(dir, 'app.log')
    expect(set.files.map((path) => path.slice(dir.length + 1))).toEqual([
      ...Array.from({ length: ROTATIONS - 1 }, (_, i) => `app.log.${ROTATIONS - i}.gz`), 'app.log.1', 'app.log'
    ])
    const report = await verifyFiles(set.files, { expect: RECORDS, expectTotal: PRODUCERS * RECORDS }, set.missing)
    expect(report, report.examples.join('\n')).toMatchObject({
      lines: PRODUCERS * RECORDS, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, missingFiles: 0, ok: true
    })
    expect(summary.records).toBe(PRODUCERS * RECORDS)
  })
}, 120_000)
