/**
 * Streaming generation: prompt → tokens → (prefill, then sample/decode one token at a time)
 * → text chunks, ending on EOS, maxTokens, a stop string, a full context or an abort.
 *
 * The context limit: a prompt that does not fit throws ERR_CONTEXT_FULL before any work; a
 * generation that fills the context ends cleanly with finishReason 'context'. An AbortSignal
 * ends the stream cleanly too (finishReason 'abort'); what was computed stays in the cache.
 */
import { LlamaCudaError } from './errors.js';
import { type LlamaSequence, commonPrefix } from './model/sequence.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { StopMatcher } from './stop-strings.js';
import type { Tokenizer } from './tokenizer/index.js';

export interface GenerateOptions extends SamplerOptions {
  /** Most tokens to generate (default: until EOS or the context is full). */
  readonly maxTokens?: number;
  /** Strings that end the generation; they are not part of the output. */
  readonly stop?: readonly string[];
  readonly signal?: AbortSignal;
  /** Prepend BOS to a string prompt (default true, as Llama does). */
  readonly addBos?: boolean;
  /** Recognize control-token text such as `<s>` in a string prompt (default false). */
  readonly parseSpecial?: boolean;
}

/** One generated token and the text it completes ('' while a character or stop string is incomplete). */
export interface GenerateChunk {
  readonly text: string;
  /** The token id; -1 on a final chunk that only releases held-back text. */
  readonly token: number;
}

export type FinishReason = 'eos' | 'maxTokens' | 'stop' | 'context' | 'abort';

export interface GenerateTimings {
  /** Prompt tokens, and how many of them had to be computed (the rest came from the cache). */
  readonly promptTokens: number;
  readonly promptEvaluated: number;
  readonly promptMs: number;
  readonly promptTokensPerSecond: number;
  readonly generatedTokens: number;
  readonly generateMs: number;
  readonly tokensPerSecond: number;
}

export interface GenerateResult {
  /** The generated text (without the prompt). */
  readonly text: string;
  readonly tokens: readonly number[];
  readonly promptTokens: readonly number[];
  readonly finishReason: FinishReason;
  readonly timings: GenerateTimings;
}

/** What a generation needs from a model. */
export interface GenerateContext {
  readonly tokenizer: Tokenizer;
  readonly sequence: LlamaSequence;
}

function checkOptions(options: GenerateOptions): void {
  const { maxTokens, stop } = options;
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 0)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `maxTokens must be a non-negative integer, got ${maxTokens}`);
  }
  if (stop !== undefined && (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string'))) {
    throw new LlamaCudaError('ERR_INVALID_ARG', 'stop must be an array of strings');
  }
}

export function promptTokens(tokenizer: Tokenizer, prompt: string | readonly number[], options: GenerateOptions): number[] {
  if (typeof prompt === 'string') {
    return tokenizer.encode(prompt, { addBos: options.addBos ?? true, parseSpecial: options.parseSpecial ?? false });
  }
  if (!Array.isArray(prompt)) throw new LlamaCudaError('ERR_INVALID_ARG', 'prompt must be a string or an array of token ids');
  return [...prompt];
}

export async function* generate(
  ctx: GenerateContext,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GenerateChunk, GenerateResult, undefined> {
  checkOptions(options);
  const { tokenizer, sequence } = ctx;
  const sampler = new Sampler(options); // validates the sampling options
  const prompted = promptTokens(tokenizer, prompt, options);
  if (prompted.length === 0) throw new LlamaCudaError('ERR_INVALID_ARG', 'the prompt is empty (and addBos is false): nothing to condition on');
  const limit = sequence.contextLength;
  if (prompted.length >= limit) {
    throw new LlamaCudaError(
      'ERR_CONTEXT_FULL',
      `the prompt has ${prompted.length} tokens but the context holds ${limit} (and at least one must be left to generate)`,
    );
  }
  const maxTokens = options.maxTokens ?? Infinity;
  const release = await sequence.mutex.lock();
  const generated: number[] = [];
  let text = '';
  let finishReason: FinishReason = 'maxTokens';
  const t0 = performance.now();
  let promptMs = 0;
  let promptEvaluated = 0;
  try {
    // reuse the cached prefix; always recompute at least the last prompt token for its logits
    const reuse = Math.min(commonPrefix(sequence.tokens, prompted), prompted.length - 1);
    sequence.truncate(reuse);
    promptEvaluated = prompted.length - reuse;
    let logits = await sequence.evaluateLocked(prompted.slice(reuse), options.signal ? { signal: options.signal } : {});
    promptMs = performance.now() - t0;
    for (const t of prompted) sampler.accept(t);

    // strip the first piece's leading space only when generating right after BOS alone
    const onlyBos = prompted.length === 1 && prompted[0] === tokenizer.bos;
    const decoder = tokenizer.createDecoder({ stripLeadingSpace: onlyBos });
    const stops = new StopMatcher(options.stop ?? []);

    if (logits === undefined) finishReason = 'abort';
    else if (maxTokens === 0) finishReason = 'maxTokens';
    else {
      for (;;) {
        const token = sampler.sample(logits);
        if (token === tokenizer.eos || token === tokenizer.bos) {
          // BOS from a base model starts a new document: llama2.c stops there too
          finishReason = 'eos';
          break;
        }
        generated.push(token);
        sampler.accept(token);
        const piece = stops.push(decoder.push(token));
        const last = generated.length >= maxTokens || sequence.position >= limit;
        let chunk = piece.text;
        if (piece.stopped) finishReason = 'stop';
        else if (last) {
          finishReason = generated.length >= maxTokens ? 'maxTokens' : 'context';
          chunk += stops.push(decoder.flush()).text + stops.flush();
        }
        text += chunk;
        yield { text: chunk, token };
        if (piece.stopped || last) break;
        if (options.signal?.aborted) {
          finishReason = 'abort';
          break;
        }
        logits = await sequence.evaluateLocked([token]);
        if (logits === undefined) throw new LlamaCudaError('ERR_INTERNAL', 'a decode step returned no logits');
      }
      if (finishReason === 'eos' || finishReason === 'abort') {
        const rest = stops.push(decoder.flush());
        const tail = rest.stopped ? rest.text : rest.text + stops.flush();
        if (tail.length > 0) {
          text += tail;
          yield { text: tail, token: -1 };
        }
      }
    }
  } finally {
    release();
  }
  const totalMs = performance.now() - t0;
  const generateMs = totalMs - promptMs;
  return {
    text,
    tokens: generated,
    promptTokens: prompted,
    finishReason,
    timings: {
      promptTokens: prompted.length,
      promptEvaluated,
      promptMs,
      promptTokensPerSecond: promptMs > 0 ? (promptEvaluated * 1000) / promptMs : 0,
      generatedTokens: generated.length,
      generateMs,
      tokensPerSecond: generateMs > 0 ? (generated.length * 1000) / generateMs : 0,
    },
  };
}
