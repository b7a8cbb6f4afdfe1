import type { ExpectCheck, VerifyReport } from './verify.js'

/** With both count checks and records `what`: how many each found (" (--expect 2, --expect-total 2)"). */
function byCheck (report: VerifyReport, what: keyof ExpectCheck): string {
  const { expect, expectTotal } = report.checks ?? {}
  if (expect === undefined || expectTotal === undefined || report[what] === 0) return ''
  return ` (--expect ${expect[what]}, --expect-total ${expectTotal[what]})`
}

/**
 * A short human summary: one line of counts, then the examples indented.
 *
 * @example
 * ```ts
 * formatReport(report)
 * // 'ok: 4000 lines, 4 producers, 0 torn, 0 gaps, 0 duplicates, 0 reordered, 1 unkeyed'
 * ```
 */
export function formatReport (report: VerifyReport): string {
  const counts = `${report.lines} lines, ${report.producers} producers, ${report.torn} torn, ` +
    `${report.gaps} gaps, ${report.duplicates} duplicates, ${report.reordered} reordered, ${report.unkeyed} unkeyed, ` +
    `${report.timeBackwards} time backwards, ${report.missing} missing${byCheck(report, 'missing')}, ` +
    `${report.extra} extra${byCheck(report, 'extra')}, ${report.missingFiles} missing files`
  const head = `${report.ok ? 'ok' : 'DEFECTS'}: ${counts}`
  return [head, ...report.examples.map((example) => `  ${example}`)].join('\n')
}
