import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { newHasher } from '../shared/checkpoint-format.js'
import { readSealKey, withMac } from '../shared/seal-key.js'
import { BIN, exitCode, spawnNode, tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { setFiles, verifyCli } from './helpers/checkpoints.js'

async function keygen (path: string): Promise<void> {
  const child = spawnNode([BIN, 'keygen', '--seal'])
  expect(await exitCode(child)).toBe(0)
  writeFileSync(path, child.stdout())
}

describe('sealed checkpoints', () => {
  it('verify with the initial key: ok; a wrong key and a checkpoint forged with a later key are refused', async () => {
    const dir = tempDir()
    const initial = join(dir, 'initial.key')
    const onMachine = join(dir, 'writer.key')
    await keygen(initial)
    copyFileSync(initial, onMachine)
    const writer = await startWriterChild(dir, ['--checkpoints', '--checkpoint-interval', '100ms', '--rotate-size', '16K', '--seal-key-file', onMachine])
    await runProducers(2, { endpoint: writer.endpoint, records: 300, sizes: [200], pauseEvery: 50, pauseMs: 60 })
    await writer.stop()
    const files = setFiles(dir)
    const text = files.map((f) => readFileSync(f, 'utf8')).join('')
    const checkpoints = text.split('\n').filter((l) => l.includes('"logfunnel":"checkpoint"')).map((l) => JSON.parse(l))
    expect(checkpoints.some((c) => c.at === 'interval')).toBe(true)
    expect(checkpoints.some((c) => c.at === 'rotate-in')).toBe(true)
    // The key on the machine moved past every checkpoint written: none of theirs is left.
    expect(readSealKey(onMachine).i).toBe(checkpoints.length)

    const good = await verifyCli(['--seal-key-file', initial, ...files])
    expect(good.code, JSON.stringify(good.report.defects)).toBe(0)
    expect(good.report).toMatchObject({ ok: true, final: true, sealed: checkpoints.length, checkpoints: checkpoints.length })

    const wrong = join(dir, 'wrong.key')
    await keygen(wrong)
    const refused = await verifyCli(['--seal-key-file', wrong, ...files])
    expect(refused.code).toBe(1)
    expect(refused.report.defects.map((d: any) => d.kind)).toEqual(['seal-key'])

    // Whoever takes the machine holds the later key: edit a line, re-hash and re-seal the stop checkpoint.
    const last = join(dir, 'app.log')
    const lines = readFileSync(last, 'utf8').split('\n').slice(0, -1)
    const stop = JSON.parse(lines.at(-1) as string)
    const k = lines.length - 2
    lines[k] = (lines[k] as string).replace('xxxx', 'yyyy')
    let prevCp = lines.length - 2
    while (prevCp >= 0 && !(lines[prevCp] as string).includes('"logfunnel":"checkpoint"')) prevCp--
    const seg = lines.slice(prevCp + 1, -1).map((l) => `${l}\n`).join('')
    const later = readSealKey(onMachine)
    const hash = newHasher(stop.alg ?? 'sha256')
    hash.update(Buffer.from(seg))
    const { mac: _mac, ...body } = { ...stop, hash: hash.digest(), seal: later.i }
    lines[lines.length - 1] = withMac(later, JSON.stringify(body))
    writeFileSync(last, lines.map((l) => `${l}\n`).join(''))
    const forged = await verifyCli(['--seal-key-file', initial, ...files])
    expect(forged.code).toBe(1)
    expect(forged.report.defects).toMatchObject([{ kind: 'seal-index', file: last, checkpoint: stop.n }])
    // Without the key, the forgery passes the hash chain: only the seal finds it.
    expect((await verifyCli(files)).code).toBe(0)
  })

  it('a writer restarted with another chain\'s key (a fresh keygen --seal) refuses to start, exit 1; with the chain\'s key it continues and the set verifies', async () => {
    const dir = tempDir()
    const initial = join(dir, 'initial.key')
    const onMachine = join(dir, 'writer.key')
    const other = join(dir, 'other.key')
    await keygen(initial)
    await keygen(other)
    copyFileSync(initial, onMachine)
    const args = ['--checkpoints', '--checkpoint-size', '4K']
    const writer = await startWriterChild(dir, [...args, '--seal-key-file', onMachine])
    await runProducers(1, { endpoint: writer.endpoint, records: 200, sizes: [200] })
    await writer.stop()
    const file = join(dir, 'app.log')
    const written = readFileSync(file, 'utf8')
    const otherKey = readFileSync(other, 'utf8')
    // Before, it started, evolved the other key to the chain's index and sealed on with it: every
    // later checkpoint failed verification (seal-mac) with the chain's initial key.
    const refused = spawnNode([BIN, 'writer', '--file', file, '--endpoint', `ipc://${join(dir, 'w.sock')}`, ...args, '--seal-key-file', other])
    expect(await exitCode(refused), refused.describe()).toBe(1)
    expect(refused.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_INVALID_OPTION: sealKeyFile .* another chain's key/)
    expect(refused.stdout()).not.toContain('"event":"ready"')
    expect(readFileSync(file, 'utf8')).toBe(written)
    expect(readFileSync(other, 'utf8')).toBe(otherKey)

    const again = await startWriterChild(dir, [...args, '--seal-key-file', onMachine])
    await again.stop()
    const set = await verifyCli(['--seal-key-file', initial, file])
    expect(set.code, JSON.stringify(set.report.defects)).toBe(0)
    expect(set.report).toMatchObject({ ok: true, final: true, sealed: set.report.checkpoints })
  })

  it('after kill -9 the tail is reported unproven, not as a defect; a restart continues the chain over it', async () => {
    const dir = tempDir()
    const args = ['--checkpoints', '--checkpoint-size', '64K']
    const writer = await startWriterChild(dir, args)
    await runProducers(1, { endpoint: writer.endpoint, records: 500, sizes: [200], pauseEvery: 20, pauseMs: 1 })
    writer.child.proc.kill('SIGKILL')
    await exitCode(writer.child)
    const file = join(dir, 'app.log')
    const text = readFileSync(file, 'utf8')
    const lastCp = text.lastIndexOf('"logfunnel":"checkpoint"')
    const tail = Buffer.byteLength(text.slice(text.indexOf('\n', lastCp) + 1))
    expect(tail).toBeGreaterThan(0)
    const crashed = await verifyCli([file])
    expect(crashed.code).toBe(0)
    expect(crashed.report).toMatchObject({ ok: true, defects: [], final: false, unprovenBytes: tail, unprovenFile: file })

    const again = await startWriterChild(dir, args)
    await again.stop()
    const resumed = await verifyCli([file])
    expect(resumed.code, JSON.stringify(resumed.report.defects)).toBe(0)
    expect(resumed.report).toMatchObject({ ok: true, final: true, unprovenBytes: 0 })
  })
}, 60_000)
