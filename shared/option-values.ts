import { InvalidOptionError } from './errors.js'

/*
 * The checks behind resolveWriterOptions() and resolveProducerOptions(): each reads one key of
 * a plain options object and throws LOGFUNNEL_ERR_INVALID_OPTION naming it and what it got.
 */

/**
 * Options once resolved: every key present, none undefined. Not `Required<T>`: the options types
 * allow `undefined` (`endpoint: process.env.X` under `exactOptionalPropertyTypes`), and with that
 * setting `Required<T>` keeps it.
 */
export type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> }

/**
 * Throws LOGFUNNEL_ERR_INVALID_OPTION for a key that is not an option, naming the closest one:
 * a misspelt option silently ignored is a setting the user believes in and does not have.
 */
export function checkKnownKeys (opts: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue
    const closest = closestKey(key, known)
    throw new InvalidOptionError(`unknown ${what} option '${key}'${closest === undefined ? '' : ` (did you mean '${closest}'?)`}; known options: ${known.join(', ')}`)
  }
}

/** The known key within an edit distance of a third of its length, if any. */
function closestKey (key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase()
  const extended = known.find((k) => k.toLowerCase().startsWith(lower))
  if (extended !== undefined) return extended
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best !== undefined && (bestDistance <= Math.max(2, Math.floor(best.length / 3)) || best.toLowerCase().includes(key.toLowerCase())) ? best : undefined
}

function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length] as number
}

/** The options must be an object (not null, not a primitive). */
export function checkObject (opts: unknown, what: string): void {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError(`${what} must be an object`)
}

/** An absolute path, or undefined when the key is absent. */
export function path (opts: object, key: string): string | undefined {
  const value = (opts as Record<string, unknown>)[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !value.startsWith('/')) throw new InvalidOptionError(`${key} must be an absolute path, got ${String(value)}`)
  return value
}

/** 0 (off), or an integer within [min, max]; `shown` is how the range reads in the error. */
export function intOrOff (opts: object, key: string, fallback: number, min: number, max: number, shown: string): number {
  const value = (opts as Record<string, unknown>)[key] ?? fallback
  if (value === 0) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${key} must be 0 (off) or an integer between ${shown}, got ${String(value)}`)
  }
  return value
}

/** A boolean, `fallback` when absent. */
export function bool (opts: object, key: string, fallback: boolean): boolean {
  const value = (opts as Record<string, unknown>)[key] ?? fallback
  if (typeof value !== 'boolean') throw new InvalidOptionError(`${key} must be a boolean, got ${String(value)}`)
  return value
}

/** An integer within [min, max], `fallback` when absent. */
export function int (opts: object, key: string, fallback: number, min: number, max: number, shown?: string): number {
  const value = (opts as Record<string, unknown>)[key] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${key} must be an integer between ${shown ?? `${min} and ${max}`}, got ${String(value)}`)
  }
  return value
}

/** The longest deadline a method (flush, close, stop) or startWriter() takes: an hour, as `flushTimeoutMs` and `closeTimeoutMs`. */
export const MAX_DEADLINE_MS = 3_600_000

/**
 * A deadline argument in ms, `fallback` when undefined: an integer from 1 to MAX_DEADLINE_MS.
 * Anything else would reach setTimeout, which fires at once for a value past 2^31 - 1, below 1,
 * or not a number.
 */
export function deadline (value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DEADLINE_MS) {
    throw new InvalidOptionError(`${what} must be an integer number of ms between 1 and ${MAX_DEADLINE_MS}, got ${String(value)}`)
  }
  return value
}
