import { mkdirSync, statSync } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * `mkdir -p` that always ends. Node's own `mkdir(path, { recursive: true })` spins forever,
 * holding a thread at full CPU, when a parent exists but refuses new entries with ENOENT
 * (`/proc/nope/x.log`): each level here is tried at most twice and the error is thrown.
 */

/**
 * Creates `dir` and its missing parents; returns the first directory created, if any. Several
 * processes may create the same directories at once (a pool starting on a new log directory):
 * a directory another process made first counts as there, at every level.
 */
export function makeDirsSync (dir: string, mode = 0o777): string | undefined {
  try {
    return madeSync(dir, mode) ? dir : undefined
  } catch (err) {
    const parent = dirname(dir)
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw err
    const first = makeDirsSync(parent, mode)
    return madeSync(dir, mode) ? first ?? dir : first
  }
}

/** Async makeDirsSync. */
export async function makeDirs (dir: string, mode = 0o777): Promise<string | undefined> {
  try {
    return await made(dir, mode) ? dir : undefined
  } catch (err) {
    const parent = dirname(dir)
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw err
    const first = await makeDirs(parent, mode)
    return await made(dir, mode) ? first ?? dir : first
  }
}

/** One mkdir: true when it made `dir`, false when a directory is there already; other errors thrown. */
function madeSync (dir: string, mode: number): boolean {
  try {
    mkdirSync(dir, { mode })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return existingDir(statSync(dir).isDirectory(), dir, err)
  }
}

async function made (dir: string, mode: number): Promise<boolean> {
  try {
    await mkdir(dir, { mode })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return existingDir((await stat(dir)).isDirectory(), dir, err)
  }
}

function existingDir (isDir: boolean, dir: string, err: unknown): false {
  if (isDir) return false
  throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir, cause: err })
}
