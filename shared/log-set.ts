import { readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { LogfunnelError } from './errors.js'

/** A rotated set, oldest file first, and the numbered files missing from its middle. */
export interface LogSet {
  files: string[]
  missing: string[]
  /**
   * True when `files` are in the order their names give (one rotated set in one directory);
   * false when they keep the order given, which then says nothing about their age.
   */
  byName: boolean
}

/** The writer's own rotation: `<base>.20240501T120000.123Z`, optionally `.gz`. */
const STAMPED = /^\.(\d{8}T\d{6}\.\d{3}Z)(\.gz)?$/
/** logrotate's default: `<base>.1` is the newest rotated file, `<base>.2.gz` the one before. */
const NUMBERED = /^\.(\d+)(\.gz)?$/
/** logrotate's `dateext`: `<base>-20240501`, or with a `dateformat` such as `-%Y%m%d-%s`. */
const DATED = /^-(\d{8}[\d-]*)(\.gz)?$/

/** Rank of a naming scheme when a set mixes them: logrotate's files count as the older ones. */
const SCHEME_ORDER = { numbered: 0, dated: 1, stamped: 2, current: 3 } as const

interface Member {
  path: string
  base: string
  scheme: keyof typeof SCHEME_ORDER
  /** Numbered: the number; stamped and dated: the stamp. */
  key: number | string
}

function classify (path: string): Member[] {
  const name = basename(path)
  const found: Member[] = [{ path, base: name, scheme: 'current', key: 0 }]
  for (const [scheme, pattern] of [['stamped', STAMPED], ['numbered', NUMBERED], ['dated', DATED]] as const) {
    // The suffix starts at any '.' or '-': try each, so `app.v2.log.1` finds base `app.v2.log`.
    for (let i = name.length - 1; i > 0; i--) {
      if (name[i] !== '.' && name[i] !== '-') continue
      const match = pattern.exec(name.slice(i))
      if (match === null) continue
      found.push({ path, base: name.slice(0, i), scheme, key: scheme === 'numbered' ? Number(match[1]) : match[1]! })
    }
  }
  return found
}

function compare (a: Member, b: Member): number {
  if (a.scheme !== b.scheme) return SCHEME_ORDER[a.scheme] - SCHEME_ORDER[b.scheme]
  if (a.scheme === 'numbered') return (b.key as number) - (a.key as number)
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/**
 * The writer's own files beside a set, which a glob such as `app.log*` picks up: crash
 * recovery's fragments (`app.log.torn`, `app.log.torn.<hex>`: lines that never had a receipt, so
 * their producers sent them again) and a gzip in progress (`<rotated>.gz.tmp`, its original still
 * there, or its `.gz` already renamed).
 */
const ASIDE = /^(.+)\.(?:torn(?:\.[0-9a-f]+)?|gz\.tmp)$/

/** `paths` without the writer's side files of a file also given (see ASIDE). */
function withoutAside (paths: string[]): string[] {
  const given = new Set(paths)
  return paths.filter((path) => {
    const of = ASIDE.exec(path)?.[1]
    return of === undefined || !(given.has(of) || given.has(`${of}.gz`))
  })
}

/**
 * Orders the files of one rotated set oldest first, the current file last: logrotate's
 * numbered names from the highest number down (`app.log.3.gz`, `app.log.2`, `app.log.1`), its
 * `dateext` names and the writer's own UTC-stamped names by their stamp, `.gz` or not. Files that
 * are not one set (in different directories, or no common base name) keep the order given
 * (`byName` false).
 * Numbers absent between 1 and the highest number present are reported in `missing`. The
 * writer's side files of a file also given (`app.log.torn`, `<rotated>.gz.tmp`) are left out:
 * `app.log*` picks them up.
 *
 * @example
 * ```ts
 * orderLogSet(['app.log', 'app.log.1', 'app.log.2.gz'])
 * // { files: ['app.log.2.gz', 'app.log.1', 'app.log'], missing: [], byName: true }
 * ```
 */
export function orderLogSet (given: string[]): LogSet {
  const paths = withoutAside(given)
  if (paths.length < 2 || new Set(paths.map((path) => dirname(path))).size > 1) return { files: [...paths], missing: [], byName: false }
  const candidates = paths.map(classify)
  // The base every file can be read against: the current file's name, else the shortest one.
  const bases = [...new Set(candidates.flat().map((m) => m.base))].sort((a, b) => a.length - b.length)
  const base = bases.find((name) => candidates.every((members) => members.some((m) => m.base === name)))
  if (base === undefined) return { files: [...paths], missing: [], byName: false }
  const members = candidates.map((list) => list.find((m) => m.base === base)!)
  members.sort(compare)
  const numbers = new Set(members.filter((m) => m.scheme === 'numbered').map((m) => m.key as number))
  const missing: string[] = []
  const highest = Math.max(0, ...numbers)
  for (let n = 1; n < highest; n++) {
    if (!numbers.has(n)) missing.push(join(dirname(paths[0]!), `${base}.${n}`))
  }
  return { files: members.map((m) => m.path), missing, byName: true }
}

/**
 * The rotated set of `base` in `dir`, ordered as `orderLogSet` does: `base` itself and every
 * `base.<n>`, `base-<date>`, `base.<UTC stamp>`, each optionally `.gz` (not `.gz.tmp`, `.torn`
 * or `.state.json`). Rejects with `LOGFUNNEL_ERR_FILE` when `dir` cannot be read or holds none.
 *
 * @example
 * ```ts
 * const { files, missing } = await listLogSet('/var/log/app', 'app.log')
 * ```
 */
export async function listLogSet (dir: string, base: string): Promise<LogSet> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot read directory ${dir}: ${reason}`, { cause: err })
  }
  const paths = names
    .filter((name) => name === base || classify(name).some((m) => m.base === base && m.scheme !== 'current'))
    .map((name) => join(dir, name))
  if (paths.length === 0) throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `no log file named ${base} or rotated from it in ${dir}`)
  if (paths.length === 1) return { files: paths, missing: [], byName: false }
  return orderLogSet(paths)
}
