import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { flockDestination } from '../producer/flock-destination.js'
import { ProcessLock } from '../producer/process-lock.js'
import { exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'

const ITERATIONS = 1000
const PRODUCERS = 4
const RECORDS = 5000
/** One record in ten carries 64 KiB, far past PIPE_BUF (4 KiB), so a write may be split. */
const PAYLOAD_BYTES = [100, 100, 100, 100, 100, 100, 100, 100, 100, 64 * 1024]

interface TraceCheck {
  /** Completed critical sections ("enter P" then "exit P"). */
  sections: number
  /** "enter" while another section was open, or "exit" of a section that was not open. */
  overlaps: number
  /** Sections whose pid differs from the previous section's: how often the lock changed hands. */
  handoffs: number
}

function checkTrace (trace: string): TraceCheck {
  const result = { sections: 0, overlaps: 0, handoffs: 0 }
  let open: string | null = null
  let previous: string | null = null
  for (const line of trace.split('\n')) {
    if (line === '') continue
    const [event, pid] = line.split(' ') as [string, string]
    if (event === 'enter') {
      if (open !== null) result.overlaps++
      open = pid
    } else if (open !== pid) {
      result.overlaps++
      open = null
    } else {
      result.sections++
      if (previous !== null && previous !== pid) result.handoffs++
      previous = pid
      open = null
    }
  }
  return result
}

interface LogCheck {
  lines: number
  /** Lines that are not a JSON object with numeric pid and seq. */
  invalid: number
  /** Records whose payload is not the size the producer wrote for that seq. */
  wrongSize: number
  /** Records whose seq is not the one after their producer's previous record. */
  outOfOrder: number
  endsWithNewline: boolean
  /** pid -> records seen. */
  perProducer: Map<number, number>
}

async function checkLog (file: string): Promise<LogCheck> {
  const result: LogCheck = { lines: 0, invalid: 0, wrongSize: 0, outOfOrder: 0, endsWithNewline: false, perProducer: new Map() }
  const nextSeq = new Map<number, number>()
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    result.lines++
    let record: { pid?: unknown, seq?: unknown, payload?: unknown }
    try {
      record = JSON.parse(line)
    } catch {
      result.invalid++
      continue
    }
    const { pid, seq, payload } = record
    if (typeof pid !== 'number' || typeof seq !== 'number') {
      result.invalid++
      continue
    }
    if (seq !== (nextSeq.get(pid) ?? 0)) result.outOfOrder++
    nextSeq.set(pid, seq + 1)
    if (typeof payload !== 'string' || payload.length !== PAYLOAD_BYTES[seq % PAYLOAD_BYTES.length]) result.wrongSize++
    result.perProducer.set(pid, (result.perProducer.get(pid) ?? 0) + 1)
  }
  const fd = openSync(file, 'r')
  const last = Buffer.alloc(1)
  readSync(fd, last, 0, 1, statSync(file).size - 1)
  closeSync(fd)
  result.endsWithNewline = last[0] === 0x0a
  return result
}

describe('trace check (control)', () => {
  // A run without the lock loses updates only by chance; the checker itself is checked here.
  it('flags overlapping critical sections and counts handoffs', () => {
    // Each out-of-place event counts: enter 2 inside 1's section, then both exits.
    expect(checkTrace('enter 1\nenter 2\nexit 1\nexit 2\n')).toEqual({ sections: 0, overlaps: 3, handoffs: 0 })
    expect(checkTrace('enter 1\nexit 1\nenter 2\nexit 2\nenter 2\nexit 2\n'))
      .toEqual({ sections: 3, overlaps: 0, handoffs: 1 })
  })
})

describe('ProcessLock across processes', () => {
  for (const processes of [2, 4]) {
    it(`${processes} contenders x ${ITERATIONS} iterations: no lost increment, no overlapping critical section`, async () => {
      const dir = tempDir()
      const [lockFile, counterFile, traceFile] = ['counter.lock', 'counter', 'trace'].map((name) => join(dir, name)) as [string, string, string]
      writeFileSync(counterFile, '0')
      // Holding the lock until every contender is up makes them start together.
      const gate = new ProcessLock(lockFile)
      gate.lock()
      try {
        const contenders = Array.from({ length: processes }, () =>
          spawnNode([fixture('lock-contender'), lockFile, counterFile, traceFile, String(ITERATIONS)]))
        await Promise.all(contenders.map(async (child) => await child.waitForLine((obj) => obj.event === 'ready')))
        gate.unlock()
        for (const child of contenders) expect(await exitCode(child), child.describe()).toBe(0)
      } finally {
        gate.close()
      }
      expect(Number(readFileSync(counterFile, 'utf8'))).toBe(processes * ITERATIONS)
      const trace = checkTrace(readFileSync(traceFile, 'utf8'))
      expect(trace).toMatchObject({ sections: processes * ITERATIONS, overlaps: 0 })
      expect(trace.handoffs, 'the lock never changed hands mid-run: the contenders did not contend')
        .toBeGreaterThanOrEqual(processes)
    })
  }

  it('tryLock() returns false while another process holds the lock, true once it unlocks', async () => {
    const lockFile = join(tempDir(), 'held.lock')
    const holder = spawnNode([fixture('lock-holder'), lockFile], { stdio: ['pipe', 'pipe', 'pipe'] })
    await holder.waitForLine((obj) => obj.event === 'locked')
    const lock = new ProcessLock(lockFile)
    try {
      expect(lock.tryLock()).toBe(false)
      expect(lock.held).toBe(false)
      holder.proc.stdin?.write('release\n')
      await holder.waitForLine((obj) => obj.event === 'released')
      expect(lock.tryLock()).toBe(true)
      expect(lock.held).toBe(true)
      lock.unlock()
    } finally {
      lock.close()
    }
    expect(await exitCode(holder), holder.describe()).toBe(0)
  })

  it('a holder killed with SIGKILL leaves the lock free', async () => {
    const lockFile = join(tempDir(), 'held.lock')
    const holder = spawnNode([fixture('lock-holder'), lockFile], { stdio: ['pipe', 'pipe', 'pipe'] })
    await holder.waitForLine((obj) => obj.event === 'locked')
    const lock = new ProcessLock(lockFile)
    try {
      expect(lock.tryLock()).toBe(false)
      holder.proc.kill('SIGKILL')
      expect(await exitCode(holder)).toBe('SIGKILL')
      expect(lock.tryLock()).toBe(true)
    } finally {
      lock.close()
    }
  })

  it('close() releases a held lock and is idempotent', () => {
    const lockFile = join(tempDir(), 'a.lock')
    const first = new ProcessLock(lockFile)
    const second = new ProcessLock(lockFile)
    first.lock()
    expect(second.tryLock()).toBe(false)
    first.close()
    first.close()
    expect(first.closed).toBe(true)
    expect(second.tryLock()).toBe(true)
    second.close()
  })
})

describe('misuse throws at once with a stable code', () => {
  const cases: Array<{ name: string, code: string, act: (lock: ProcessLock) => void }> = [
    { name: 'unlock() without lock()', code: 'LOGFUNNEL_ERR_LOCK_STATE', act: (lock) => lock.unlock() },
    { name: 'a second unlock()', code: 'LOGFUNNEL_ERR_LOCK_STATE', act: (lock) => { lock.lock(); lock.unlock(); lock.unlock() } },
    { name: 'lock() while holding the lock', code: 'LOGFUNNEL_ERR_LOCK_STATE', act: (lock) => { lock.lock(); lock.lock() } },
    { name: 'tryLock() while holding the lock', code: 'LOGFUNNEL_ERR_LOCK_STATE', act: (lock) => { lock.lock(); lock.tryLock() } },
    { name: 'lock() after close()', code: 'LOGFUNNEL_ERR_LOCK_CLOSED', act: (lock) => { lock.close(); lock.lock() } },
    { name: 'tryLock() after close()', code: 'LOGFUNNEL_ERR_LOCK_CLOSED', act: (lock) => { lock.close(); lock.tryLock() } },
    { name: 'unlock() after close()', code: 'LOGFUNNEL_ERR_LOCK_CLOSED', act: (lock) => { lock.lock(); lock.close(); lock.unlock() } }
  ]
  for (const { name, code, act } of cases) {
    it(`ProcessLock: ${name} throws ${code}`, () => {
      const lock = new ProcessLock(join(tempDir(), 'misuse.lock'))
      try {
        expect(() => act(lock)).toThrow(expect.objectContaining({ code }))
      } finally {
        lock.close()
      }
    })
  }

  it('ProcessLock: an empty path or a lock file that cannot be opened is refused', () => {
    const dir = tempDir()
    expect(() => new ProcessLock('')).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION' }))
    expect(() => new ProcessLock(dir)).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_LOCK_FILE' }))
  })

  it('flockDestination: bad options, an unwritable file, and use after end() are refused', () => {
    const dir = tempDir()
    const file = join(dir, 'app.log')
    expect(() => flockDestination({ file: '' })).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION' }))
    expect(() => flockDestination({ file, lockFile: file })).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION' }))
    mkdirSync(join(dir, 'a-directory'))
    expect(() => flockDestination({ file: join(dir, 'a-directory') })).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_FILE' }))
    const dest = flockDestination({ file })
    dest.end()
    dest.end()
    expect(() => dest.write('{}\n')).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_CLOSED' }))
    expect(() => dest.flushSync()).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_CLOSED' }))
  })
})

describe('flockDestination under pino', () => {
  it(`${PRODUCERS} producers x ${RECORDS} records of 100 B and 64 KiB: every line whole, every seq in order`, async () => {
    const file = join(tempDir(), 'nested', 'dir', 'app.log')
    const producers = Array.from({ length: PRODUCERS }, () =>
      spawnNode([fixture('flock-producer'), file, String(RECORDS), PAYLOAD_BYTES.join(',')]))
    for (const child of producers) expect(await exitCode(child), child.describe()).toBe(0)

    const log = await checkLog(file)
    expect(log).toMatchObject({ lines: PRODUCERS * RECORDS, invalid: 0, wrongSize: 0, outOfOrder: 0, endsWithNewline: true })
    expect(Object.fromEntries(log.perProducer))
      .toEqual(Object.fromEntries(producers.map((child) => [child.proc.pid, RECORDS])))
    expect(existsSync(`${file}.lock`)).toBe(true)
  })

  it('used after end(), it behaves as pino\'s own destination (sonic-boom): every call throws where the host can catch it, flush(cb) gets the error, nothing later ends the process, nothing is written', async () => {
    const dir = tempDir()
    const outcomes: Record<string, unknown[]> = {}
    for (const [kind, closed] of [['flock', 'LOGFUNNEL_ERR_CLOSED'], ['sonic-boom', 'SonicBoom destroyed']]) {
      const file = join(dir, `${kind}.log`)
      const child = spawnNode([fixture('destination-after-end'), kind as string, file])
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(readFileSync(file, 'utf8')).toBe('{"level":30,"msg":"before end"}\n')
      // The error of each, as "closed": sonic-boom's is a message, ours a code.
      outcomes[kind as string] = child.stdout().trim().split('\n').map((l) => JSON.parse(l.replaceAll(closed as string, 'closed')))
    }
    expect(outcomes.flock).toEqual([
      { event: 'log', threw: 'closed' },
      { event: 'dest.flush()', threw: 'closed' },
      { event: 'dest.flushSync()', threw: 'closed' },
      { event: 'logger.flush(cb)', callbackError: 'closed' },
      { event: 'done' }
    ])
    expect(outcomes.flock).toEqual(outcomes['sonic-boom'])
  })
})
