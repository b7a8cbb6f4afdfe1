import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterWith } from './helpers/writer-cli.js'

/**
 * A stop gives the background gzip of rotated files `drainTimeoutMs`, not the whole backlog:
 * what is left is gzipped at the next start. Before, a SIGTERM waited for every gzip queued
 * (24 files of 8 MB: 11.6 s with drainTimeoutMs 5 s on a busy 2-core machine; in the soak,
 * bench/soak.ts, a writer whose gzip fell behind its rotations ran past 30 s and was SIGKILLed).
 */
const FILES = 64
const FILE_BYTES = 8 * 1024 * 1024
const DRAIN_MS = 500

describe('a stop with a backlog of rotated files to gzip', () => {
  it(`${FILES} rotated files of 8 MB: SIGTERM at ready stops within drainTimeoutMs (${DRAIN_MS} ms) + 3 s, no .gz.tmp left; the next start gzips the rest`, async () => {
    const dir = tempDir()
    const logs = join(dir, 'logs')
    mkdirSync(logs)
    const line = `{"level":30,"time":1,"pid":1,"msg":"${randomBytes(600).toString('base64')}"}\n`
    const content = line.repeat(Math.floor(FILE_BYTES / line.length))
    for (let i = 0; i < FILES; i++) writeFileSync(join(logs, `app.log.20260101T0000${String(i).padStart(2, '0')}.000Z`), content)
    const args = ['--file', join(logs, 'app.log'), '--endpoint', `ipc://${dir}/w.sock`, '--rotate-size', '100M', '--rotate-gzip',
      '--stats-interval-ms', '0', '--drain-timeout-ms', String(DRAIN_MS)]
    const count = (suffix: RegExp): number => readdirSync(logs).filter((n) => suffix.test(n)).length

    const first = await startWriterWith(args)
    const t0 = performance.now()
    await first.stop()
    const stopMs = performance.now() - t0
    // 512 MB does not gzip in a few seconds: before, the stop waited for all of it.
    expect(count(/Z$/), `stopped after ${Math.round(stopMs)} ms`).toBeGreaterThan(0)
    expect(count(/\.gz\.tmp$/)).toBe(0)
    expect(stopMs).toBeLessThan(DRAIN_MS + 3000)

    const second = await startWriterWith(args)
    await waitFor(() => count(/Z$/) === 0, 120_000, () => `${count(/Z$/)} files left uncompressed`)
    await second.stop()
    expect(count(/\.gz$/)).toBe(FILES)
    expect(count(/\.gz\.tmp$/)).toBe(0)
  })
})
