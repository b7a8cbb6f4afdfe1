/**
 * What a producer reports as it ends with `records` records in the spool at `spoolDir` and no
 * writer ever reached at `endpoint`, an ipc path with no socket (producer/unreached-report.ts):
 * the error's whole message. `closeEnding`: how close() ended, which funnel()'s close() adds
 * (its one report: no LOGFUNNEL_ERR_CLOSE_TIMEOUT after it).
 */
export function unreachedMessage (endpoint: string, records: number, spoolDir: string, connectTimeoutMs = 10_000, closeEnding?: string): RegExp {
  return new RegExp(`^${unreachedSource(endpoint, records, spoolDir, connectTimeoutMs, closeEnding)}$`)
}

/** The same as one whole line on stderr (stderr split into lines). */
export function unreachedLine (endpoint: string, records: number, spoolDir: string, connectTimeoutMs = 10_000, closeEnding?: string): RegExp {
  return new RegExp(`^logfunnel: LOGFUNNEL_ERR_CONNECT: ${unreachedSource(endpoint, records, spoolDir, connectTimeoutMs, closeEnding)}$`)
}

/** How funnel()'s close() with its default deadline ends while no writer answers, as its report says. */
export const CLOSE_ENDED_WRITER_AWAY = 'close ended before its 10000 ms deadline: the writer does not answer'

/** stderr's lines that carry LOGFUNNEL_ERR_CONNECT. */
export function connectLines (stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.includes('LOGFUNNEL_ERR_CONNECT'))
}

function unreachedSource (endpoint: string, records: number, spoolDir: string, connectTimeoutMs: number, closeEnding: string | undefined): string {
  return `no writer answered at ${escapeRegExp(endpoint)} within \\d+ ms: no socket at that path \\(is the writer running\\?\\); ` +
    `closed before connectTimeoutMs \\(${connectTimeoutMs} ms\\), with ${records} records without a receipt in the spool ` +
    `\\(${escapeRegExp(spoolDir)}\\), where a writer on this endpoint takes them` + (closeEnding === undefined ? '' : `; ${escapeRegExp(closeEnding)}`)
}

/** `text` matched literally in a RegExp. */
export function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
