import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeHeader } from '../shared/protocol.js'
import { lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { expectWriterRefusal } from './helpers/writer-cli.js'
import { rawPush } from './helpers/raw-push.js'

/** What a tool globbing the log's rotated files (`app.log.*`, `app.log*`) picks up. */
const globbed = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('app.log')).sort()

describe('the state file is not picked up by globs over the log\'s rotated files (issue 9)', () => {
  it('is .app.log.logfunnel-state.json beside app.log, so app.log* matches only the log', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    await writer.stop()
    expect(globbed(dir)).toEqual(['app.log'])
    const state = JSON.parse(readFileSync(join(dir, '.app.log.logfunnel-state.json'), 'utf8'))
    expect(Object.keys(state.producers)).toHaveLength(1)
  })

  it('an old app.log.state.json is moved to the new name at start, and its state is used', async () => {
    const dir = tempDir()
    const producerId = randomBytes(16)
    const old = join(dir, 'app.log.state.json')
    writeFileSync(old, JSON.stringify({ version: 1, savedAt: Date.now(), producers: { [producerId.toString('hex')]: { next: 5, seen: Date.now() } } }))
    const writer = await startWriterChild(dir)
    const push = rawPush(writer.endpoint)
    for (let seq = 0; seq < 7; seq++) {
      await push.send([encodeHeader({ records: 1, seq, base: 0, producerId }), Buffer.from(`{"seq":${seq}}\n`)])
    }
    await waitFor(() => lineCount(writer.file) >= 2, 10_000, () => `${lineCount(writer.file)} lines`)
    const summary = await writer.stop()
    // Batches 0-4 were written by the previous writer (the migrated state says so).
    expect(summary).toMatchObject({ records: 2, duplicates: 5 })
    expect(readFileSync(writer.file, 'utf8')).toBe('{"seq":5}\n{"seq":6}\n')
    expect(existsSync(old)).toBe(false)
    expect(globbed(dir)).toEqual(['app.log'])
    expect(JSON.parse(readFileSync(join(dir, '.app.log.logfunnel-state.json'), 'utf8')).producers[producerId.toString('hex')].next).toBe(7)
    expect(stderrEvents(writer.child, 'state-migrated')).toEqual([{ event: 'state-migrated', from: old, to: join(dir, '.app.log.logfunnel-state.json') }])
  })
  // Before, a --state-file in a directory that did not exist left the writer running with a
  // state-not-saved line on stderr every statePersistMs (1 s), for good, and no state saved:
  // its restart wrote again the batches its producers resent.
  it('--state-file in a directory that does not exist: the directory is created at start, as the log file\'s is, and the state saved', async () => {
    const dir = tempDir()
    const stateFile = join(dir, 'state', 'app', 'app.state.json')
    const writer = await startWriterChild(dir, ['--state-file', stateFile])
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 100, producers: 1 })
    expect(stderrEvents(writer.child, 'state-not-saved')).toEqual([])
    // The one producer's next batch is the one after all it sent.
    const saved = Object.values(JSON.parse(readFileSync(stateFile, 'utf8')).producers) as Array<{ next: number }>
    expect(saved.map((p) => p.next)).toEqual([summary.batches])
  })

  it('--state-file whose directory cannot be made (a file is in the way): exit 1 with LOGFUNNEL_ERR_FILE before the ready line', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'plain'), '')
    const child = await expectWriterRefusal(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--state-file', join(dir, 'plain', 'app.state.json')], 1, 'LOGFUNNEL_ERR_FILE')
    expect(child.stderr()).toContain(join(dir, 'plain'))
  })
}, 60_000)
