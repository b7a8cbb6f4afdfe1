import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EndpointInUseError } from '../shared/errors.js'
import { socketFileLock } from '../writer/endpoint-lock.js'
import { exitCode, spawnNode, tempDir } from './helpers/children.js'

/** The endpoint lock where there is no abstract namespace and no fs-ext (macOS without it). */

const inUse = (path: string) => (cause: unknown) => new EndpointInUseError('ipc:///x', path, { cause })

describe('socket-file endpoint lock', () => {
  it('a second writer is refused; released, the lock can be taken again and its file is gone', async () => {
    const path = join(tempDir(), 'w.sock.lock')
    const first = await socketFileLock(path, inUse(path))
    await expect(socketFileLock(path, inUse(path))).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_ENDPOINT_IN_USE' })
    first.release()
    expect(existsSync(path)).toBe(false)
    const again = await socketFileLock(path, inUse(path))
    again.release()
  })

  it('a socket file left by a killed holder is replaced', async () => {
    const path = join(tempDir(), 'w.sock.lock')
    const holder = spawnNode(['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log(JSON.stringify({ event: 'listening' })))`])
    await holder.waitForLine((l) => l.event === 'listening')
    await expect(socketFileLock(path, inUse(path))).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_ENDPOINT_IN_USE' })
    holder.proc.kill('SIGKILL')
    await exitCode(holder)
    expect(existsSync(path)).toBe(true)
    const lock = await socketFileLock(path, inUse(path))
    lock.release()
  })
})
