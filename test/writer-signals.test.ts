import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { startWriterWith } from './helpers/writer-cli.js'

/** The listening tcp sockets of a process (inodes of its socket descriptors that /proc/net/tcp lists as LISTEN). */
function listeningPorts (pid: number): number[] {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m !== null) inodes.add(m[1]!)
    } catch {}
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = readFileSync(table, 'utf8') } catch {}
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16))
    }
  }
  return ports
}

describe('signals a service manager or a copied logrotate config may send', () => {
  it('SIGUSR1 opens no inspector port: it is said on stderr (signal-ignored), and the writer goes on', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const writer = await startWriterWith(['--file', join(dir, 'app.log'), '--endpoint', endpoint])
    const pid = writer.child.proc.pid as number
    writer.child.proc.kill('SIGUSR1')
    // Before, Node's default opened its inspector on 127.0.0.1:9229.
    await waitFor(() => stderrEvents(writer.child, 'signal-ignored').length === 1, 10_000, () => writer.child.stderr())
    expect(stderrEvents(writer.child, 'signal-ignored')).toMatchObject([{ signal: 'SIGUSR1' }])
    expect(listeningPorts(pid)).toEqual([])
    await runProducers(1, { endpoint, records: 100 })
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ reason: 'SIGTERM', records: 100 })
  })

  it('a SIGTERM storm (one every ms until it exits): one stopped line, exit 0 (5 runs)', async () => {
    for (let run = 0; run < 5; run++) {
      const dir = tempDir()
      const writer = await startWriterWith(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`])
      const proc = writer.child.proc
      // Before, a signal that came while Node tore the process down, after the stopped line, found
      // the default action back and killed it: exit status 143 for a clean stop.
      const storm = setInterval(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM') }, 1)
      try {
        expect(await exitCode(writer.child), writer.child.describe()).toBe(0)
      } finally {
        clearInterval(storm)
      }
      expect(writer.child.stdout().split('\n').filter((l) => l.includes('"event":"stopped"'))).toHaveLength(1)
    }
  })
})
