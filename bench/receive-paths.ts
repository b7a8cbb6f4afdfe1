/**
 * `npm run bench:receive`: where a received byte's cost comes from. The writer-ingest pushers
 * push the same frames into different receivers, alternating, and each receiver's CPU per byte
 * is read from /proc, next to the pushers' and to the ceiling (a reused 64 KiB buffer written
 * with `writeSync`):
 *
 * - `writer`: `logfunnel writer` itself;
 * - `zeromq`: a zeromq.js `Pull` whose frames are written with `writevSync`, no checks;
 * - `net-fresh`: a ZMTP NULL reader over `node:net` with Node's own read buffers (a fresh one
 *   per read), frame bodies copied into a reused 8 MiB ring written with `writeSync`;
 * - `net-reused`: the same reader reading into one reused 256 KiB buffer (`onread`).
 *
 * A measurement tool, not a receive path of the writer: `net-reused` takes the accepted
 * socket's handle into a `net.Socket` with `onread`, which `net.Server` does not offer.
 *
 * `--first-touch` measures instead what the kernel's copy of a buffer costs the first time a
 * system call reads it: 512 MiB written to a file in 64 KiB `writeSync` calls from one reused
 * buffer, then twice from one 512 MiB buffer the process filled just before (first and second
 * pass), once to /dev/null, and copied once in user space.
 *
 * `--page-cache` measures what a growing file's page cache costs: `--mib` (default 3072) written
 * to one file in 64 KiB `writeSync` calls from one reused buffer, CPU ns per byte printed for
 * every 256 MiB; run it twice in a row to see memory the machine has just used again.
 *
 * Usage: node dist/bench/receive-paths.js [--mib 512] [--repeat 3] [--receivers a,b,...]
 *        [--writer-args '--fsync off ...'] [--first-touch] [--page-cache]
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, unlinkSync, writeSync, writevSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import * as zmq from 'zeromq'
import { encodeCommand, encodeGreeting, encodeProperties, FLAG_COMMAND, FLAG_LONG, GREETING_BYTES } from '../shared/zmtp-frames.js'
import { BenchChild, benchError, compiledScript, stopAll } from './child.js'
import type { PusherParams } from './ingest-pusher.js'
import { cpuSeconds, machineBusySeconds } from './proc-stats.js'

const FRAME_BYTES = 64 * 1024
const LINE_BYTES = 1024
const PUSHERS = 2
const RING_BYTES = 8 * 2 ** 20
const READ_BYTES = 256 * 1024
/** A write from the ring once this much is pending (and at the end of every turn). */
const WRITE_AT = 256 * 1024
const DEADLINE_MS = 120_000
const RECEIVERS = ['writer', 'zeromq', 'net-fresh', 'net-reused'] as const
type Receiver = typeof RECEIVERS[number]

interface Sample { receiver: Receiver | 'ceiling', mbPerSec: number, cpuPerGB: number, pushersCpuPerGB: number, otherCores: number }

if (process.argv[2] === 'receive') await receive(process.argv[3] as Receiver, process.argv[4] as string, process.argv[5] as string)
else await main()

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '512' }, repeat: { type: 'string', default: '3' }, receivers: { type: 'string', default: RECEIVERS.join(',') }, 'first-touch': { type: 'boolean', default: false }, 'page-cache': { type: 'boolean', default: false }, 'writer-args': { type: 'string', default: '' } } })
  if (values['first-touch']) {
    firstTouch()
    return
  }
  if (values['page-cache']) {
    pageCache(process.argv.includes('--mib') ? Number(values.mib) : 3072)
    return
  }
  const mib = Number(values.mib)
  const repeat = Number(values.repeat)
  const receivers = values.receivers.split(',') as Receiver[]
  const writerArgs = values['writer-args'].split(' ').filter((arg) => arg !== '')
  for (const r of receivers) if (!RECEIVERS.includes(r)) throw benchError(`unknown receiver ${r}; one of ${RECEIVERS.join(', ')}`)
  const samples: Sample[] = []
  for (let i = 0; i < repeat; i++) {
    samples.push(ceiling(mib))
    for (const r of receivers) samples.push(await runOnce(r, mib, writerArgs))
    for (const s of samples.slice(-receivers.length - 1)) process.stderr.write(`run ${i + 1}: ${s.receiver} ${s.mbPerSec.toFixed(0)} MB/s, ${s.cpuPerGB.toFixed(2)} s/GB\n`)
  }
  console.log(`receive paths: ${PUSHERS} writer-ingest pushers, ${FRAME_BYTES / 1024} KiB frames, ${mib} MiB per run, ${repeat} runs alternating\n`)
  console.log('| receiver | MB/s per run | receiver CPU s per GB per run (median) | pushers CPU s per GB (median) | other load (cores) |')
  console.log('|---|---|---|--:|--:|')
  for (const r of ['ceiling', ...receivers] as const) {
    const mine = samples.filter((s) => s.receiver === r)
    const list = (f: (s: Sample) => number, digits: number): string => mine.map((s) => f(s).toFixed(digits)).join(', ')
    console.log(`| ${r} | ${list((s) => s.mbPerSec, 0)} | ${list((s) => s.cpuPerGB, 2)} (${median(mine.map((s) => s.cpuPerGB)).toFixed(2)}) | ${r === 'ceiling' ? '-' : median(mine.map((s) => s.pushersCpuPerGB)).toFixed(2)} | ${median(mine.map((s) => s.otherCores)).toFixed(2)} |`)
  }
}

/** CPU per byte of `writeSync` from a reused buffer, from a big buffer's first and second pass, and to /dev/null. */
function firstTouch (): void {
  const total = 512 * 2 ** 20
  const dir = mkdtempSync(join(tmpdir(), 'logfunnel-receive-'))
  try {
    const reused = Buffer.alloc(FRAME_BYTES, 'x')
    const big = Buffer.alloc(total, 'x')
    const measure = (name: string, path: string, from: (offset: number) => Buffer): string => {
      const fd = openSync(path, 'a')
      const cpu0 = process.cpuUsage()
      for (let offset = 0; offset < total; offset += FRAME_BYTES) writeSync(fd, from(offset))
      const cpu = process.cpuUsage(cpu0)
      closeSync(fd)
      return `| ${name} | ${((cpu.user + cpu.system) * 1000 / total).toFixed(2)} |`
    }
    const file = join(dir, 'touch.log')
    const rows = [
      measure('file, one reused 64 KiB buffer', file, () => reused),
      measure('file, a 512 MiB buffer filled by the process, first pass', file, (offset) => big.subarray(offset, offset + FRAME_BYTES)),
      measure('file, the same buffer, second pass', file, (offset) => big.subarray(offset, offset + FRAME_BYTES)),
      measure('/dev/null, the same buffer', '/dev/null', (offset) => big.subarray(offset, offset + FRAME_BYTES)),
      userCopy(big)
    ]
    console.log('| 512 MiB in 64 KiB writeSync calls (the last row: a copy in user space) | CPU ns per byte |\n|---|--:|')
    for (const row of rows) console.log(row)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** CPU per byte of a file growing by `mib` MiB, per 256 MiB segment, from one reused 64 KiB buffer. */
function pageCache (mib: number): void {
  const segment = 256 * 2 ** 20
  const dir = mkdtempSync(join(tmpdir(), 'logfunnel-receive-'))
  try {
    const chunk = Buffer.alloc(FRAME_BYTES, 'x')
    const fd = openSync(join(dir, 'grow.log'), 'a')
    const costs: string[] = []
    for (let done = 0; done < mib * 2 ** 20; done += segment) {
      const cpu0 = process.cpuUsage()
      for (let offset = 0; offset < segment; offset += FRAME_BYTES) writeSync(fd, chunk)
      const cpu = process.cpuUsage(cpu0)
      costs.push(((cpu.user + cpu.system) * 1000 / segment).toFixed(2))
    }
    closeSync(fd)
    console.log(`file growing by ${mib} MiB in 64 KiB writeSync calls, CPU ns per byte per 256 MiB: ${costs.join(' ')}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The same bytes copied in user space, 64 KiB at a time, into another buffer as large. */
function userCopy (big: Buffer): string {
  const into = Buffer.alloc(big.length, 'y')
  const cpu0 = process.cpuUsage()
  for (let offset = 0; offset < big.length; offset += FRAME_BYTES) big.copy(into, offset, offset, offset + FRAME_BYTES)
  const cpu = process.cpuUsage(cpu0)
  return `| user space: the same buffer copied into another 512 MiB buffer | ${((cpu.user + cpu.system) * 1000 / big.length).toFixed(2)} |`
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function framesPerPusher (mib: number): number {
  return Math.ceil(mib * 2 ** 20 / FRAME_BYTES / PUSHERS)
}

/** The same bytes from one reused 64 KiB buffer, `writeSync` and an fsync. */
function ceiling (mib: number): Sample {
  const dir = mkdtempSync(join(tmpdir(), 'logfunnel-receive-'))
  try {
    const frames = framesPerPusher(mib) * PUSHERS
    const chunk = Buffer.alloc(FRAME_BYTES, 'x')
    const busy0 = machineBusySeconds()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const fd = openSync(join(dir, 'ceiling.log'), 'a')
    for (let i = 0; i < frames; i++) writeSync(fd, chunk)
    fsyncSync(fd)
    closeSync(fd)
    const sec = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const gb = frames * FRAME_BYTES / 1e9
    const own = (cpu.user + cpu.system) / 1e6
    return { receiver: 'ceiling', mbPerSec: gb * 1000 / sec, cpuPerGB: own / gb, pushersCpuPerGB: 0, otherCores: Math.max(0, (machineBusySeconds() - busy0 - own) / sec) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runOnce (receiver: Receiver, mib: number, writerArgs: string[]): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'logfunnel-receive-'))
  const children: BenchChild[] = []
  try {
    const frames = framesPerPusher(mib)
    const bytes = frames * PUSHERS * FRAME_BYTES
    const file = join(dir, 'app.log')
    const endpoint = `ipc://${join(dir, 'r.sock')}`
    const child = receiver === 'writer'
      ? new BenchChild(compiledScript('../cli/bin.js'), ['writer', '--file', file, '--endpoint', endpoint, '--drain-idle-ms', '1', ...writerArgs], 'writer')
      : new BenchChild(compiledScript('receive-paths.js'), ['receive', receiver, file, endpoint], receiver)
    children.push(child)
    await child.next('ready', DEADLINE_MS)
    const params: PusherParams = { endpoint, frames, frameBytes: FRAME_BYTES, lineBytes: LINE_BYTES }
    const pushers: BenchChild[] = []
    for (let i = 0; i < PUSHERS; i++) pushers.push(new BenchChild(compiledScript('ingest-pusher.js'), [JSON.stringify(params)], `pusher ${i + 1}`))
    children.push(...pushers)
    await Promise.all(pushers.map(async (p) => await p.next('ready', DEADLINE_MS)))
    const pushersCpu = (): number => pushers.reduce((sum, p) => sum + cpuSeconds(p.pid), 0)
    const busy0 = machineBusySeconds()
    const pushers0 = pushersCpu()
    const cpu0 = cpuSeconds(child.pid)
    const t0 = performance.now()
    for (const p of pushers) p.send('go')
    await Promise.all(pushers.map(async (p) => await p.next('sent', DEADLINE_MS)))
    const deadline = Date.now() + DEADLINE_MS
    while (size(file) < bytes) {
      if (Date.now() > deadline) throw benchError(`${receiver}: ${size(file)} of ${bytes} bytes at the deadline`)
      await delay(1)
    }
    const cpu = cpuSeconds(child.pid) - cpu0
    const pusherCpu = pushersCpu() - pushers0
    child.proc.kill('SIGTERM')
    const stopped = await child.next('stopped', DEADLINE_MS)
    const sec = (performance.now() - t0) / 1000
    if (stopped.bytes !== bytes) throw benchError(`${receiver}: received ${String(stopped.bytes)} bytes, expected ${bytes}`)
    for (const p of pushers) p.send('exit', true)
    const gb = bytes / 1e9
    return { receiver, mbPerSec: gb * 1000 / sec, cpuPerGB: cpu / gb, pushersCpuPerGB: pusherCpu / gb, otherCores: Math.max(0, (machineBusySeconds() - busy0 - cpu - pusherCpu) / sec) }
  } finally {
    await stopAll(children)
    rmSync(dir, { recursive: true, force: true })
  }
}

function size (file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** A receiver process: prints ready, takes frames until SIGTERM, then writes, fsyncs and prints its byte count. */
async function receive (receiver: Receiver, file: string, endpoint: string): Promise<void> {
  const fd = openSync(file, 'a')
  const ring = Buffer.alloc(RING_BYTES)
  let head = 0
  let written = 0
  let bytes = 0
  let pending: Buffer[] = []
  const flush = (): void => {
    if (pending.length > 0) {
      const total = pending.reduce((sum, b) => sum + b.length, 0)
      if (writevSync(fd, pending) !== total) throw benchError('a short writev to the file')
      pending = []
    }
    if (head > written) written += writeSync(fd, ring, written, head - written)
    if (head === written && head > RING_BYTES - READ_BYTES - FRAME_BYTES) head = written = 0
  }
  let scheduled = false
  const later = (): void => {
    if (scheduled) return
    scheduled = true
    setImmediate(() => { scheduled = false; flush() })
  }
  process.on('SIGTERM', () => {
    flush()
    fsyncSync(fd)
    process.stdout.write(`${JSON.stringify({ event: 'stopped', bytes })}\n`, () => process.exit(0))
  })
  if (receiver === 'zeromq') {
    const pull = new zmq.Pull()
    await pull.bind(endpoint)
    process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`)
    for (;;) {
      const [frame] = await pull.receive() as [Buffer]
      bytes += frame.length
      pending.push(frame)
      if (pending.length === 16) flush()
      else later()
    }
  }
  // ZMTP NULL as a PULL server: greeting, READY, then frames; command frames are skipped.
  const path = endpoint.slice('ipc://'.length)
  try { unlinkSync(path) } catch {}
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    let skip = GREETING_BYTES
    const header = Buffer.alloc(9)
    let have = 0
    let need = 0
    let body = 0
    let command = false
    const onBytes = (n: number, buf: Buffer): void => {
      let i = 0
      while (i < n) {
        if (skip > 0) {
          const k = Math.min(skip, n - i)
          skip -= k
          i += k
        } else if (body > 0) {
          const k = Math.min(body, n - i)
          if (!command) {
            if (head + k > RING_BYTES) flush()
            buf.copy(ring, head, i, i + k)
            head += k
            bytes += k
          }
          body -= k
          i += k
          if (head - written >= WRITE_AT) flush()
        } else {
          header[have++] = buf[i++] as number
          if (have === 1) need = ((header[0] as number) & FLAG_LONG) !== 0 ? 9 : 2
          if (have === need) {
            body = need === 2 ? header[1] as number : header.readUInt32BE(5)
            command = ((header[0] as number) & FLAG_COMMAND) !== 0
            have = 0
          }
        }
      }
      later()
    }
    let socket = accepted
    if (receiver === 'net-reused') {
      const internal = accepted as unknown as { _handle: unknown }
      const handle = internal._handle
      internal._handle = null
      socket = new net.Socket({ handle, onread: { buffer: Buffer.alloc(READ_BYTES), callback: (n: number, buf: Uint8Array) => { onBytes(n, buf as Buffer) } } } as net.SocketConstructorOpts)
    } else {
      socket.on('data', (chunk: Buffer) => onBytes(chunk.length, chunk))
    }
    socket.on('error', () => {})
    socket.resume()
    socket.write(encodeGreeting('NULL'))
    socket.write(encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PULL' })))
  })
  server.listen(path, () => process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`))
}
