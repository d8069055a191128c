/**
 * LlamaSequence: one token sequence with its own KV cache in native memory. Feed it tokens
 * and get logits back; it remembers which tokens its cache holds, so a new prompt that shares
 * a prefix with the old one only computes the new part.
 */
import type { NativeSession } from '../addon-types.js';
import { LlamaCudaError, nativeError } from '../errors.js';
import { HIDDEN_BUFFER, LOGITS_BUFFER } from './transformer.js';

export interface EvaluateOptions {
  /** Return logits for every fed token ([tokens.length][vocab] row-major), not only the last. */
  readonly allLogits?: boolean;
  /**
   * What to return per row: 'logits' (default, [vocab] per row) or 'hidden', the final hidden
   * state after the output RMSNorm ([dim] per row: the classifier's input, used for embeddings).
   */
  readonly output?: 'logits' | 'hidden';
  /** Stop between chunks when this fires (the tokens fed so far stay in the cache). */
  readonly signal?: AbortSignal;
}

export interface SequenceLimits {
  readonly contextLength: number;
  /** Tokens per native step. */
  readonly batchSize: number;
  readonly vocabSize: number;
  /** Width of the final hidden state (the model's dim). */
  readonly hiddenSize: number;
  /** Whether this sequence's session can return every row's logits. */
  readonly allLogits: boolean;
}

/** A tiny FIFO lock: one evaluation at a time per sequence. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => {
      release = resolve;
    });
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

export class LlamaSequence {
  private readonly session: NativeSession;
  private readonly limits: SequenceLimits;
  private readonly cached: number[] = [];
  private readonly onDispose: () => void;
  private disposed = false;
  /** Serializes evaluate() calls and generations using this sequence. */
  readonly mutex = new Mutex();

  /** @internal */
  constructor(session: NativeSession, limits: SequenceLimits, onDispose: () => void) {
    this.session = session;
    this.limits = limits;
    this.onDispose = onDispose;
  }

  /** Tokens whose keys and values are in the cache, in order. */
  get tokens(): readonly number[] {
    return this.cached;
  }

  /** The next position to be written (= tokens.length). */
  get position(): number {
    return this.cached.length;
  }

  get contextLength(): number {
    return this.limits.contextLength;
  }

  /** Forgets everything from position `length` on. */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0) throw new LlamaCudaError('ERR_INVALID_ARG', `truncate(${length}): not a position`);
    if (length < this.cached.length) this.cached.length = length;
  }

  /**
   * Appends tokens (in chunks of the batch size) and returns the logits (or, with
   * `output: 'hidden'`, the final hidden states) of the last one, or of all of them with `allLogits`. Returns undefined when `signal` fired before the end.
   */
  async evaluate(tokens: readonly number[], options: EvaluateOptions = {}): Promise<Float32Array | undefined> {
    const release = await this.mutex.lock();
    try {
      return await this.evaluateLocked(tokens, options);
    } finally {
      release();
    }
  }

  /** evaluate() for callers that already hold `mutex`. @internal */
  async evaluateLocked(tokens: readonly number[], options: EvaluateOptions = {}): Promise<Float32Array | undefined> {
    this.checkUsable();
    const { vocabSize, hiddenSize, batchSize, contextLength } = this.limits;
    const hidden = options.output === 'hidden';
    const width = hidden ? hiddenSize : vocabSize;
    if (tokens.length === 0) throw new LlamaCudaError('ERR_INVALID_ARG', 'evaluate() needs at least one token');
    if (options.allLogits && !this.limits.allLogits) {
      throw new LlamaCudaError('ERR_INVALID_ARG', 'this sequence was created without { allLogits: true }');
    }
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
        throw new LlamaCudaError('ERR_INVALID_ARG', `token id ${t} is outside the vocabulary (0..${vocabSize - 1})`);
      }
    }
    if (this.cached.length + tokens.length > contextLength) {
      throw new LlamaCudaError(
        'ERR_CONTEXT_FULL',
        `${tokens.length} more tokens do not fit: the context holds ${contextLength} and ${this.cached.length} are used`,
      );
    }
    const all = options.allLogits ? new Float32Array(tokens.length * width) : undefined;
    let last = new Float32Array(width);
    for (let start = 0; start < tokens.length; start += batchSize) {
      if (options.signal?.aborted) return undefined;
      const chunk = Int32Array.from(tokens.slice(start, start + batchSize));
      const out = all ? all.subarray(start * width, (start + chunk.length) * width) : last;
      const site = new Error();
      try {
        await this.session.run({
          tokens: chunk,
          pos: this.cached.length,
          outputs: [{ buffer: hidden ? HIDDEN_BUFFER : LOGITS_BUFFER, data: out }],
          ...(all ? { allRows: true } : {}),
        });
      } catch (err) {
        throw nativeError(err, site);
      }
      for (const t of chunk) this.cached.push(t);
      if (all && start + chunk.length === tokens.length) last = all.subarray((tokens.length - 1) * width);
    }
    return all ?? last;
  }

  /** Frees the native KV cache. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    const release = await this.mutex.lock();
    try {
      if (this.disposed) return;
      this.disposed = true;
      this.cached.length = 0;
      await this.session.dispose();
      this.onDispose();
    } finally {
      release();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private checkUsable(): void {
    if (this.disposed) throw new LlamaCudaError('ERR_DISPOSED', 'the sequence was disposed');
  }
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
