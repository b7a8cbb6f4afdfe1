import { writeSync } from 'node:fs'

/**
 * What a producer says on the process's stdout or stderr, and what its sender thread's stdio
 * carries there: written to the descriptor at once and never failing, whatever is behind it.
 * A daemon's or a service's stderr may be a pipe whose reader has exited (EPIPE), /dev/full
 * (ENOSPC) or a socket gone; the program without logfunnel goes on there. Before,
 * process.stderr.write() of a line at the end (LOGFUNNEL_ERR_CONNECT, a loss at exit) came back
 * as an unhandled 'error' event of process.stderr, and the sender thread's default stdio (piped
 * into process.stdout and process.stderr) made Node re-emit a write error of those streams that
 * had no other listener: the first process warning printed on a dead stderr ended the process
 * with 1, as it does in any process with a pino transport's thread (pino's worker, not ours).
 */

/** Writes `text` to stderr (fd 2), at once, in the main thread or a worker; never throws. */
export function sayOnStderr (text: string): void {
  writeQuietly(2, Buffer.from(text))
}

/**
 * Options for a Worker whose stdout and stderr are not piped into the process's streams (the
 * pipe's 'error' listener on process.stderr is what re-emitted). Its thread calls
 * writeStdioToFds() first: reading those streams here would hold the process open until the
 * thread ends (a worker's stdio being read refs its port), so nothing reads them.
 */
export const OWN_STDIO = { stdout: true, stderr: true } as const

/**
 * In a worker made with OWN_STDIO: what the thread prints (Node's warnings, console) goes to fd 1
 * and 2 at once, a failed write dropped; at the process's exit too, where a message to the parent
 * thread is never read.
 */
export function writeStdioToFds (): void {
  for (const [stream, fd] of [[process.stdout, 1], [process.stderr, 2]] as const) {
    stream._write = (chunk: Buffer | string, encoding: BufferEncoding, done: (err?: Error | null) => void) => {
      writeQuietly(fd, typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk)
      done()
    }
    stream._writev = undefined
  }
}

/** All of `bytes` to `fd`, or as much as it takes before a failure (EPIPE, ENOSPC, EAGAIN, EBADF). */
function writeQuietly (fd: number, bytes: Buffer): void {
  try {
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at)
  } catch {}
}
