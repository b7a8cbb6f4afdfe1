import * as fs from 'node:fs'
import { makeDirs } from '../../shared/make-dirs.js'
import { withReserve } from '../fd-reserve.js'

/** What `SinkFs.fstat`/`stat` report: enough to see rotation, removal and the file's size. */
export interface SinkStat {
  size: number
  /** Hard links: 0 once the open file was unlinked (its directory removed, or `rm`). */
  nlink: number
  dev: number
  ino: number
  mtimeMs: number
}

/**
 * The file operations the sink uses, with numeric descriptors and promises. The default is
 * node's `fs`; tests pass a wrapper that fails chosen calls (ENOSPC, EACCES, short writes),
 * which is why the sink does not use sonic-boom (it calls `require('fs')` directly).
 */
export interface SinkFs {
  /** Opens for appending (`'a'`), creating the file. */
  open: (path: string) => Promise<number>
  /** Writes `length` bytes of `buf` from `offset`; resolves with the bytes written (may be fewer). */
  write: (fd: number, buf: Buffer, offset: number, length: number) => Promise<number>
  fsync: (fd: number) => Promise<void>
  ftruncate: (fd: number, length: number) => Promise<void>
  fstat: (fd: number) => Promise<SinkStat>
  /** Rejects with code `ENOENT` when the path does not exist. */
  stat: (path: string) => Promise<SinkStat>
  close: (fd: number) => Promise<void>
  mkdir: (path: string) => Promise<void>
  rename: (from: string, to: string) => Promise<void>
}

/**
 * A `SinkFs` that also writes several buffers with one writev(2), as node's `fs` does; the sink
 * then writes a chunk of batches without copying them. An fs without it (a test double) gets
 * the batches merged into one buffer for `write`.
 */
export interface VectorSinkFs extends SinkFs {
  /** Writes the buffers in order; resolves with the bytes written (may be fewer). */
  writev: (fd: number, bufs: Buffer[]) => Promise<number>
}

/** True when `fs` offers `writev` (node's fs does; FaultyFs in the tests does not). */
export function hasWritev (fs: SinkFs): fs is VectorSinkFs {
  return typeof (fs as Partial<VectorSinkFs>).writev === 'function'
}

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void

function call<T> (fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => err === null ? resolve(value) : reject(err)))
}

function toStat (st: fs.Stats): SinkStat {
  return { size: st.size, nlink: st.nlink, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs }
}

async function openLog (path: string): Promise<number> {
  return await call<number>((cb) => fs.open(path, 'a', 0o644, cb))
}

/** `SinkFs` over node's callback `fs` (no FileHandle objects: descriptors stay plain numbers). */
export const nodeSinkFs: VectorSinkFs = Object.freeze({
  open: async (path: string) => await withReserve(async () => await openLog(path)),
  write: async (fd: number, buf: Buffer, offset: number, length: number) =>
    await call<number>((cb) => fs.write(fd, buf, offset, length, null, (err, n) => cb(err, n))),
  writev: async (fd: number, bufs: Buffer[]) =>
    await call<number>((cb) => fs.writev(fd, bufs, null, (err, n) => cb(err, n))),
  fsync: async (fd: number) => await call<void>((cb) => fs.fsync(fd, (err) => cb(err, undefined))),
  ftruncate: async (fd: number, length: number) => await call<void>((cb) => fs.ftruncate(fd, length, (err) => cb(err, undefined))),
  fstat: async (fd: number) => toStat(await call<fs.Stats>((cb) => fs.fstat(fd, cb))),
  stat: async (path: string) => toStat(await call<fs.Stats>((cb) => fs.stat(path, cb))),
  close: async (fd: number) => await call<void>((cb) => fs.close(fd, (err) => cb(err, undefined))),
  mkdir: async (path: string) => { await makeDirs(path) },
  rename: async (from: string, to: string) => await call<void>((cb) => fs.rename(from, to, (err) => cb(err, undefined)))
})
