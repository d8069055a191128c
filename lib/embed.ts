/**
 * Text embeddings from a Llama model: the final hidden state after the output RMSNorm (the
 * classifier's input, [dim] per token), pooled over a text's tokens and L2-normalized, so the
 * dot product of two embeddings is their cosine similarity.
 *
 *   tokens = BOS + encode(text)                 (cut to `maxTokens`, default the context: see `truncate`)
 *   h[t]   = rmsnorm(x_L[t]) * output_norm      one prefill of the text, every row kept
 *   mean:  e = mean of h[t] over the text's tokens, BOS excluded (its state is the same for every
 *          text, position 0 of the same token, so it would only pull all embeddings together);
 *          a text with no tokens of its own (empty) gets h[BOS]
 *   last:  e = h[last token]                    (only the last row is computed past the layers)
 *   e      = e / |e|                            pooled in float64, returned as Float32Array
 *
 * Texts cannot share a native step: a step is one causal run over one KV cache, so the tokens
 * of two texts in one step would attend to each other. Each text is therefore one prefill (in
 * chunks of the model's batch size) from an empty cache; `batchSize` texts run at once, each on
 * its own sequence (its own KV cache), which overlaps their steps where the backend can.
 * The classifier still runs on the kept rows (the graph is shared with generation); its cost is
 * vocab x dim per row, a few percent of a Llama 2 step.
 */
import { LlamaCudaError } from './errors.js';
import type { LlamaSequence } from './model/sequence.js';
import type { Tokenizer } from './tokenizer/index.js';

export type Pooling = 'mean' | 'last';

export interface EmbedOptions {
  /** 'mean' (default): average over the text's tokens; 'last': the last token's state. */
  readonly pooling?: Pooling;
  /**
   * Texts evaluated at once, each on a sequence of its own (default 1). Each extra sequence
   * holds a KV cache of the model's context length.
   */
  readonly batchSize?: number;
  /**
   * Texts longer than the context: cut to its first contextLength tokens (true, default) or
   * rejected with ERR_CONTEXT_FULL (false).
   */
  readonly truncate?: boolean;
  /**
   * Most tokens embedded per text, BOS included (default and at most: the context length).
   * A model's trained context (`model.config.contextLength`) is the sensible bound when the
   * session's context is longer.
   */
  readonly maxTokens?: number;
  /** Called after each text with how many are done. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Stops between texts (and prompt chunks): the call rejects with ERR_ABORTED. */
  readonly signal?: AbortSignal;
}

/** What embed() needs of a model (LlamaModel has it). */
export interface EmbedModel {
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
  readonly config: { readonly dim: number };
  createSequence(options: { allLogits?: boolean }): LlamaSequence;
}

/** Scales v to unit L2 norm (a zero vector stays zero). */
function normalized(v: Float64Array): Float32Array {
  let ss = 0;
  for (const x of v) ss += x * x;
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  return Float32Array.from(v, (x) => x * inv);
}

/** Pools hidden rows [rows][dim] as `pooling` says (rows from `from` on for mean) and normalizes. */
export function poolHidden(hidden: Float32Array, dim: number, pooling: Pooling, from: number): Float32Array {
  const rows = hidden.length / dim;
  const acc = new Float64Array(dim);
  if (pooling === 'last') {
    for (let d = 0; d < dim; d++) acc[d] = hidden[(rows - 1) * dim + d] as number;
  } else {
    const start = Math.min(from, rows - 1);
    for (let r = start; r < rows; r++) for (let d = 0; d < dim; d++) acc[d] = (acc[d] as number) + (hidden[r * dim + d] as number);
    for (let d = 0; d < dim; d++) acc[d] = (acc[d] as number) / (rows - start);
  }
  return normalized(acc);
}

export async function embed(model: EmbedModel, texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) throw new LlamaCudaError('ERR_INVALID_ARG', 'embed(texts): texts must be an array of strings');
  const pooling = options.pooling ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'last') throw new LlamaCudaError('ERR_INVALID_ARG', `pooling must be 'mean' or 'last', got ${String(pooling)}`);
  const batchSize = options.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 64) throw new LlamaCudaError('ERR_INVALID_ARG', `batchSize must be an integer in 1..64, got ${batchSize}`);
  const truncate = options.truncate ?? true;
  const contextLength = options.maxTokens ?? model.contextLength;
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > model.contextLength) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `maxTokens must be an integer in 1..${model.contextLength}, got ${contextLength}`);
  }
  const dim = model.config.dim;

  const tokenLists = texts.map((text, i) => {
    const ids = model.tokenizer.encode(text, { addBos: true });
    if (ids.length <= contextLength) return ids;
    if (!truncate) throw new LlamaCudaError('ERR_CONTEXT_FULL', `text ${i} has ${ids.length} tokens; at most ${contextLength} fit (pass truncate: true to cut it)`);
    return ids.slice(0, contextLength);
  });
  const bos = model.tokenizer.vocab.bos;
  const out: Float32Array[] = new Array<Float32Array>(texts.length);
  let next = 0;
  let done = 0;

  const worker = async (seq: LlamaSequence): Promise<void> => {
    for (let i = next++; i < texts.length; i = next++) {
      if (options.signal?.aborted) throw new LlamaCudaError('ERR_ABORTED', 'embed was aborted');
      const ids = tokenLists[i]!;
      seq.truncate(0);
      const hidden = await seq.evaluate(ids, {
        output: 'hidden',
        allLogits: pooling === 'mean',
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (hidden === undefined) throw new LlamaCudaError('ERR_ABORTED', 'embed was aborted');
      out[i] = poolHidden(hidden, dim, pooling, ids[0] === bos ? 1 : 0);
      options.onProgress?.(++done, texts.length);
    }
  };

  const sequences = Array.from({ length: Math.min(batchSize, Math.max(texts.length, 1)) }, () => model.createSequence({ allLogits: pooling === 'mean' }));
  try {
    await Promise.all(sequences.map(worker));
  } finally {
    await Promise.all(sequences.map((s) => s.dispose()));
  }
  return out;
}
