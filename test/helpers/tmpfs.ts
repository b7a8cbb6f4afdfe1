import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Whether this machine lets a test mount a tmpfs (root with CAP_SYS_ADMIN): undefined if so, else why not. */
export function cannotMountTmpfs (): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'lf-mount-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' })
    execFileSync('umount', [dir], { stdio: 'pipe' })
    return undefined
  } catch (err) {
    return `cannot mount a tmpfs here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`
  } finally {
    rmdirSync(dir)
  }
}

/** Mounts a tmpfs of `size` (`16m`) at `dir` with `mode`. */
export function mountTmpfs (dir: string, size: string, mode = '0755'): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `mode=${mode},size=${size}`, 'tmpfs', dir])
}

/** Detaches what is mounted at `dir` (`umount -l`: files still open keep it alive). */
export function unmountLazily (dir: string): void {
  execFileSync('umount', ['-l', dir])
}
