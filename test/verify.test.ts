import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MAX_EXAMPLES, Verifier, verifyFile, type VerifyReport } from '../shared/verify.js'
import { formatReport } from '../shared/verify-format.js'
import { BIN, exitCode, once, spawnCommand, spawnNode, tempDir } from './helpers/children.js'

function rec (pid: number, seq: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ level: 30, time: 1700000000000, pid, seq, msg: 'hello', ...extra })
}

/** `perProducer` records from each pid, interleaved round-robin as a shared file would hold them. */
function cleanLines (pids: number[], perProducer: number): string[] {
  const lines: string[] = []
  for (let seq = 0; seq < perProducer; seq++) for (const pid of pids) lines.push(rec(pid, seq))
  return lines
}

function writeLog (lines: string[], trailingNewline = true): string {
  const path = join(tempDir(), 'app.log')
  writeFileSync(path, lines.join('\n') + (trailingNewline && lines.length > 0 ? '\n' : ''))
  return path
}

function report (fields: Partial<VerifyReport>): VerifyReport {
  const base = { lines: 0, producers: 0, torn: 0, gaps: 0, duplicates: 0, reordered: 0, unkeyed: 0, timeBackwards: 0, missing: 0, extra: 0, missingFiles: 0, examples: [] }
  const merged = { ...base, ...fields }
  return { ...merged, ok: merged.torn + merged.gaps + merged.duplicates + merged.reordered + merged.timeBackwards + merged.missing + merged.extra + merged.missingFiles === 0 }
}

interface Case {
  name: string
  lines: string[]
  trailingNewline?: boolean
  expected: VerifyReport
}

const NOTICE = JSON.stringify({ level: 40, time: 1700000000000, msg: 'logfunnel dropped 3 records' })

const CASES: Case[] = [
  {
    name: 'gap',
    lines: [rec(1, 0), rec(2, 0), rec(1, 1), rec(2, 1), rec(1, 3), rec(1, 4), rec(2, 2)],
    expected: report({ lines: 7, producers: 2, gaps: 1, examples: ['producer 1: 1 missing, first 2'] })
  },
  {
    name: 'duplicate',
    lines: [rec(7, 0), rec(7, 1), rec(7, 1), rec(7, 2)],
    expected: report({ lines: 4, producers: 1, duplicates: 1, examples: ['producer 7: seq 1 duplicated at line 3'] })
  },
  {
    name: 'reorder',
    lines: [rec(7, 0), rec(7, 2), rec(7, 1), rec(7, 3)],
    expected: report({ lines: 4, producers: 1, reordered: 1, examples: ['producer 7: seq 1 at line 3 after seq 2'] })
  },
  {
    name: 'torn line in the middle',
    lines: [rec(1, 0), '{"level":30,"pid":1,"seq":1,"msg":"hel{"level":30,"pid":2,"seq":0}', rec(1, 2), rec(2, 1)],
    expected: report({
      lines: 4,
      producers: 2,
      torn: 1,
      gaps: 2,
      examples: ['line 2: torn (not one JSON object)', 'producer 1: 1 missing, first 1', 'producer 2: 1 missing, first 0']
    })
  },
  {
    name: 'JSON that is not an object',
    lines: [rec(1, 0), '[1,2]', '42', 'null', '', rec(1, 1)],
    expected: report({
      lines: 6,
      producers: 1,
      torn: 4,
      examples: [2, 3, 4, 5].map((n) => `line ${n}: torn (not one JSON object)`)
    })
  },
  {
    name: 'final line without newline',
    lines: [rec(1, 0), rec(1, 1)],
    trailingNewline: false,
    expected: report({ lines: 2, producers: 1, torn: 1, examples: ['line 2: torn (no trailing newline)'] })
  },
  {
    name: 'unkeyed notice line',
    lines: [rec(1, 0), NOTICE, rec(1, 1)],
    expected: report({ lines: 3, producers: 1, unkeyed: 1 })
  },
  {
    name: 'seq that is not a non-negative integer',
    lines: [rec(1, 0), rec(1, -1), rec(1, 1.5), JSON.stringify({ pid: 1, seq: '1' }), rec(1, 1)],
    expected: report({ lines: 5, producers: 1, unkeyed: 3 })
  }
]

describe('verifyFile', () => {
  for (const c of CASES) {
    it(`counts exactly: ${c.name}`, async () => {
      const path = writeLog(c.lines, c.trailingNewline)
      expect(await verifyFile(path)).toEqual(c.expected)
    })
  }

  it('reports a clean file of 3 producers x 1000 records as ok', async () => {
    const path = writeLog(cleanLines([101, 102, 103], 1000))
    expect(await verifyFile(path)).toEqual(report({ lines: 3000, producers: 3 }))
  })

  it('reports an empty file as ok with 0 lines', async () => {
    expect(await verifyFile(writeLog([]))).toEqual(report({}))
  })

  it('joins lines split across read chunks, up to 1 MiB long', async () => {
    const sizes = [300_000, 1024 * 1024, 700_000, 10, 1024 * 1024 - 100, 5]
    const lines = sizes.map((size, seq) => rec(1, seq, { msg: 'x'.repeat(size) }))
    const path = writeLog(lines)
    expect(await verifyFile(path)).toEqual(report({ lines: sizes.length, producers: 1 }))
  })

  it('reads custom producer and seq keys', async () => {
    const lines = [0, 1, 3].map((n) => JSON.stringify({ worker: 'a', n }))
    const path = writeLog(lines)
    expect(await verifyFile(path, { producerKey: 'worker', seqKey: 'n' }))
      .toEqual(report({ lines: 3, producers: 1, gaps: 1, examples: ['producer a: 1 missing, first 2'] }))
  })

  it('rejects a missing file with LOGFUNNEL_ERR_FILE', async () => {
    await expect(verifyFile(join(tempDir(), 'missing.log'))).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_FILE' })
  })

  it('rejects a directory with LOGFUNNEL_ERR_FILE', async () => {
    await expect(verifyFile(tempDir())).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_FILE' })
  })
})

describe('Verifier', () => {
  it('counts gaps across bitset pages and names the first missing seq', () => {
    const verifier = new Verifier()
    for (let seq = 0; seq < 10_000; seq++) {
      if (seq !== 4096 && seq !== 8000) verifier.add(rec(5, seq), seq + 1)
    }
    expect(verifier.report()).toEqual(report({ lines: 9998, producers: 1, gaps: 2, examples: ['producer 5: 2 missing, first 4096'] }))
  })

  it('fromFirst checks each producer from its lowest seq in the log (older files rotated away), across bitset pages', () => {
    const add = (verifier: Verifier): void => {
      let line = 0
      for (let seq = 100; seq < 200; seq++) if (seq !== 150) verifier.add(rec(1, seq), ++line)
      for (let seq = 4000; seq < 8300; seq++) if (seq !== 4100) verifier.add(rec(2, seq), ++line)
    }
    const fromFirst = new Verifier({ fromFirst: true })
    add(fromFirst)
    expect(fromFirst.report()).toMatchObject({ lines: 4398, producers: 2, gaps: 2, examples: ['producer 1: 1 missing, first 150', 'producer 2: 1 missing, first 4100'] })
    const fromZero = new Verifier()
    add(fromZero)
    expect(fromZero.report()).toMatchObject({ gaps: 101 + 4001, examples: ['producer 1: 101 missing, first 0', 'producer 2: 4001 missing, first 0'] })
    expect(() => new Verifier({ fromFirst: true, expect: 10 })).toThrow(/fromFirst and expect do not go together/)
  })

  it('counts a far jump in seq as lost records without allocating for them', () => {
    const verifier = new Verifier()
    verifier.add(rec(5, 0), 1)
    verifier.add(rec(5, 2 ** 40), 2)
    expect(verifier.report()).toMatchObject({ gaps: 2 ** 40 - 1, examples: ['producer 5: 1099511627775 missing, first 1'] })
  })

  it(`keeps at most ${MAX_EXAMPLES} examples but counts every defect`, () => {
    const verifier = new Verifier()
    for (let n = 1; n <= 25; n++) verifier.add('{"pid":', n)
    const result = verifier.report()
    expect(result.torn).toBe(25)
    expect(result.examples).toHaveLength(MAX_EXAMPLES)
    expect(result.examples[0]).toBe('line 1: torn (not one JSON object)')
  })

  for (const bad of [{ producerKey: '' }, { seqKey: '' }]) {
    it(`throws LOGFUNNEL_ERR_INVALID_OPTION for ${JSON.stringify(bad)}`, () => {
      expect(() => new Verifier(bad)).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION' }))
    })
  }

  it('formats a summary line with the examples below it', () => {
    const verifier = new Verifier()
    verifier.add(rec(1, 0), 1)
    verifier.add(rec(1, 0), 2)
    expect(formatReport(verifier.report())).toBe(
      'DEFECTS: 2 lines, 1 producers, 0 torn, 0 gaps, 1 duplicates, 0 reordered, 0 unkeyed, 0 time backwards, 0 missing, 0 extra, 0 missing files\n' +
      '  producer 1: seq 0 duplicated at line 2')
  })
})

/** Runs `node dist/cli/bin.js verify ...args` to its end, stdio included. */
async function cli (args: string[]): Promise<{ code: number | string, stdout: string, stderr: string, describe: string }> {
  const child = spawnNode([BIN, 'verify', ...args])
  // 'close' comes after 'exit' once stdio has drained; listen before the child can finish.
  const closed = once(child.proc, 'close')
  const code = await exitCode(child)
  await closed
  return { code, stdout: child.stdout(), stderr: child.stderr(), describe: child.describe() }
}

describe('logfunnel verify (CLI)', () => {
  it('exits 0 on a clean file and prints one JSON line with --json', async () => {
    const path = writeLog([...cleanLines([11, 12], 50), NOTICE])
    const run = await cli([path, '--json'])
    expect(run.code, run.describe).toBe(0)
    const outLines = run.stdout.split('\n').filter((line) => line !== '')
    expect(outLines, run.describe).toHaveLength(1)
    expect(JSON.parse(outLines[0]!)).toEqual(report({ lines: 101, producers: 2, unkeyed: 1 }))
  })

  it('exits 0 on a clean file and prints the summary without --json', async () => {
    const run = await cli([writeLog(cleanLines([11], 3))])
    expect(run.code, run.describe).toBe(0)
    expect(run.stdout).toBe('ok: 3 lines, 1 producers, 0 torn, 0 gaps, 0 duplicates, 0 reordered, 0 unkeyed, 0 time backwards, 0 missing, 0 extra, 0 missing files\n')
  })

  it('exits 1 on a defective file and reports the defects', async () => {
    const path = writeLog([rec(1, 0), rec(1, 2), '{"pid":1,"se', rec(1, 2)])
    const run = await cli(['--json', path])
    expect(run.code, run.describe).toBe(1)
    expect(JSON.parse(run.stdout)).toEqual(report({
      lines: 4,
      producers: 1,
      torn: 1,
      gaps: 1,
      duplicates: 1,
      examples: ['line 3: torn (not one JSON object)', 'producer 1: seq 2 duplicated at line 4', 'producer 1: 1 missing, first 1']
    }))
  })

  it('reads a pipe: cat app.log | logfunnel verify /dev/stdin', async () => {
    const path = writeLog(cleanLines([11, 12], 500))
    const child = spawnCommand('sh', ['-c', `cat "$1" | "$2" "$3" verify --json /dev/stdin`, 'sh', path, process.execPath, BIN])
    const closed = once(child.proc, 'close')
    const code = await exitCode(child)
    await closed
    // Read without a position: with one, Node reads by pread(2), which a pipe refuses (ESPIPE).
    expect(code, child.describe()).toBe(0)
    expect(JSON.parse(child.stdout())).toEqual(report({ lines: 1000, producers: 2 }))
  })

  it('uses --producer-key and --seq-key', async () => {
    const path = writeLog([0, 1, 2].map((n) => JSON.stringify({ worker: 'w1', n })))
    const run = await cli([path, '--json', '--producer-key', 'worker', '--seq-key', 'n'])
    expect(run.code, run.describe).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual(report({ lines: 3, producers: 1 }))
  })

  it('prints usage with every option for --help and exits 0', async () => {
    const run = await cli(['--help'])
    expect(run.code, run.describe).toBe(0)
    for (const option of ['--json', '--key', '--producer-key', '--seq-key', '--time-key', '--expect', '--expect-total', '--from-first', '--dir', '--base', '--help']) expect(run.stdout).toContain(option)
  })

  const USAGE_ERRORS: Array<[string, (file: string) => string[]]> = [
    ['an unknown flag', (file) => [file, '--bogus']],
    ['no FILE', () => ['--json']],
    ['FILE and --dir', (file) => [file, '--dir', '/tmp', '--base', 'app.log']],
    ['--dir without --base', () => ['--dir', '/tmp']],
    ['a negative --expect', (file) => [file, '--expect', '-1']],
    ['--from-first with --expect', (file) => [file, '--from-first', '--expect', '2']],
    ['--seq-key without a value', (file) => [file, '--seq-key']],
    ['an empty --producer-key', (file) => [file, '--producer-key', '']]
  ]
  for (const [name, args] of USAGE_ERRORS) {
    it(`exits 2 with LOGFUNNEL_ERR_USAGE on ${name}`, async () => {
      const run = await cli(args(writeLog(cleanLines([1], 2))))
      expect(run.code, run.describe).toBe(2)
      expect(run.stderr, run.describe).toMatch(/^logfunnel: LOGFUNNEL_ERR_USAGE: /)
      expect(run.stdout).toBe('')
    })
  }

  // Before, a misspelt --key or --seq-key passed: every line counted as unkeyed, none as a
  // defect, 'ok: ...' and exit 0, with no producer's sequence checked at all.
  const NOTHING_CHECKED: Array<[string, string[], string]> = [
    ['--key naming a field no line has', ['--key', 'worker'], "no line has the field 'worker' (--key): no producer's records were checked, only that the 7 lines are JSON\n"],
    ['--producer-key naming a field no line has', ['--producer-key', 'worker'], "no line has the field 'worker' (--key): no producer's records were checked, only that the 7 lines are JSON\n"],
    ['--seq-key naming a field no record has', ['--seq-key', 'n'], "no line with the producer key 'pid' has the field 'n' (--seq-key): no sequence was checked in the 7 lines\n"]
  ]
  for (const [name, flags, message] of NOTHING_CHECKED) {
    it(`exits 2 with LOGFUNNEL_ERR_USAGE on ${name}: nothing was checked`, async () => {
      const run = await cli([writeLog([...cleanLines([1, 2], 3), NOTICE]), ...flags])
      expect(run.code, run.describe).toBe(2)
      expect(run.stderr).toBe(`logfunnel: LOGFUNNEL_ERR_USAGE: ${message}`)
      expect(run.stdout).toBe('')
    })
  }

  it('a log without seq, checked by time as documented, still passes with the default keys and with --key given', async () => {
    const lines = [1, 2, 3].map((n) => JSON.stringify({ level: 30, time: 1700000000000 + n, pid: 7, msg: 'plain' }))
    for (const flags of [[], ['--key', 'pid']]) {
      const run = await cli([writeLog(lines), '--json', ...flags])
      expect(run.code, run.describe).toBe(0)
      expect(JSON.parse(run.stdout)).toEqual(report({ lines: 3, producers: 1, unkeyed: 3 }))
    }
  })

  it('exits 2 with LOGFUNNEL_ERR_FILE on a missing file', async () => {
    const run = await cli([join(tempDir(), 'missing.log')])
    expect(run.code, run.describe).toBe(2)
    expect(run.stderr, run.describe).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE: /)
    expect(run.stdout).toBe('')
  })
})
