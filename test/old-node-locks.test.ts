import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { ROOT, tempDir } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { expectWriterRefusal, startWriterWith } from './helpers/writer-cli.js'

/**
 * The writer's locks on a Node that binds every abstract socket name as the same one, as Node
 * before 20.8 did (nodejs/node#49667; modelled by a preload, checked by hand on Node 20.0.0).
 * Before, the writer's second lock (its receipt endpoint's) found the first's name taken, and
 * the writer never started: "LOGFUNNEL_ERR_ENDPOINT_IN_USE: endpoint ipc://.../w.sock.receipts is
 * already served by another writer", exit 1, on a host with no other writer. Now it probes once
 * and takes socket-file locks there, which still keep a second writer off the endpoint and the file.
 */
function truncatingEnv (): NodeJS.ProcessEnv {
  return {
    NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'abstract-names-truncated.cjs')}`,
    LOGFUNNEL_TEST_TAG: randomUUID()
  }
}

describe('the writer where abstract socket names all bind as one (Node before 20.8)', () => {
  it('starts, writes 2 producers\' 2,000 records once; a second writer on its endpoint or its file is refused', async () => {
    const dir = tempDir()
    const env = truncatingEnv()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const file = join(dir, 'app.log')
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, '--stats-interval-ms', '0'], env)
    await runProducers(2, { endpoint, records: 1000 })
    await expectWriterRefusal(['--file', join(dir, 'other.log'), '--endpoint', endpoint], 1, 'LOGFUNNEL_ERR_ENDPOINT_IN_USE', env)
    await expectWriterRefusal(['--file', file, '--endpoint', `ipc://${join(dir, 'w2.sock')}`], 1, 'LOGFUNNEL_ERR_FILE_IN_USE', env)
    expect(await writer.stop()).toMatchObject({ records: 2000, duplicates: 0 })
    expect(await verifyFile(file, { expect: 1000 })).toMatchObject({ ok: true, lines: 2000, producers: 2, gaps: 0, duplicates: 0, torn: 0 })
  })

  it('two writers on two endpoints and two files run side by side', async () => {
    const dir = tempDir()
    const env = truncatingEnv()
    const writers = await Promise.all(['a', 'b'].map(async (name) =>
      await startWriterWith(['--file', join(dir, `${name}.log`), '--endpoint', `ipc://${join(dir, `${name}.sock`)}`, '--stats-interval-ms', '0'], env)))
    await runProducers(1, { endpoint: writers[1]!.ready.endpoint, records: 500 })
    expect(await writers[1]!.stop()).toMatchObject({ records: 500 })
    expect(await writers[0]!.stop()).toMatchObject({ records: 0 })
  })
}, 60_000)
