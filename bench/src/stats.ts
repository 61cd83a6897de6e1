/** Small statistics helpers: medians, percentiles, and the per-round pairing of cases with floors. */

/** The median of `values`; `undefined` for an empty list. */
export function median(values: readonly number[]): number | undefined {
  return quantile(values, 0.5)
}

/** The lowest and highest of the finite `values`; `undefined` when there are none. */
export function range(values: readonly number[]): readonly [number, number] | undefined {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return undefined
  return [Math.min(...finite), Math.max(...finite)]
}

/**
 * The `q` quantile of `values` (0 ≤ q ≤ 1), interpolating linearly between the closest ranks;
 * `undefined` for an empty list.
 */
export function quantile(values: readonly number[], q: number): number | undefined {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return undefined
  const sorted = [...finite].sort((a, b) => a - b)
  const position = (sorted.length - 1) * q
  const lower = Math.floor(position)
  const upper = Math.ceil(position)
  const a = sorted[lower]!
  const b = sorted[upper]!
  return a + (b - a) * (position - lower)
}

/** Nanoseconds from `process.hrtime.bigint()` readings, as a number. */
export function elapsedNs(start: bigint, end: bigint = process.hrtime.bigint()): number {
  return Number(end - start)
}
