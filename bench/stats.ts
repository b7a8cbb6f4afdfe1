/** Median and range of one measure over a cell's repetitions. */
export interface Spread {
  median: number
  min: number
  max: number
}

/**
 * Median, min and max of `values` (the median of an even count is the mean of the middle two).
 * Throws a RangeError for an empty list: a cell always has at least one repetition.
 *
 * @example
 * ```ts
 * spread([3, 1, 2]) // { median: 2, min: 1, max: 3 }
 * ```
 */
export function spread (values: number[]): Spread {
  if (values.length === 0) throw new RangeError('spread() needs at least one value')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number }
}
