import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { open, readdirSync, readlinkSync, renameSync, writeFileSync, close } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { BIN, exitCode, spawnCommand, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

const RECORDS = 500
const PRODUCERS = 2
/** The descriptors of a process, as the paths they name. */
function openPaths (pid: number): string[] {
  const paths: string[] = []
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { paths.push(readlinkSync(`/proc/${pid}/fd/${fd}`)) } catch {}
  }
  return paths
}

describe('verify of a set while it rotates', () => {
  it(`reads the current file renamed away during the read (logrotate's mv + SIGHUP): ${PRODUCERS * RECORDS} of ${PRODUCERS * RECORDS}, ok`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    await runProducers(PRODUCERS, { endpoint: writer.endpoint, records: RECORDS })
    // The oldest file of the set is a FIFO: verify's read of it waits until this test writes it,
    // which holds verify between its start and its read of app.log, deterministically.
    const oldest = join(dir, 'app.log.20000101T000000.000Z')
    execFileSync('mkfifo', [oldest])
    const verify = spawnNode([BIN, 'verify', '--json', '--expect-total', String(PRODUCERS * RECORDS), oldest, writer.file])
    const fifo = await new Promise<number>((resolve, reject) => open(oldest, 'w', (err, fd) => err === null ? resolve(fd) : reject(err)))
    try {
      const pid = verify.proc.pid as number
      // Every file of the set is open before any is read. Before, app.log was opened by name once
      // the FIFO had been read, and this wait ran out.
      await waitFor(() => openPaths(pid).includes(writer.file), 10_000, () => `verify holds ${JSON.stringify(openPaths(pid))}, not ${writer.file}`)
      renameSync(writer.file, join(dir, 'app.log.20991231T000000.000Z'))
      writer.child.proc.kill('SIGHUP')
      await waitFor(() => readdirSync(dir).includes('app.log'), 10_000, () => `no new app.log after SIGHUP: ${writer.child.stderr()}`)
    } finally {
      close(fifo)
    }
    expect(await exitCode(verify), verify.describe()).toBe(0)
    expect(JSON.parse(verify.stdout())).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, gaps: 0, missing: 0, ok: true })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS })
  })
})

describe('verify of gzip through a pipe', () => {
  const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ pid: 7, seq: i })).join('\n') + '\n'
  for (const [how, script] of [
    ['cat app.log.1.gz | verify /dev/stdin', 'cat "$1" | "$2" "$3" verify --json /dev/stdin'],
    ['verify /dev/stdin < app.log.1.gz', '"$2" "$3" verify --json /dev/stdin < "$1"'],
    ['verify <(cat app.log.1.gz)', '"$2" "$3" verify --json <(cat "$1")']
  ]) {
    it(`is gunzipped by its magic bytes: ${how}: 1000 lines, ok`, async () => {
      // Before, gzip was told by the name alone: the compressed bytes read as one torn line, exit 1.
      const dir = tempDir()
      const path = join(dir, 'app.log.1.gz')
      writeFileSync(path, gzipSync(lines))
      const child = spawnCommand('bash', ['-c', script, 'bash', path, process.execPath, BIN])
      const closed = once(child.proc, 'close')
      expect(await exitCode(child), child.describe()).toBe(0)
      await closed
      expect(JSON.parse(child.stdout())).toMatchObject({ lines: 1000, producers: 1, torn: 0, ok: true })
    })
  }
})
