import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * A transport logger that is garbage-collected has its worker terminated by thread-stream with
 * the sockets open: the process goes on, and what the worker had sent reaches the file.
 */
/** 50 collected transports; `npm run stress` runs 200 (LOGFUNNEL_STRESS_ROUNDS). */
const ROUNDS = Number(process.env.LOGFUNNEL_STRESS_ROUNDS ?? 50)
const RECORDS = 100

describe('transport loggers created in a function and dropped, gc() between them', () => {
  it(`${ROUNDS} collected transports: exit 0, every worker terminated, flushed rounds all in the file, no line torn or doubled`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const app = spawnNode(['--expose-gc', fixture('transport-gc'), writer.endpoint, String(ROUNDS), String(RECORDS)])
    expect(await exitCode(app, 90_000), app.describe()).toBe(0)
    const done = await app.waitForLine((l) => l.event === 'done')
    expect(done.terminated, app.describe()).toBe(ROUNDS)
    const flushed = ROUNDS / 2 * RECORDS
    await waitFor(() => lineCount(writer.file) >= flushed, 20_000, () => `${lineCount(writer.file)} lines`)
    await writer.stop()
    const seen = new Set<string>()
    for (const line of readFileSync(writer.file, 'utf8').split('\n').filter((l) => l !== '')) {
      const { round, seq } = JSON.parse(line) as { round: number, seq: number }
      const key = `${round}/${seq}`
      expect(seen.has(key), `${key} twice`).toBe(false)
      seen.add(key)
    }
    for (let round = 0; round < ROUNDS; round += 2) {
      for (let seq = 0; seq < RECORDS; seq++) expect(seen.has(`${round}/${seq}`), `flushed round ${round} seq ${seq}`).toBe(true)
    }
  })
})
