/**
 * Tensor initializers for op tests (style.md rule 3): seeded random data for numerics, and
 * position-encoding patterns for index and layout bugs (a wrong stride then gives a visibly
 * wrong number, not a slightly-off one). All return Float32Array, the dtype the engine takes;
 * the float64 references accept them as they are.
 */
import { Rng } from './rng.js';

/** n values uniform in [lo, hi). */
export function randomUniform(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(lo, hi);
  return out;
}

/** n values from N(mean, std^2). */
export function randomNormal(rng: Rng, n: number, std = 1, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(mean, std);
  return out;
}

/** n random integer token ids in [0, vocab). */
export function randomTokens(rng: Rng, n: number, vocab: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, vocab);
  return out;
}

export interface ArangeOptions {
  start?: number;
  step?: number;
  /** Wrap the index: value = start + step * (i % period). Keeps long tensors bounded. */
  period?: number;
}

/** value[i] = start + step * i (or i % period): each element names its flat index. */
export function arange(n: number, options: ArangeOptions = {}): Float32Array {
  const { start = 0, step = 1, period = 0 } = options;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = start + step * (period > 0 ? i % period : i);
  return out;
}

/**
 * A [rows][cols] matrix whose element (r, c) is `r * rowStep + c * colStep`, so both indices
 * can be read back from a value. Defaults keep every value exact in float32 for rows and
 * cols below 1024: 1 per row and 1/1024 per column.
 */
export function rowColCode(rows: number, cols: number, rowStep = 1, colStep = 1 / 1024): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = r * rowStep + c * colStep;
  }
  return out;
}
