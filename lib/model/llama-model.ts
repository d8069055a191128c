/**
 * LlamaModel: a loaded model (weights in native memory on one device) with its tokenizer.
 * Generation runs on the model's default sequence; createSequence() gives more, each with its
 * own KV cache over the same weights.
 */
import type { KvCacheType, NativeEngine, NativeVariant } from '../addon-types.js';
import { type ChatMessage, type ChatOptions, chat } from '../chat.js';
import { type EmbedOptions, embed } from '../embed.js';
import { LlamaCudaError, nativeError } from '../errors.js';
import { type GenerateChunk, type GenerateOptions, type GenerateResult, generate } from '../generate.js';
import { type PerplexityOptions, type PerplexityResult, perplexity } from '../perplexity.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { LlamaConfig } from './config.js';
import { LlamaSequence } from './sequence.js';
import type { LoraInfo } from '../lora/types.js';

export interface ModelInfo {
  readonly path: string;
  readonly format: 'gguf' | 'llama2c' | 'hf';
  readonly name: string;
  readonly parameters: number;
  /** Bytes the weights take in the engine. */
  readonly weightBytes: number;
  /**
   * Weight bytes one decode step reads: every weight once, except the embedding table, of which
   * only one row is read unless it is also the classifier.
   */
  readonly bytesPerToken: number;
  /** The tensor types in the file and how many tensors of each. */
  readonly tensorTypes: Readonly<Record<string, number>>;
  readonly backend: {
    /** Which native build is loaded. */
    readonly variant: NativeVariant;
    /** Where the model runs. */
    readonly device: 'cpu' | 'cuda';
    /** Why this build and device were chosen. */
    readonly reason: string;
    /** e.g. "cpu (avx512 kernels, 2 threads)". */
    readonly description: string;
  };
  readonly loadMs: number;
  /** The LoRA adapters applied at load, and how (absent without adapters). */
  readonly lora?: LoraInfo;
}

export interface SequenceOptions {
  /** Make evaluate(..., { allLogits: true }) possible (reserves batchSize rows of logits). */
  readonly allLogits?: boolean;
}

/** @internal what loadModel hands to the constructor */
export interface ModelParts {
  readonly engine: NativeEngine;
  readonly config: LlamaConfig;
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
  readonly batchSize: number;
  readonly kvCacheType: KvCacheType;
  readonly info: ModelInfo;
}

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly tokenizer: Tokenizer;
  readonly info: ModelInfo;
  /** Positions each sequence's KV cache holds. */
  readonly contextLength: number;
  /** Tokens per native step when a prompt is fed. */
  readonly batchSize: number;

  private readonly engine: NativeEngine;
  private readonly kvCacheType: KvCacheType;
  private readonly sequences = new Set<LlamaSequence>();
  private defaultSequence: LlamaSequence | undefined;
  private disposed = false;

  /** @internal use loadModel() */
  constructor(parts: ModelParts) {
    this.engine = parts.engine;
    this.config = parts.config;
    this.tokenizer = parts.tokenizer;
    this.info = parts.info;
    this.contextLength = parts.contextLength;
    this.batchSize = parts.batchSize;
    this.kvCacheType = parts.kvCacheType;
  }

  /** Text → token ids (BOS first by default, as Llama expects). */
  tokenize(text: string, options?: { addBos?: boolean; parseSpecial?: boolean }): number[] {
    return this.tokenizer.encode(text, { addBos: options?.addBos ?? true, parseSpecial: options?.parseSpecial ?? false });
  }

  /** Token ids → text. */
  detokenize(tokens: readonly number[]): string {
    return this.tokenizer.decode(tokens);
  }

  /** A new sequence with its own KV cache. */
  createSequence(options: SequenceOptions = {}): LlamaSequence {
    this.checkUsable();
    const site = new Error();
    let session;
    try {
      session = this.engine.createSession({
        maxSeqLen: this.contextLength,
        maxTokens: this.batchSize,
        maxOutputRows: options.allLogits ? this.batchSize : 1,
        kvType: this.kvCacheType,
      });
    } catch (err) {
      throw nativeError(err, site);
    }
    const sequence: LlamaSequence = new LlamaSequence(
      session,
      {
        contextLength: this.contextLength,
        batchSize: this.batchSize,
        vocabSize: this.config.vocabSize,
        hiddenSize: this.config.dim,
        allLogits: options.allLogits ?? false,
      },
      () => this.sequences.delete(sequence),
    );
    this.sequences.add(sequence);
    return sequence;
  }

  /**
   * Streams generated text for a prompt (a string, or token ids used as given). Iterate with
   * `for await`; the iterator's return value (when driven by hand) is the GenerateResult.
   */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult, undefined> {
    this.checkUsable();
    return generate({ tokenizer: this.tokenizer, sequence: this.sequence() }, prompt, options);
  }

  /**
   * Streams the assistant's reply to a Llama 2 chat dialog ([system], user, assistant, ...,
   * user), with the prompt built exactly as Meta's chat_completion builds it (see lib/chat.ts).
   * Pass the whole history each turn: the part the KV cache already holds is not recomputed.
   * The text is the reply as decode() gives it (no leading space). Same chunks and result as
   * generate().
   */
  chat(messages: readonly ChatMessage[], options: ChatOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult, undefined> {
    this.checkUsable();
    return chat({ tokenizer: this.tokenizer, sequence: this.sequence() }, messages, options);
  }

  /** Runs generate() to the end and returns the whole result. */
  async complete(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
    const it = this.generate(prompt, options);
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
    }
  }

  /**
   * Perplexity of a text, in windows of `ctx` tokens scored on their second half as llama.cpp's
   * perplexity tool does (lib/perplexity.ts says exactly which tokens are scored). Runs on a
   * sequence of its own, created and freed per call.
   */
  async perplexity(text: string | readonly number[], options: PerplexityOptions = {}): Promise<PerplexityResult> {
    this.checkUsable();
    return perplexity(this, text, options);
  }

  /**
   * L2-normalized embeddings of texts: the final hidden state (after the output RMSNorm),
   * mean-pooled over the text's tokens or taken at its last token (lib/embed.ts).
   */
  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    this.checkUsable();
    return embed(this, texts, options);
  }

  /** Frees the weights and every sequence's cache. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.sequences].map((s) => s.dispose()));
    const site = new Error();
    try {
      await this.engine.dispose();
    } catch (err) {
      throw nativeError(err, site);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private sequence(): LlamaSequence {
    this.defaultSequence ??= this.createSequence();
    return this.defaultSequence;
  }

  private checkUsable(): void {
    if (this.disposed) throw new LlamaCudaError('ERR_DISPOSED', 'the model was disposed');
  }
}
