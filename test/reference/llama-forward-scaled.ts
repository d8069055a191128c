/**
 * The float64 reference forward pass of llama2c-forward.ts with its RoPE made explicit: pair p
 * of every head turns at position t by t * freqs[p], cos and sin multiplied by mscale, pairs
 * interleaved (2p, 2p+1) or half-split (p, p + headDim/2). Everything else (RMSNorm, GQA
 * attention, SwiGLU, shared or own classifier) is run.c's forward, one token at a time with a
 * float64 KV cache. With freqs[p] = 10000^(-2p/headDim), mscale 1 and interleaved pairs it is
 * the plain reference; scaled RoPE (linear, NTK, YaRN) is a different `freqs`.
 */
import type { Llama2cConfig, Llama2cWeights, Reference } from './llama2c-forward.js';

export interface RopeSpec {
  /** Radians per position of each pair, [headDim / 2]. */
  readonly freqs: ArrayLike<number>;
  readonly mscale?: number;
  readonly pairing: 'interleaved' | 'half';
}

/** 10000^(-2p/headDim): plain RoPE's frequencies. */
export function plainFreqs(headDim: number, theta = 10000): Float64Array {
  return Float64Array.from({ length: headDim / 2 }, (_, p) => theta ** ((-2 * p) / headDim));
}

function matvec(out: Float64Array, w: Float64Array, x: Float64Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let c = 0; c < cols; c++) acc += (w[r * cols + c] as number) * (x[c] as number);
    out[r] = acc;
  }
}

function rmsnormInto(out: Float64Array, x: Float64Array, w: Float64Array, eps: number): void {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = (w[i] as number) * (scale * (x[i] as number));
}

export function createScaledReference(config: Llama2cConfig, weights: Llama2cWeights, rope: RopeSpec, eps = 1e-5): Reference {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, headDim, kvDim } = config;
  if (rope.freqs.length !== headDim / 2) throw new Error(`scaled reference: ${rope.freqs.length} frequencies for head_dim ${headDim}`);
  const mscale = rope.mscale ?? 1;
  const half = headDim / 2;
  const group = nHeads / nKvHeads;
  const qDim = nHeads * headDim;
  const x = new Float64Array(dim);
  const xb = new Float64Array(Math.max(dim, qDim));
  const xb2 = new Float64Array(dim);
  const q = new Float64Array(qDim);
  const hb = new Float64Array(hiddenDim);
  const hb2 = new Float64Array(hiddenDim);
  const att = new Float64Array(seqLen);
  const keyCache = Array.from({ length: nLayers }, () => new Float64Array(seqLen * kvDim));
  const valueCache = Array.from({ length: nLayers }, () => new Float64Array(seqLen * kvDim));

  // rotates every head of vec [heads][headDim] to position pos
  function applyRope(vec: Float64Array, pos: number): void {
    for (let base = 0; base < vec.length; base += headDim) {
      for (let p = 0; p < half; p++) {
        const angle = pos * (rope.freqs[p] as number);
        const cos = Math.cos(angle) * mscale;
        const sin = Math.sin(angle) * mscale;
        const a = base + (rope.pairing === 'interleaved' ? 2 * p : p);
        const b = base + (rope.pairing === 'interleaved' ? 2 * p + 1 : p + half);
        const v0 = vec[a] as number;
        const v1 = vec[b] as number;
        vec[a] = v0 * cos - v1 * sin;
        vec[b] = v0 * sin + v1 * cos;
      }
    }
  }

  const finalHidden = new Float64Array(dim); // the last forward's normed final state
  function forward(token: number, pos: number): Float64Array {
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new Error(`forward: token ${token} outside [0, ${vocabSize})`);
    if (!Number.isInteger(pos) || pos < 0 || pos >= seqLen) throw new Error(`forward: pos ${pos} outside [0, ${seqLen})`);
    x.set(weights.tokenEmbedding.subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < nLayers; l++) {
      rmsnormInto(xb.subarray(0, dim), x, weights.rmsAtt[l]!, eps);
      const k = keyCache[l]!.subarray(pos * kvDim, (pos + 1) * kvDim);
      const v = valueCache[l]!.subarray(pos * kvDim, (pos + 1) * kvDim);
      const xin = xb.slice(0, dim);
      matvec(q, weights.wq[l]!, xin, qDim, dim);
      matvec(k, weights.wk[l]!, xin, kvDim, dim);
      matvec(v, weights.wv[l]!, xin, kvDim, dim);
      applyRope(q, pos);
      applyRope(k, pos);
      for (let h = 0; h < nHeads; h++) {
        const qOff = h * headDim;
        const kvOff = Math.floor(h / group) * headDim;
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let score = 0;
          for (let d = 0; d < headDim; d++) score += (q[qOff + d] as number) * (keyCache[l]![t * kvDim + kvOff + d] as number);
          att[t] = score / Math.sqrt(headDim);
          max = Math.max(max, att[t] as number);
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          att[t] = Math.exp((att[t] as number) - max);
          sum += att[t] as number;
        }
        for (let d = 0; d < headDim; d++) {
          let acc = 0;
          for (let t = 0; t <= pos; t++) acc += ((att[t] as number) / sum) * (valueCache[l]![t * kvDim + kvOff + d] as number);
          xb[qOff + d] = acc;
        }
      }
      matvec(xb2, weights.wo[l]!, xb.slice(0, qDim), dim, qDim);
      for (let i = 0; i < dim; i++) x[i] = (x[i] as number) + (xb2[i] as number);
      const xn = new Float64Array(dim);
      rmsnormInto(xn, x, weights.rmsFfn[l]!, eps);
      matvec(hb, weights.w1[l]!, xn, hiddenDim, dim);
      matvec(hb2, weights.w3[l]!, xn, hiddenDim, dim);
      for (let i = 0; i < hiddenDim; i++) {
        const g = hb[i] as number;
        hb[i] = (g / (1 + Math.exp(-g))) * (hb2[i] as number);
      }
      matvec(xb2, weights.w2[l]!, hb, dim, hiddenDim);
      for (let i = 0; i < dim; i++) x[i] = (x[i] as number) + (xb2[i] as number);
    }
    rmsnormInto(finalHidden, x, weights.rmsFinal, eps);
    const logits = new Float64Array(vocabSize);
    matvec(logits, weights.wcls, finalHidden, vocabSize, dim);
    return logits;
  }

  function reset(): void {
    for (const c of keyCache) c.fill(0);
    for (const c of valueCache) c.fill(0);
  }

  return { config, weights, forward, reset, finalHidden };
}
