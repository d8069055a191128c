/**
 * benchOp, the single-op runner the microbenchmarks time, computes the real op: its output
 * after repeated runs equals a float64 reference on the same inputs (so the timings are of real
 * work). Matmul in f32 and int4 (a GGUF Q4_0 source repacked at load, as in a model), rmsnorm.
 */
import { describe, expect, it } from 'vitest';

import { cpuAddon } from '../helpers/graphs.js';
import { Rng } from '../helpers/rng.js';

function randoms(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-1, 1);
  return out;
}

/** out[i][j] = sum_k x[i][k] w[j][k] in float64, and the scale sum_k |x w| for the tolerance. */
function matmulRef(x: Float32Array, w: Float32Array, n: number, rows: number, cols: number): { out: Float64Array; mag: Float64Array } {
  const out = new Float64Array(n * rows);
  const mag = new Float64Array(n * rows);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < rows; j++) {
      let s = 0;
      let m = 0;
      for (let k = 0; k < cols; k++) {
        const p = x[i * cols + k]! * w[j * cols + k]!;
        s += p;
        m += Math.abs(p);
      }
      out[i * rows + j] = s;
      mag[i * rows + j] = m;
    }
  }
  return { out, mag };
}

function expectClose(got: Float32Array, ref: Float64Array, mag: Float64Array, rel: number): void {
  expect(got.length).toBe(ref.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i]! - ref[i]!) / (mag[i]! + 1e-6);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `worst at ${at}: got ${got[at]}, want ${ref[at]}`).toBeLessThanOrEqual(rel);
}

describe('benchOp (the microbenchmarks\' single-op runner)', () => {
  const addon = cpuAddon();
  const rows = 40;
  const cols = 96;
  const n = 3;

  it('matmul f32: repeated runs give the float64 reference', () => {
    const rng = new Rng(7);
    const x = randoms(rng, n * cols);
    const w = randoms(rng, rows * cols);
    const h = addon.benchOp({ op: 'matmul', dtype: 'f32', rows, cols, n, a: x, weight: { type: 'f32', data: new Uint8Array(w.buffer) } });
    try {
      expect(h.run(5)).toBeGreaterThan(0);
      expect(h.kernel).toContain('matmul f32');
      const { out, mag } = matmulRef(x, w, n, rows, cols);
      expectClose(h.output(), out, mag, 1e-5);
    } finally {
      h.dispose();
    }
  });

  it('matmul with cold copies rotates over copies of the weight and still gives the reference', () => {
    const rng = new Rng(9);
    const x = randoms(rng, n * cols);
    const w = randoms(rng, rows * cols);
    const h = addon.benchOp({ op: 'matmul', dtype: 'f32', rows, cols, n, a: x, weight: { type: 'f32', data: new Uint8Array(w.buffer) }, coldBytes: 5 * rows * cols * 4 });
    try {
      expect(h.copies).toBe(5);
      h.run(7); // ends on copy 2 of 0..4
      const { out, mag } = matmulRef(x, w, n, rows, cols);
      expectClose(h.output(), out, mag, 1e-5);
    } finally {
      h.dispose();
    }
  });

  it('matmul int4 from GGUF Q4_0 blocks: the reference over the dequantized weights', () => {
    const rng = new Rng(11);
    const x = randoms(rng, n * cols);
    const w = randoms(rng, rows * cols);
    const q4 = addon.quantizeRows(new Uint8Array(w.buffer), 'f32', 'q4_0');
    const wq = new Float32Array(addon.quantizeRows(q4, 'q4_0', 'f32').slice().buffer);
    const h = addon.benchOp({ op: 'matmul', dtype: 'int4', group: 32, rows, cols, n, a: x, weight: { type: 'q4_0', data: q4 } });
    try {
      h.run(3);
      const { out, mag } = matmulRef(x, wq, n, rows, cols);
      // the int4 kernels may quantize activations to int8 (error about 1/127 of a block's max)
      expectClose(h.output(), out, mag, 2e-2);
    } finally {
      h.dispose();
    }
  });

  it('rmsnorm: both rows are x / rms(x) times the same (seeded) weight', () => {
    const rng = new Rng(3);
    const width = 70;
    const x = randoms(rng, 2 * width);
    const h = addon.benchOp({ op: 'rmsnorm', width, n: 2, a: x });
    try {
      h.run(2);
      const out = h.output();
      const inv = [0, 1].map((r) => {
        let ss = 0;
        for (let k = 0; k < width; k++) ss += x[r * width + k]! ** 2;
        return 1 / Math.sqrt(ss / width + 1e-5);
      });
      // the weight seen through row 0 predicts row 1
      for (let k = 0; k < width; k++) {
        const w = out[k]! / (x[k]! * inv[0]!);
        expect(Math.abs(w)).toBeLessThanOrEqual(1.0001); // seeded weights lie in [-1, 1)
        expect(out[width + k]!).toBeCloseTo(x[width + k]! * inv[1]! * w, 4);
      }
    } finally {
      h.dispose();
    }
  });

  it('rejects bad specs with ERR_INVALID_ARG and a disposed handle with ERR_DISPOSED', () => {
    expect(() => addon.benchOp({ op: 'matmul', dtype: 'q8_0', rows: 4, cols: 33, n: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => addon.benchOp({ op: 'matmul', dtype: 'f32', rows: 4, cols: 8, n: 1, a: new Float32Array(3) })).toThrow(/3 values, 8 expected/);
    const h = addon.benchOp({ op: 'add', width: 8, n: 1 });
    h.dispose();
    expect(() => h.run(1)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });
});
