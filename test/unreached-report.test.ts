import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveProducerOptions, type ResolvedProducerOptions } from '../shared/options.js'
import { unreachedAtEnd } from '../producer/unreached-report.js'
import type { ReachFacts } from '../producer/writer-reach.js'
import { tempDir } from './helpers/children.js'

/** What the sender saw of the writer: nothing unless said. */
function facts (seen: Partial<ReachFacts> = {}): ReachFacts {
  return { reached: false, refused: undefined, handshakeFailed: false, accepted: false, dialed: false, lost: 0, ...seen }
}

/** An ipc endpoint whose socket paths exist (directories stand in for them), so only the facts decide; and a tcp one. */
function endpoints (): { ipc: ResolvedProducerOptions, tcp: ResolvedProducerOptions } {
  const dir = tempDir()
  const socket = join(dir, 'w.sock')
  mkdirSync(socket)
  mkdirSync(`${socket}.receipts`)
  return {
    ipc: resolveProducerOptions({ endpoint: `ipc://${socket}`, spoolDir: join(dir, 'spool') }),
    tcp: resolveProducerOptions({ endpoint: 'tcp://127.0.0.1:5999', spoolDir: join(dir, 'spool') })
  }
}

// Which report a producer ending with records in the spool makes, from the facts alone (the
// processes that produce each fact are in connect-failure.test.ts).
describe('the report at the end, no writer ever reached', () => {
  it('ipc, nothing seen of the connect (the sender had not dialed, or not read its answer): no report however long, the kernel answers an ipc connect at once', () => {
    const { ipc } = endpoints()
    expect(unreachedAtEnd(ipc, facts(), 5000, 10)).toBeUndefined()
    expect(unreachedAtEnd(ipc, facts({ dialed: true }), 5000, 10)).toBeUndefined()
  })

  it('tcp, a connect started and unanswered for a second: LOGFUNNEL_ERR_CONNECT, nothing accepted it; not before a connect was started', () => {
    const { tcp } = endpoints()
    expect(unreachedAtEnd(tcp, facts(), 5000, 10)).toBeUndefined()
    expect(unreachedAtEnd(tcp, facts({ dialed: true }), 999, 10)).toBeUndefined()
    expect(unreachedAtEnd(tcp, facts({ dialed: true }), 1000, 10)).toMatchObject({ code: 'LOGFUNNEL_ERR_CONNECT', message: expect.stringContaining('nothing accepted the connection') })
  })

  it('a connection accepted and never answered for a second: LOGFUNNEL_ERR_HANDSHAKE, ipc or tcp', () => {
    for (const opts of Object.values(endpoints())) {
      expect(unreachedAtEnd(opts, facts({ dialed: true, accepted: true }), 999, 10)).toBeUndefined()
      expect(unreachedAtEnd(opts, facts({ dialed: true, accepted: true }), 1000, 10)).toMatchObject({ code: 'LOGFUNNEL_ERR_HANDSHAKE', message: expect.stringContaining('no ZMTP handshake completed') })
    }
  })

  it('evidence at once: a refused connect, a failed handshake; none when a writer was reached or nothing is in the spool', () => {
    const { ipc } = endpoints()
    expect(unreachedAtEnd(ipc, facts({ dialed: true, refused: 'ECONNREFUSED' }), 10, 10)).toMatchObject({ code: 'LOGFUNNEL_ERR_CONNECT', message: expect.stringContaining('connection refused') })
    expect(unreachedAtEnd(ipc, facts({ dialed: true, accepted: true, handshakeFailed: true }), 10, 10)).toMatchObject({ code: 'LOGFUNNEL_ERR_HANDSHAKE' })
    expect(unreachedAtEnd(ipc, facts({ dialed: true, refused: 'ECONNREFUSED', reached: true }), 5000, 10)).toBeUndefined()
    expect(unreachedAtEnd(ipc, facts({ dialed: true, refused: 'ECONNREFUSED' }), 5000, 0)).toBeUndefined()
  })
})
