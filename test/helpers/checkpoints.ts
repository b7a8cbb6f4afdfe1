import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { BIN, exitCode, spawnNode } from './children.js'

/** `logfunnel verify --checkpoints --json <args>`: its exit code and report. */
export async function verifyCli (args: string[]): Promise<{ code: number | string, report: any }> {
  const child = spawnNode([BIN, 'verify', '--checkpoints', '--json', ...args])
  const code = await exitCode(child)
  return { code, report: JSON.parse(child.stdout()) }
}

/** The set's files in `dir` whose names start with `base`. */
export function setFiles (dir: string, base = 'app.log'): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(base) && !n.endsWith('.next')).sort().map((n) => join(dir, n))
}

/** A file's content as text (gunzipped for .gz). */
export function readLog (path: string): string {
  const raw = readFileSync(path)
  return (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString()
}

/** Writes a file's content (gzipped for .gz). */
export function writeLog (path: string, text: string): void {
  writeFileSync(path, path.endsWith('.gz') ? gzipSync(text) : text)
}

/** Rewrites the file with `edit` applied to its lines; returns the byte offset of line `k` (the first data line if -1). */
export function editLines (path: string, edit: (lines: string[], k: number) => string[]): number {
  const lines = readLog(path).split('\n')
  const k = lines.findIndex((l) => !l.includes('"logfunnel":"checkpoint"') && l !== '')
  if (k === -1) throw new Error(`${path} has no data line`)
  writeLog(path, edit(lines, k).join('\n'))
  return Buffer.byteLength(lines.slice(0, k).map((l) => `${l}\n`).join(''))
}
