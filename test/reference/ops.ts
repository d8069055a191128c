/**
 * Float64 reference ops: the independent oracles the native kernels are tested against.
 * Plain loops in llama2.c's order of operations, written from the math (not from lib/ or
 * native/). Tensors are flat row-major arrays; inputs may be any ArrayLike<number>
 * (Float32Array from the engine included), outputs are new Float64Arrays. Shapes in comments
 * use [rows][cols].
 */
export * from './float16.js';
export * from './quant.js';

function rowsOf(length: number, width: number, what: string): number {
  if (!Number.isInteger(width) || width <= 0 || length % width !== 0) {
    throw new Error(`${what}: length ${length} is not a multiple of the row width ${width}`);
  }
  return length / width;
}

/** out[i][:] = w * x[i][:] / sqrt(mean(x[i][:]^2) + eps);  x [n][dim], w [dim]. */
export function rmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  const dim = w.length;
  const n = rowsOf(x.length, dim, 'rmsnorm');
  const out = new Float64Array(x.length);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += (x[i * dim + j] as number) ** 2;
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let j = 0; j < dim; j++) out[i * dim + j] = (w[j] as number) * (scale * (x[i * dim + j] as number));
  }
  return out;
}

/** out[i][r] = sum_c x[i][c] * W[r][c];  x [n][cols], W [rows][cols] ([out][in]) → [n][rows]. */
export function matmul(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (w.length !== rows * cols) throw new Error(`matmul: W has ${w.length} values, expected ${rows} x ${cols}`);
  const n = rowsOf(x.length, cols, 'matmul');
  const out = new Float64Array(n * rows);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += (x[i * cols + c] as number) * (w[r * cols + c] as number);
      out[i * rows + r] = acc;
    }
  }
  return out;
}

export type RopePairing = 'interleaved' | 'half';

/**
 * Rotary position embedding; x [n][nHeads * headDim], row i at position positions[i].
 * In every head the first ropeDim values form ropeDim/2 pairs; pair p turns by the angle
 * pos * freqScale * theta^(-2p / ropeDim):
 *   'interleaved' (llama2.c, GGUF "normal"): pairs (2p, 2p + 1)
 *   'half'        (HF / NeoX):               pairs (p, p + ropeDim/2)
 * Values past ropeDim in a head are copied unchanged.
 */
export function rope(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  headDim: number,
  ropeDim: number,
  theta: number,
  pairing: RopePairing,
  freqScale = 1,
): Float64Array {
  const n = positions.length;
  const width = rowsOf(x.length, n, 'rope (x rows vs positions)');
  const nHeads = rowsOf(width, headDim, 'rope (row vs headDim)');
  if (ropeDim % 2 !== 0 || ropeDim > headDim || ropeDim <= 0) throw new Error(`rope: ropeDim ${ropeDim} must be even and in (0, headDim ${headDim}]`);
  const out = Float64Array.from(x);
  const half = ropeDim / 2;
  for (let i = 0; i < n; i++) {
    const pos = positions[i] as number;
    for (let h = 0; h < nHeads; h++) {
      const base = i * width + h * headDim;
      for (let p = 0; p < half; p++) {
        const angle = pos * freqScale * theta ** ((-2 * p) / ropeDim);
        const cos = Math.cos(angle);
        const sin = Math.sin(angle);
        const a = base + (pairing === 'interleaved' ? 2 * p : p);
        const b = base + (pairing === 'interleaved' ? 2 * p + 1 : p + half);
        const v0 = x[a] as number;
        const v1 = x[b] as number;
        out[a] = v0 * cos - v1 * sin;
        out[b] = v0 * sin + v1 * cos;
      }
    }
  }
  return out;
}

/** Numerically stable softmax of x[0..n) (in place on a copy). */
export function softmax(x: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(x);
  let max = -Infinity;
  for (const v of out) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.exp((out[i] as number) - max);
    sum += out[i] as number;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/**
 * Causal grouped-query attention over a KV cache, as llama2.c computes it.
 *   q      [n][nHeads * headDim]    row i is the query at position pos + i
 *   kCache [len][nKvHeads * headDim] keys for positions 0..len-1 (len >= pos + n)
 *   vCache [len][nKvHeads * headDim]
 *   out    [n][nHeads * headDim]
 * Query head h reads KV head floor(h / (nHeads / nKvHeads)); row i sees keys 0..pos+i;
 * scores are scaled by 1/sqrt(headDim).
 */
export function attention(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  pos: number,
  nHeads: number,
  nKvHeads: number,
  headDim: number,
): Float64Array {
  if (nHeads % nKvHeads !== 0) throw new Error(`attention: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const n = rowsOf(q.length, qDim, 'attention q');
  const len = rowsOf(kCache.length, kvDim, 'attention kCache');
  if (vCache.length !== kCache.length) throw new Error(`attention: vCache has ${vCache.length} values, kCache ${kCache.length}`);
  if (pos + n > len) throw new Error(`attention: pos ${pos} + ${n} rows needs ${pos + n} cached positions, have ${len}`);
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float64Array(n * qDim);
  const scores = new Float64Array(len);
  for (let i = 0; i < n; i++) {
    const seen = pos + i + 1; // keys 0..pos+i
    for (let h = 0; h < nHeads; h++) {
      const qOff = i * qDim + h * headDim;
      const kvOff = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let t = 0; t < seen; t++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += (q[qOff + d] as number) * (kCache[t * kvDim + kvOff + d] as number);
        scores[t] = dot * scale;
        max = Math.max(max, dot * scale);
      }
      let sum = 0;
      for (let t = 0; t < seen; t++) {
        scores[t] = Math.exp((scores[t] as number) - max);
        sum += scores[t] as number;
      }
      for (let t = 0; t < seen; t++) {
        const weight = (scores[t] as number) / sum;
        for (let d = 0; d < headDim; d++) {
          out[qOff + d] = (out[qOff + d] as number) + weight * (vCache[t * kvDim + kvOff + d] as number);
        }
      }
    }
  }
  return out;
}

/** out = silu(gate) * up = gate * sigmoid(gate) * up, elementwise (the SwiGLU FFN's middle). */
export function swiglu(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  if (gate.length !== up.length) throw new Error(`swiglu: gate has ${gate.length} values, up ${up.length}`);
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i] as number;
    out[i] = (g / (1 + Math.exp(-g))) * (up[i] as number);
  }
  return out;
}

/** out = a + b, elementwise (the residual add). */
export function add(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  if (a.length !== b.length) throw new Error(`add: ${a.length} vs ${b.length} values`);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) + (b[i] as number);
  return out;
}

/** out[i][:] = table[tokens[i]][:];  table [vocab][dim] → [n][dim]. */
export function embed(table: ArrayLike<number>, tokens: ArrayLike<number>, dim: number): Float64Array {
  const vocab = rowsOf(table.length, dim, 'embed');
  const out = new Float64Array(tokens.length * dim);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as number;
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new Error(`embed: token ${t} at ${i} is outside [0, ${vocab})`);
    for (let j = 0; j < dim; j++) out[i * dim + j] = table[t * dim + j] as number;
  }
  return out;
}
