/**
 * Perplexity of a text under the model, computed as llama.cpp's `perplexity` tool computes it:
 *
 *   tokens  = encode(text) with BOS first (or the ids given, used as they are)
 *   windows = floor(tokens / ctx) non-overlapping windows of ctx tokens; the tail that does not
 *             fill a window is not scored. (A text shorter than ctx is one window of all its
 *             tokens: ctx shrinks to fit, and the result says so.)
 *   each window starts from an empty KV cache; its first token is replaced by BOS (window 0
 *   already starts with it), so every window sees the start-of-document context the model knows
 *   logits   for every position of the window (one all-rows prefill, batchSize rows per step)
 *   scored  the predictions of the window's second half: the logits at rows first .. ctx-2
 *           predict tokens first+1 .. ctx-1, with first = floor(ctx/2). The first half only
 *           gives context, so no scored token sees fewer than ctx/2 tokens before it (early
 *           tokens, predicted from almost nothing, would dominate the average otherwise).
 *           ctx - 1 - first tokens per window.
 *   nll      = mean over scored tokens of -log softmax(logits)[next token], in float64
 *   perplexity = exp(nll)
 */
import { LlamaCudaError } from './errors.js';
import type { LlamaSequence } from './model/sequence.js';
import type { Tokenizer } from './tokenizer/index.js';

export interface PerplexityProgress {
  /** Windows finished, of `windows`. */
  readonly window: number;
  readonly windows: number;
  readonly fraction: number;
  /** Tokens scored so far and the perplexity over them. */
  readonly tokens: number;
  readonly perplexity: number;
}

export interface PerplexityOptions {
  /** Tokens per window (default: the model's context length, at most 512). */
  readonly ctx?: number;
  /** Called after each window. */
  readonly onProgress?: (progress: PerplexityProgress) => void;
  /** Stops between windows (and between prompt chunks): the call rejects with ERR_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface PerplexityResult {
  /** exp(nll). */
  readonly perplexity: number;
  /** Mean negative log-likelihood (natural log) per scored token. */
  readonly nll: number;
  /** Tokens scored (windows x (ctx - 1 - floor(ctx/2))). */
  readonly tokens: number;
  readonly windows: number;
  /** Window length used. */
  readonly ctx: number;
  /** Tokens of the text (with BOS). */
  readonly textTokens: number;
  /** Perplexity of each window on its own. */
  readonly windowPerplexities: readonly number[];
}

/** What perplexity() needs of a model (LlamaModel has it). */
export interface PerplexityModel {
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
  readonly config: { readonly vocabSize: number };
  createSequence(options: { allLogits?: boolean }): LlamaSequence;
}

/** -log softmax(row)[target], in float64. */
export function negativeLogLikelihood(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp((row[i] as number) - max);
  return Math.log(sum) + max - (row[target] as number);
}

/** The scored positions of a window of n tokens: rows first..n-2 predict first+1..n-1. */
export function scoredRange(n: number): { first: number; count: number } {
  const first = Math.floor(n / 2);
  return { first, count: n - 1 - first };
}

export async function perplexity(model: PerplexityModel, text: string | readonly number[], options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const tokens = typeof text === 'string' ? model.tokenizer.encode(text, { addBos: true }) : [...text];
  const maxCtx = model.contextLength;
  const ctxOption = options.ctx;
  if (ctxOption !== undefined && (!Number.isInteger(ctxOption) || ctxOption < 3 || ctxOption > maxCtx)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `ctx must be an integer in 3..${maxCtx} (the model's context length), got ${ctxOption}`);
  }
  if (tokens.length < 3) throw new LlamaCudaError('ERR_INVALID_ARG', `perplexity needs a text of at least 3 tokens, got ${tokens.length}`);
  const ctx = Math.min(ctxOption ?? Math.min(maxCtx, 512), tokens.length);
  const windows = Math.floor(tokens.length / ctx);
  const { first, count } = scoredRange(ctx);
  const bos = model.tokenizer.vocab.bos;
  const vocab = model.config.vocabSize;

  const seq = model.createSequence({ allLogits: true });
  let nllSum = 0;
  let scored = 0;
  const windowPerplexities: number[] = [];
  try {
    for (let w = 0; w < windows; w++) {
      if (options.signal?.aborted) throw new LlamaCudaError('ERR_ABORTED', 'perplexity was aborted');
      const win = tokens.slice(w * ctx, (w + 1) * ctx);
      if (w > 0) win[0] = bos;
      seq.truncate(0);
      const logits = await seq.evaluate(win, { allLogits: true, ...(options.signal ? { signal: options.signal } : {}) });
      if (logits === undefined) throw new LlamaCudaError('ERR_ABORTED', 'perplexity was aborted');
      let windowSum = 0;
      for (let r = first; r < first + count; r++) {
        windowSum += negativeLogLikelihood(logits.subarray(r * vocab, (r + 1) * vocab), win[r + 1] as number);
      }
      nllSum += windowSum;
      scored += count;
      windowPerplexities.push(Math.exp(windowSum / count));
      options.onProgress?.({ window: w + 1, windows, fraction: (w + 1) / windows, tokens: scored, perplexity: Math.exp(nllSum / scored) });
    }
  } finally {
    await seq.dispose();
  }
  const nll = nllSum / scored;
  return { perplexity: Math.exp(nll), nll, tokens: scored, windows, ctx, textTokens: tokens.length, windowPerplexities };
}
