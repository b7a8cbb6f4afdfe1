/**
 * What the writer's checkpoints cost per byte, alone: the `Checkpointer` the file sink uses is fed
 * the way the sink feeds it (`note()` per producer batch, `update()` per written chunk of 4
 * batches of 256 KiB, a checkpoint line and its side file when one is due) with no socket, file
 * or other process around it, so the figure is the checkpoints' own work (hash included), which
 * a whole bench cell measures only within its writer's run-to-run spread (about 0.5 us per 1 KiB
 * record). Each hash is run twice, alternating, for a checkpoint per 64 MiB and per 1 MiB.
 *
 * A measurement tool, not a benchmark cell.
 *
 * Usage: node dist/bench/checkpoint-cost.js [--gib 2]
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { preferredAlg, type CheckpointAlg } from '../shared/checkpoint-format.js'
import { Checkpointer } from '../writer/sink/checkpointer.js'

const BATCH_BYTES = 256 * 1024
const LINES_PER_BATCH = 237 // 1106-byte lines, as at the bench's 1 KiB records
const BATCHES_PER_CHUNK = 4

/** CPU ns per byte of `total` bytes through one Checkpointer hashing with `alg`, a checkpoint every `everyMiB`. */
async function measure (file: string, alg: CheckpointAlg, everyMiB: number, total: number): Promise<number> {
  const cp = new Checkpointer(file, { alg, sizeBytes: everyMiB * 1024 * 1024 })
  const batches = Array.from({ length: 16 }, () => randomBytes(BATCH_BYTES))
  const producers = Array.from({ length: BATCHES_PER_CHUNK }, () => randomBytes(16).toString('hex'))
  let end = 0
  let seq = 0
  const start = process.cpuUsage()
  while (end < total) {
    const bufs: Buffer[] = []
    for (let k = 0; k < BATCHES_PER_CHUNK; k++) {
      const buf = batches[(seq * BATCHES_PER_CHUNK + k) % batches.length] as Buffer
      end += buf.length
      cp.note(end, producers[k], seq, LINES_PER_BATCH)
      bufs.push(buf)
    }
    seq++
    cp.update(bufs, end)
    if (cp.due(Date.now())) {
      cp.next('interval')
      await cp.written(Date.now())
    }
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000 / total
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { gib: { type: 'string', default: '2' } } })
  const total = Math.round(Number(values.gib) * 2 ** 30)
  const dir = mkdtempSync(join(tmpdir(), 'lf-cpcost-'))
  const file = join(dir, 'app.log')
  writeFileSync(file, '')
  const algs: CheckpointAlg[] = preferredAlg() === 'blake3' ? ['sha256', 'blake3'] : ['sha256']
  try {
    process.stdout.write(`| checkpoint every | hash | CPU ns per byte (run 1, run 2) |\n|--:|---|---|\n`)
    for (const everyMiB of [64, 1]) {
      const runs = new Map<CheckpointAlg, number[]>(algs.map((a) => [a, []]))
      for (let round = 0; round < 2; round++) {
        for (const alg of algs) runs.get(alg)?.push(await measure(file, alg, everyMiB, total))
      }
      for (const [alg, ns] of runs) process.stdout.write(`| ${everyMiB} MiB | ${alg} | ${ns.map((x) => x.toFixed(3)).join(', ')} |\n`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`)
    process.exitCode = 1
  })
}
