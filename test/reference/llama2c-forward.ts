/**
 * A float64 reference forward pass of a llama2.c checkpoint (run.c's `forward`), reading the
 * file itself so that it shares nothing with lib/ or native/. One token at a time, its own
 * float64 KV cache; RMSNorm eps 1e-5, interleaved RoPE with base 10000 over head_dim, GQA,
 * SwiGLU FFN, classifier shared with the embedding unless the file has its own.
 *
 * File (legacy version 0), little-endian: 7 × int32 header
 *   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 * then float32 arrays (matrices [out][in], row-major):
 *   token_embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim], wk [L][kv_dim][dim],
 *   wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hidden][dim],
 *   w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim],
 *   freq_cis_real [seq_len][head_dim/2], freq_cis_imag [seq_len][head_dim/2] (unused),
 *   wcls [vocab][dim] only when vocab_size < 0 in the header.
 */
import { readFileSync } from 'node:fs';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  headDim: number;
  kvDim: number;
  sharedClassifier: boolean;
}

export interface Llama2cWeights {
  tokenEmbedding: Float64Array; // [vocab][dim]
  rmsAtt: Float64Array[]; // per layer [dim]
  wq: Float64Array[]; // [dim][dim]
  wk: Float64Array[]; // [kvDim][dim]
  wv: Float64Array[]; // [kvDim][dim]
  wo: Float64Array[]; // [dim][dim]
  rmsFfn: Float64Array[]; // [dim]
  w1: Float64Array[]; // [hidden][dim]
  w2: Float64Array[]; // [dim][hidden]
  w3: Float64Array[]; // [hidden][dim]
  rmsFinal: Float64Array; // [dim]
  wcls: Float64Array; // [vocab][dim] (the embedding itself when shared)
}

export interface Reference {
  readonly config: Llama2cConfig;
  readonly weights: Llama2cWeights;
  /** Logits [vocab] of `token` at position `pos`; fills the KV cache at `pos`. */
  forward(token: number, pos: number): Float64Array;
  /** Forgets the KV cache (positions must restart at 0). */
  reset(): void;
  /** The last forward's final hidden state after the output RMSNorm (the classifier's input). */
  readonly finalHidden: Float64Array;
}

const RMS_EPS = 1e-5;
const ROPE_THETA = 10000;
const HEADER_BYTES = 28;

export function parseLlama2cCheckpoint(bytes: Uint8Array, source = 'checkpoint'): { config: Llama2cConfig; weights: Llama2cWeights } {
  if (bytes.byteLength < HEADER_BYTES) throw new Error(`${source}: ${bytes.byteLength} bytes, too short for the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = (i: number): number => view.getInt32(4 * i, true);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = [h(0), h(1), h(2), h(3), h(4), h(5), h(6)];
  const vocabSize = Math.abs(rawVocab);
  const headDim = dim / nHeads;
  const config: Llama2cConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize,
    seqLen,
    headDim,
    kvDim: nKvHeads * headDim,
    sharedClassifier: rawVocab > 0,
  };
  if (!Number.isInteger(headDim) || nHeads % nKvHeads !== 0 || headDim % 2 !== 0) {
    throw new Error(`${source}: inconsistent header ${JSON.stringify(config)}`);
  }

  let offset = HEADER_BYTES;
  const take = (count: number, what: string): Float64Array => {
    const end = offset + 4 * count;
    if (end > bytes.byteLength) throw new Error(`${source}: ${what} runs past the end of the file (${end} > ${bytes.byteLength})`);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, true);
    offset = end;
    return out;
  };
  const perLayer = (count: number, what: string): Float64Array[] => {
    const all = take(nLayers * count, what);
    return Array.from({ length: nLayers }, (_, l) => all.subarray(l * count, (l + 1) * count));
  };

  const { kvDim } = config;
  const tokenEmbedding = take(vocabSize * dim, 'token_embedding');
  const rmsAtt = perLayer(dim, 'rms_att');
  const wq = perLayer(dim * dim, 'wq');
  const wk = perLayer(kvDim * dim, 'wk');
  const wv = perLayer(kvDim * dim, 'wv');
  const wo = perLayer(dim * dim, 'wo');
  const rmsFfn = perLayer(dim, 'rms_ffn');
  const w1 = perLayer(hiddenDim * dim, 'w1');
  const w2 = perLayer(dim * hiddenDim, 'w2');
  const w3 = perLayer(hiddenDim * dim, 'w3');
  const rmsFinal = take(dim, 'rms_final');
  take(seqLen * (headDim / 2), 'freq_cis_real');
  take(seqLen * (headDim / 2), 'freq_cis_imag');
  const wcls = config.sharedClassifier ? tokenEmbedding : take(vocabSize * dim, 'wcls');
  if (offset !== bytes.byteLength) throw new Error(`${source}: ${bytes.byteLength - offset} unexpected bytes after the weights`);

  return { config, weights: { tokenEmbedding, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, wcls } };
}

// out[r] = sum_c W[r][c] * x[c];  W [rows][cols]
function matvec(out: Float64Array, w: Float64Array, x: Float64Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let c = 0; c < cols; c++) acc += (w[r * cols + c] as number) * (x[c] as number);
    out[r] = acc;
  }
}

function rmsnormInto(out: Float64Array, x: Float64Array, w: Float64Array): void {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + RMS_EPS);
  for (let i = 0; i < x.length; i++) out[i] = (w[i] as number) * (scale * (x[i] as number));
}

// Rotates the pairs (2p, 2p+1) of each head in vec [nHeads][headDim] by pos * theta^(-2p/headDim).
function ropeInterleaved(vec: Float64Array, pos: number, headDim: number): void {
  for (let i = 0; i < vec.length; i += 2) {
    const pairInHead = (i % headDim) / 2;
    const angle = pos * ROPE_THETA ** ((-2 * pairInHead) / headDim);
    const v0 = vec[i] as number;
    const v1 = vec[i + 1] as number;
    vec[i] = v0 * Math.cos(angle) - v1 * Math.sin(angle);
    vec[i + 1] = v0 * Math.sin(angle) + v1 * Math.cos(angle);
  }
}

export function createLlama2cReference(config: Llama2cConfig, weights: Llama2cWeights): Reference {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, headDim, kvDim } = config;
  const group = nHeads / nKvHeads;
  // Run state, allocated once (llama2.c malloc_run_state).
  const x = new Float64Array(dim); // residual stream
  const xb = new Float64Array(dim); // normed input / attention output
  const xb2 = new Float64Array(dim);
  const q = new Float64Array(dim);
  const hb = new Float64Array(hiddenDim);
  const hb2 = new Float64Array(hiddenDim);
  const att = new Float64Array(seqLen);
  const keyCache = Array.from({ length: nLayers }, () => new Float64Array(seqLen * kvDim)); // [L][seq][kvDim]
  const valueCache = Array.from({ length: nLayers }, () => new Float64Array(seqLen * kvDim));

  function forward(token: number, pos: number): Float64Array {
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) throw new Error(`forward: token ${token} outside [0, ${vocabSize})`);
    if (!Number.isInteger(pos) || pos < 0 || pos >= seqLen) throw new Error(`forward: pos ${pos} outside [0, ${seqLen})`);
    x.set(weights.tokenEmbedding.subarray(token * dim, (token + 1) * dim));

    for (let l = 0; l < nLayers; l++) {
      // Attention block: x += wo · attention(rope(wq · norm(x)), cache)
      rmsnormInto(xb, x, weights.rmsAtt[l] as Float64Array);
      const k = keyCache[l]!.subarray(pos * kvDim, (pos + 1) * kvDim);
      const v = valueCache[l]!.subarray(pos * kvDim, (pos + 1) * kvDim);
      matvec(q, weights.wq[l]!, xb, dim, dim);
      matvec(k, weights.wk[l]!, xb, kvDim, dim);
      matvec(v, weights.wv[l]!, xb, kvDim, dim);
      ropeInterleaved(q, pos, headDim);
      ropeInterleaved(k, pos, headDim);

      for (let h = 0; h < nHeads; h++) {
        const qOff = h * headDim;
        const kvOff = Math.floor(h / group) * headDim;
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let score = 0;
          for (let d = 0; d < headDim; d++) score += (q[qOff + d] as number) * (keyCache[l]![t * kvDim + kvOff + d] as number);
          score /= Math.sqrt(headDim);
          att[t] = score;
          max = Math.max(max, score);
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
      matvec(xb2, weights.wo[l]!, xb, dim, dim);
      for (let i = 0; i < dim; i++) x[i] = (x[i] as number) + (xb2[i] as number);

      // FFN block: x += w2 · (silu(w1 · norm(x)) * (w3 · norm(x)))
      rmsnormInto(xb, x, weights.rmsFfn[l]!);
      matvec(hb, weights.w1[l]!, xb, hiddenDim, dim);
      matvec(hb2, weights.w3[l]!, xb, hiddenDim, dim);
      for (let i = 0; i < hiddenDim; i++) {
        const g = hb[i] as number;
        hb[i] = (g / (1 + Math.exp(-g))) * (hb2[i] as number);
      }
      matvec(xb2, weights.w2[l]!, hb, dim, hiddenDim);
      for (let i = 0; i < dim; i++) x[i] = (x[i] as number) + (xb2[i] as number);
    }

    rmsnormInto(xb, x, weights.rmsFinal);
    const logits = new Float64Array(vocabSize);
    matvec(logits, weights.wcls, xb, vocabSize, dim);
    return logits;
  }

  function reset(): void {
    for (const c of keyCache) c.fill(0);
    for (const c of valueCache) c.fill(0);
  }

  return { config, weights, forward, reset, finalHidden: xb };
}

export function loadLlama2cReference(path: string): Reference {
  const { config, weights } = parseLlama2cCheckpoint(readFileSync(path), path);
  return createLlama2cReference(config, weights);
}

/** Index of the largest value; ties go to the lowest index (llama2.c's argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/**
 * Greedy decoding from a fresh cache: feeds promptIds at positions 0.. (no BOS is added),
 * then appends the argmax token `steps` times. Returns only the generated ids.
 */
export function greedyGenerate(ref: Reference, promptIds: readonly number[], steps: number): number[] {
  if (promptIds.length === 0) throw new Error('greedyGenerate: the prompt must hold at least one token (usually BOS = 1)');
  ref.reset();
  let logits: Float64Array = new Float64Array(0);
  let pos = 0;
  for (const token of promptIds) logits = ref.forward(token, pos++);
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    const next = argmax(logits);
    out.push(next);
    if (s + 1 < steps) logits = ref.forward(next, pos++);
  }
  return out;
}
