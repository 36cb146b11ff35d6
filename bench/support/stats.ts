// Summary statistics for benchmark samples.

/** Median (the lower middle for an even count, so it is always a measured value); NaN when empty. */
export function p50(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

export function max(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.max(...xs);
}

export function min(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.min(...xs);
}

export const round = (x: number, digits = 0): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : NaN);

/** Progress for humans on stderr; stdout carries only the JSON result. */
export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}
