import { mkdirSync, statSync } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * `mkdir -p` that always ends. Node's own `mkdir(path, { recursive: true })` spins forever,
 * holding a thread at full CPU, when a parent exists but refuses new entries with ENOENT
 * (`/proc/nope/x.log`): each level here is tried at most twice and the error is thrown.
 */

/** Creates `dir` and its missing parents; returns the first directory created, if any. */
export function makeDirsSync (dir: string, mode = 0o777): string | undefined {
  try {
    mkdirSync(dir, { mode })
    return dir
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return existingDir(statSync(dir).isDirectory(), dir, err)
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir) throw err
    const first = makeDirsSync(parent, mode)
    mkdirSync(dir, { mode })
    return first ?? dir
  }
}

/** Async makeDirsSync. */
export async function makeDirs (dir: string, mode = 0o777): Promise<string | undefined> {
  try {
    await mkdir(dir, { mode })
    return dir
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return existingDir((await stat(dir)).isDirectory(), dir, err)
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir) throw err
    const first = await makeDirs(parent, mode)
    await mkdir(dir, { mode })
    return first ?? dir
  }
}

function existingDir (isDir: boolean, dir: string, err: unknown): undefined {
  if (isDir) return undefined
  throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir, cause: err })
}
