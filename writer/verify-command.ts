import { parseArgs } from 'node:util'
import { LogfunnelError, UsageError } from '../shared/errors.js'
import { formatReport, verifyFile } from '../shared/verify.js'

const USAGE = `usage: logfunnel verify FILE [options]

Checks that every line of FILE is one complete JSON object and that each producer's
sequence numbers run 0, 1, 2, ... without gaps, duplicates or reordering.

options:
  --json                 print the report as one JSON object line
  --producer-key NAME    record field naming the producer (default: pid)
  --seq-key NAME         record field holding the sequence number (default: seq)
  -h, --help             show this help

exit status: 0 no defects, 1 defects found, 2 usage error or unreadable FILE
`

/**
 * `logfunnel verify FILE [--json] [--producer-key pid] [--seq-key seq]`: prints the report
 * of `verifyFile` (one JSON line with `--json`, else a short summary) and resolves with the
 * exit code: 0 clean, 1 defects, 2 when FILE cannot be read.
 *
 * Throws `LOGFUNNEL_ERR_USAGE` (exit 2 in bin.ts) for an unknown flag, a missing value, or
 * not exactly one FILE.
 *
 * @example
 * ```sh
 * logfunnel verify ./logs/app.log --json
 * ```
 */
export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        'producer-key': { type: 'string' },
        'seq-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      allowPositionals: true,
      strict: true
    })
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel verify --help shows the options)`)
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  if (positionals.length !== 1) {
    throw new UsageError(`verify takes exactly one FILE, got ${positionals.length} (logfunnel verify --help shows the options)`)
  }
  const opts = { producerKey: values['producer-key'], seqKey: values['seq-key'] }
  let report
  try {
    report = await verifyFile(positionals[0]!, opts)
  } catch (err) {
    if (!(err instanceof LogfunnelError)) throw err
    if (err.code === 'LOGFUNNEL_ERR_INVALID_OPTION') throw new UsageError(err.message)
    if (err.code !== 'LOGFUNNEL_ERR_FILE') throw err
    // An unreadable FILE is the caller's mistake, like a usage error, not a defect in a file.
    process.stderr.write(`logfunnel: ${err.code}: ${err.message}\n`)
    return 2
  }
  process.stdout.write(values.json === true ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`)
  return report.ok ? 0 : 1
}
