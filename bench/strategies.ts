/**
 * The ways of getting pino records from many processes into one file that the benchmark
 * compares. Every strategy runs a real pino logger in each producer process.
 */
export const STRATEGIES = ['funnel', 'funnel-nofsync', 'funnel-checkpoints', 'funnel-transport', 'flock', 'append', 'pino-transport', 'rsyslog', 'null', 'noop'] as const

export type Strategy = typeof STRATEGIES[number]

/** The scenario name that selects the writer-ingest run in `--strategies`. */
export const INGEST_SCENARIO = 'writer-ingest'

/** One line per strategy, for `--help` and bench/README.md. */
export const STRATEGY_DESCRIPTIONS: Readonly<Record<Strategy, string>> = Object.freeze({
  funnel: "pino(funnel({ endpoint })): logfunnel destination (ring + sender thread) -> writer process (fsync: 'batch', its default); done when close() has every receipt",
  'funnel-nofsync': "funnel with the writer's fsync: 'off' (like append and flock, which never fsync)",
  'funnel-checkpoints': 'funnel with the writer\'s checkpoints on (BLAKE3 of every byte written, a checkpoint line per 64 MiB): their cost against funnel',
  'funnel-transport': "pino.transport({ target: 'logfunnel/transport' }): the same sender as a pino transport (writer fsync: 'batch')",
  flock: 'pino(flockDestination({ file })): flock(2) around every append; the lock-based baseline',
  append: 'pino.destination({ dest: file, sync: true, append: true }) in every process: O_APPEND, no coordination',
  'pino-transport': "pino.transport({ target: 'pino/file', options: { destination: file, append: true } }) in every process",
  rsyslog: 'pino(socket): one TCP connection per process to an rsyslogd started by the bench (imtcp -> omfile, raw template); done when every byte is in its file',
  null: "pino.destination({ dest: '/dev/null', sync: true }): one write(2) per record to /dev/null, nothing to verify",
  noop: 'pino({}, { write: () => true }): the line is built and dropped in-process; the cost of producing records, the ceiling'
})

/** When the strategy's data reaches the disk: the writer's fsync policy, or never. */
export const FSYNC_LABELS: Readonly<Record<Strategy, string>> = Object.freeze({
  funnel: 'batch',
  'funnel-nofsync': 'off',
  'funnel-checkpoints': 'batch',
  'funnel-transport': 'batch',
  flock: 'never',
  append: 'never',
  'pino-transport': 'never',
  rsyslog: 'never',
  null: '-',
  noop: '-'
})

/** True for the strategies that need a logfunnel writer process. */
export function needsWriter (strategy: Strategy): boolean {
  return strategy === 'funnel' || strategy === 'funnel-nofsync' || strategy === 'funnel-checkpoints' || strategy === 'funnel-transport'
}

/** True for the strategies whose file is written by an rsyslogd that the bench starts. */
export function needsRsyslogd (strategy: Strategy): boolean {
  return strategy === 'rsyslog'
}

/** True for the strategies whose output is a file that can be verified. */
export function writesFile (strategy: Strategy): boolean {
  return strategy !== 'null' && strategy !== 'noop'
}

/** Narrows a name from the command line. */
export function isStrategy (name: string): name is Strategy {
  return (STRATEGIES as readonly string[]).includes(name)
}
