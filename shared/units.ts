import { UsageError } from './errors.js'

/**
 * setTimeout's largest delay, 2^31 - 1 ms (about 24.8 days): a larger one fires at once
 * (Node's TIMEOUT_MAX). Waits meant to have no deadline of their own use it.
 */
export const MAX_TIMER_MS = 2_147_483_647

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }
const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Parses a size with an optional binary unit: `1048576`, `512K`, `100M`, `2G` (K = 1024 bytes).
 * Throws LOGFUNNEL_ERR_USAGE naming `what` on anything else.
 *
 * @example
 * ```ts
 * parseSize('100M', '--rotate-size') // 104857600
 * ```
 */
export function parseSize (text: string, what: string): number {
  const match = /^(\d+)([KMG]?)$/i.exec(text)
  if (match === null) throw new UsageError(`${what} must be a size like 1048576, 512K, 100M or 2G, got '${text}'`)
  return checkSafe(Number(match[1]) * (SIZE_UNITS[(match[2] as string).toUpperCase()] as number), text, what)
}

/**
 * Parses a duration with an optional unit: `1500` or `1500ms`, `30s`, `15m`, `6h`, `1d`; a bare
 * number is milliseconds. Throws LOGFUNNEL_ERR_USAGE naming `what` on anything else.
 *
 * @example
 * ```ts
 * parseDuration('1d', '--rotate-interval') // 86400000
 * ```
 */
export function parseDuration (text: string, what: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
  if (match === null) throw new UsageError(`${what} must be a duration like 1500 (ms), 30s, 15m, 6h or 1d, got '${text}'`)
  return checkSafe(Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] as number), text, what)
}

function checkSafe (value: number, text: string, what: string): number {
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} is too large: '${text}'`)
  return value
}
