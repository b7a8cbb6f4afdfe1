import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../shared/errors.js'
import { PRODUCER_OPTION_KEYS, WRITER_OPTION_KEYS } from '../shared/options.js'
import { FLAG_OF_OPTION, WRITER_FLAGS } from '../shared/writer-flags.js'
import { ROOT } from './helpers/children.js'

/** Facts written in more than one place must agree; the rooms must keep their imports. */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The rows of README.md's table whose header starts with `header`, as arrays of cells. */
function tableRows (header: string): string[][] {
  const lines = README.split('\n')
  const start = lines.findIndex((l) => l.startsWith(header))
  expect(start, `README table "${header}"`).toBeGreaterThan(-1)
  const rows: string[][] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    rows.push(line.split(' | ').map((cell) => cell.replace(/^\|\s*|\s*\|$/g, '')))
  }
  return rows
}

describe('one flag table', () => {
  it('every writer option has a flag, and startWriter() passes each option by it', () => {
    expect(Object.keys(FLAG_OF_OPTION).sort()).toEqual([...WRITER_OPTION_KEYS].sort())
    for (const [option, flag] of Object.entries(FLAG_OF_OPTION)) {
      expect(WRITER_FLAGS[flag.slice(2) as keyof typeof WRITER_FLAGS]?.option).toBe(option)
    }
  })

  it("README's writer table has one row per option, naming its flags", () => {
    const rows = tableRows('| option (`Writer`) |')
    expect(rows.map((r) => r[0]).sort()).toEqual(WRITER_OPTION_KEYS.map((k) => `\`${k}\``).sort())
    for (const [flag, f] of Object.entries(WRITER_FLAGS)) {
      const row = rows.find((r) => r[0] === `\`${f.option}\``)
      expect(row?.[1], `--${flag}`).toContain(`\`--${flag}\``)
    }
  })

  it("README's producer table has one row per producer option", () => {
    const rows = tableRows('| option (`funnel`, transport `options`) |')
    expect(rows.map((r) => r[0]).sort()).toEqual(PRODUCER_OPTION_KEYS.map((k) => `\`${k}\``).sort())
  })
})

describe('one list of error codes', () => {
  it("README's error table lists exactly the codes in use", () => {
    const rows = tableRows('| code | when |')
    expect(rows.map((r) => r[0]).sort()).toEqual(ERROR_CODES.map((c) => `\`${c}\``).sort())
  })
})

/** The `from '...'` specifiers of every .ts file below `dir`. */
function importsBelow (dir: string): Array<{ file: string, target: string }> {
  const found: Array<{ file: string, target: string }> = []
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(ROOT, dir, name)
    if (statSync(path).isDirectory()) {
      found.push(...importsBelow(relative(ROOT, path)))
    } else if (name.endsWith('.ts')) {
      for (const [, target] of readFileSync(path, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
        if ((target as string).startsWith('.')) found.push({ file: relative(ROOT, path), target: relative(ROOT, join(path, '..', target as string)) })
      }
    }
  }
  return found
}

describe('the rooms', () => {
  const rules: Array<[string, string[]]> = [
    ['shared', ['writer', 'producer', 'cli', 'bench']],
    ['writer', ['producer', 'cli', 'bench']],
    ['producer', ['writer', 'cli', 'bench']],
    ['cli', ['bench']]
  ]
  for (const [room, forbidden] of rules) {
    it(`${room}/ imports nothing from ${forbidden.join(', ')}`, () => {
      const bad = importsBelow(room).filter(({ target }) => forbidden.some((f) => target === f || target.startsWith(`${f}/`)))
      expect(bad).toEqual([])
    })
  }
})

describe('links', () => {
  const docs = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)]
  for (const doc of docs) {
    it(`every relative link of ${doc} names a file or folder of the repository`, () => {
      const text = readFileSync(join(ROOT, doc), 'utf8')
      const broken: string[] = []
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const path = (target as string).split('#')[0] as string
        if (/^[a-z]+:/.test(target as string) || path === '') continue
        try {
          statSync(join(ROOT, doc, '..', path))
        } catch {
          broken.push(target as string)
        }
      }
      expect(broken).toEqual([])
    })
  }
})
