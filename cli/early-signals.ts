/**
 * Signals that reach `logfunnel writer` while its modules load (zeromq and the rest take a few
 * hundred ms), before it installs its own handlers: without a handler SIGTERM, SIGINT and SIGHUP
 * kill the process (exit 143, 130, 129, with no word), where a signal before ready should end
 * the start with 1. bin.ts holds them from its first line; the writer takes them over.
 */
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const
const received: string[] = []
const hold = (signal: string): void => { received.push(signal) }

export function holdSignals (): void {
  for (const signal of SIGNALS) process.on(signal, hold)
}

/** Stops holding; returns the signals held so far, in order. */
export function releaseSignals (): string[] {
  for (const signal of SIGNALS) process.off(signal, hold)
  return received.splice(0)
}
