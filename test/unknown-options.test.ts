import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { funnel } from '../producer/funnel.js'
import { startWriter } from '../producer/start-writer.js'
import { exitCode, fixture, ROOT, spawnNode, tempDir } from './helpers/children.js'

/** A misspelt option silently ignored is a setting the user believes in and does not have. */

const INVALID = 'LOGFUNNEL_ERR_INVALID_OPTION'

describe('unknown and bad options are rejected in the API\'s own terms', () => {
  it("funnel({ sync: true }) names the key; funnel({ higWaterMark }) the closest known one", () => {
    expect(() => funnel({ sync: true } as never)).toThrow(expect.objectContaining({ code: INVALID, message: expect.stringMatching(/^unknown producer option 'sync'; known options: endpoint, /) }))
    expect(() => funnel({ higWaterMark: 1 } as never)).toThrow(expect.objectContaining({ code: INVALID, message: expect.stringMatching(/'higWaterMark' \(did you mean 'highWaterMark'\?\)/) }))
  })

  it("startWriter({ rotateSize: '100M' }) and startWriter({ fsync: 'always' }) reject before spawning, in option names", async () => {
    await expect(startWriter({ rotateSize: '100M' } as never)).rejects.toMatchObject({ code: INVALID, message: expect.stringMatching(/^unknown startWriter\(\) option 'rotateSize' \(did you mean 'rotateSizeBytes'\?\)/) })
    await expect(startWriter({ fsync: 'always' } as never)).rejects.toMatchObject({ code: INVALID, message: expect.stringMatching(/^fsync must be 'off', 'batch' or an integer/) })
    // Before, accepted: the start then failed with "not ready within -1 ms".
    await expect(startWriter({ startTimeoutMs: -1 })).rejects.toMatchObject({ code: INVALID, message: 'startTimeoutMs must be an integer number of ms between 1 and 3600000, got -1' })
  })

  it('the transport target with { destination } fails with the code and the key', async () => {
    const endpoint = `ipc://${join(tempDir(), 'w.sock')}`
    const transport = pino.transport({ target: join(ROOT, 'dist', 'producer', 'transport.js'), options: { endpoint, destination: '/tmp/x.log' } })
    const [err] = await new Promise<[Error]>((resolve) => transport.once('error', (e: Error) => resolve([e])))
    expect(err.message).toMatch(new RegExp(`^${INVALID}: unknown producer option 'destination'`))
  })

  // As README says: the transport target's options are checked in pino's worker thread, after
  // pino.transport() has returned, so nothing can throw to the caller.
  it('README\'s transport with a bad option: pino.transport() and the log call return; the ThreadStream\'s \'error\' ends the process, exit 1, the code on stderr', async () => {
    const child = spawnNode([fixture('transport-bad-option'), `ipc://${join(tempDir(), 'w.sock')}`])
    expect(await exitCode(child), child.describe()).toBe(1)
    expect(child.stdout()).toBe('{"event":"created"}\n{"event":"logged"}\n')
    expect(child.stderr()).toContain("Unhandled 'error' event")
    expect(child.stderr()).toMatch(new RegExp(`^InvalidOptionError: ${INVALID}: unknown producer option 'sync'`, 'm'))
  })

  it('with transport.on(\'error\'): the listener gets it (the code at the start of the message: the copy from the thread has no code property), the process goes on, exit 0', async () => {
    const child = spawnNode([fixture('transport-bad-option'), `ipc://${join(tempDir(), 'w.sock')}`, 'listen'])
    expect(await exitCode(child), child.describe()).toBe(0)
    const lines = child.stdout().trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.event)).toEqual(['created', 'logged', 'error', 'still running'])
    expect(lines[2]).toMatchObject({ code: null, message: expect.stringMatching(new RegExp(`^${INVALID}: unknown producer option 'sync'`)) })
  })
})
