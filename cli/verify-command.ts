import { parseArgs } from 'node:util'
import { LogfunnelError, UsageError } from '../shared/errors.js'
import { listLogSet, orderLogSet, type LogSet } from '../shared/log-set.js'
import { formatCheckpointReport, verifyCheckpoints } from '../shared/verify-checkpoints.js'
import { readSealKey } from '../shared/seal-key.js'
import { verifyFiles, type VerifyOptions, type VerifyReport } from '../shared/verify.js'
import { formatReport } from '../shared/verify-format.js'

const USAGE = `usage: logfunnel verify FILE... [options]
       logfunnel verify --dir DIR --base NAME [options]

Checks a log file, or a rotated set as one log (app.log.2.gz app.log.1 app.log, or the
writer's app.log.<UTC time>[.gz]: given in any order, read oldest first, .gz gunzipped): every
line is one complete JSON object, each file ends in a newline, and per producer the
sequence number runs 0, 1, 2, ... without gaps, duplicates or reordering, or, in records
without one, the time never goes back. A numbered file missing from the middle of the set is
a defect.

options:
  --dir DIR              read the set from DIR (with --base) instead of FILE arguments
  --base NAME            the current file's name in DIR, e.g. app.log
  --key NAME             record field identifying a producer (default: pid). pid is not
                         unique when worker threads log: give each thread its own field
                         (pino mixin) and name it here. Alias: --producer-key
  --seq-key NAME         record field holding the per-producer counter (default: seq)
  --time-key NAME        record field holding the time (default: time; ms or ISO string)
  --expect N             records each producer should have written: a lost tail counts
  --expect-total N       records (lines with the --key field) the whole set should hold
  --from-first           check each producer's sequence from its lowest number in the
                         file(s), not from 0: for a file or set whose older files were
                         rotated away (--rotate-keep, logrotate's rotate N); not with --expect
  --checkpoints          check the writer's checkpoint lines instead (hash chain: edited,
                         inserted, removed lines; truncated, missing, reordered, doubled
                         files; producers' batch ranges; the unproven tail after the last one)
  --seal-key-file FILE   with --checkpoints: the initial seal key (keygen --seal); every
                         checkpoint's MAC must be good and its key index follow the previous
  --json                 print the report as one JSON object line
  -h, --help             show this help

exit status: 0 no defects, 1 defects found, 2 usage error, unreadable file, or a hash this install cannot compute
`

function count (raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new UsageError(`${flag} must be a whole number, got '${raw}'`)
  return Number(raw)
}

/**
 * `logfunnel verify FILE... | --dir DIR --base NAME [--key pid] [--expect N] [--json] ...`:
 * orders the set (`orderLogSet`), prints the report of `verifyFiles` (one JSON line with
 * `--json`, else a short summary) and resolves with the exit code: 0 clean, 1 defects, 2 when
 * a file cannot be read.
 *
 * Throws `LOGFUNNEL_ERR_USAGE` (exit 2 in bin.ts) for an unknown flag, a missing value, no FILE,
 * or FILE arguments together with `--dir`.
 *
 * @example
 * ```sh
 * logfunnel verify /var/log/app/app.log* --expect 20000 --json
 * ```
 */
export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        checkpoints: { type: 'boolean' },
        'seal-key-file': { type: 'string' },
        key: { type: 'string' },
        'producer-key': { type: 'string' },
        'seq-key': { type: 'string' },
        'time-key': { type: 'string' },
        expect: { type: 'string' },
        'expect-total': { type: 'string' },
        'from-first': { type: 'boolean' },
        dir: { type: 'string' },
        base: { type: 'string' },
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
  const fromDir = values.dir !== undefined || values.base !== undefined
  if (fromDir && (values.dir === undefined || values.base === undefined)) throw new UsageError('--dir and --base go together')
  if (fromDir && positionals.length > 0) throw new UsageError('give FILE arguments or --dir/--base, not both')
  if (!fromDir && positionals.length === 0) throw new UsageError('verify needs a FILE (logfunnel verify --help shows the options)')
  // Without --checkpoints no seal is read: the report said ok as if the seals had been checked.
  if (values['seal-key-file'] !== undefined && values.checkpoints !== true) throw new UsageError('--seal-key-file needs --checkpoints: plain verify checks no seal')
  if (values.key !== undefined && values['producer-key'] !== undefined) throw new UsageError('--key and --producer-key are the same option; use one')
  const opts: VerifyOptions = {
    producerKey: values.key ?? values['producer-key'],
    seqKey: values['seq-key'],
    timeKey: values['time-key'],
    expect: count(values.expect, '--expect'),
    expectTotal: count(values['expect-total'], '--expect-total'),
    fromFirst: values['from-first'] === true
  }
  if (opts.fromFirst === true && opts.expect !== undefined) throw new UsageError('--from-first and --expect do not go together: --expect counts each producer\'s records from seq 0')
  let report
  try {
    const set: LogSet = fromDir ? await listLogSet(values.dir!, values.base!) : orderLogSet(positionals)
    if (values.checkpoints === true) {
      const sealKeyFile = values['seal-key-file']
      const cp = await verifyCheckpoints(set.files, { checkOrder: set.byName, ...(sealKeyFile === undefined ? {} : { sealKey: readSealKey(sealKeyFile) }) })
      process.stdout.write(values.json === true ? `${JSON.stringify(cp)}\n` : `${formatCheckpointReport(cp)}\n`)
      return cp.ok ? 0 : 1
    }
    report = await verifyFiles(set.files, opts, set.missing)
  } catch (err) {
    if (!(err instanceof LogfunnelError)) throw err
    if (err.code === 'LOGFUNNEL_ERR_INVALID_OPTION') throw new UsageError(err.message)
    if (err.code !== 'LOGFUNNEL_ERR_FILE' && err.code !== 'LOGFUNNEL_ERR_MISSING_DEPENDENCY') throw err
    // An unreadable file (or a hash this install cannot compute) is no verdict on the file: exit 2, as a usage error.
    process.stderr.write(`logfunnel: ${err.code}: ${err.message}\n`)
    return 2
  }
  checkSomethingChecked(report, values.key ?? values['producer-key'], values['seq-key'])
  process.stdout.write(values.json === true ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`)
  return report.ok ? 0 : 1
}

/**
 * A `--key` or `--seq-key` given and found in no line is a misspelt field name: every line then
 * counts as unkeyed, which is no defect, and the report said `ok` having checked no sequence.
 * Throws `LOGFUNNEL_ERR_USAGE`. With the default keys a log without `seq` is checked by time.
 */
function checkSomethingChecked (report: VerifyReport, key: string | undefined, seqKey: string | undefined): void {
  const complete = report.lines - report.torn
  if (complete === 0) return
  if (key !== undefined && report.producers === 0) {
    throw new UsageError(`no line has the field '${key}' (--key): no producer's records were checked, only that the ${complete} lines are JSON`)
  }
  if (seqKey !== undefined && report.unkeyed === complete) {
    throw new UsageError(`no line with the producer key '${key ?? 'pid'}' has the field '${seqKey}' (--seq-key): no sequence was checked in the ${complete} lines`)
  }
}
