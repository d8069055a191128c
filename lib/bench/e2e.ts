/**
 * End-to-end speed, llama-bench style: prompt processing `pp<P>` (tokens/s feeding a P-token
 * prompt as one native step) and text generation `tg<N>` (tokens/s over N greedy decode steps)
 * at several context depths (tg at depth d: generating after a d-token prompt, which is not
 * timed). One warm-up (a short prompt and a few decode steps) first; every number is the median
 * of `repeats` runs, with min and max.
 *
 * Row names (design.md §5): `e2e.prefill.<model>.p<P>`, `e2e.decode.<model>.b1` (depth 0) and
 * `e2e.decode.<model>.b1.d<d>`. Decode is held against the read bandwidth over the bytes of
 * weights read per token (decode reads each weight once per token); prefill against the matrix
 * rate over 2 FLOPs per weight per token, where a matrix rate is given.
 */
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';

import { loadModel } from '../load-model.js';
import type { LlamaModel } from '../model/llama-model.js';
import { type SynthPreset, type SynthType, synthesizeModel } from '../synth.js';
import { loadTokenizerFile } from '../tokenizer/index.js';
import { type ResultRow, fmt, median, resultRow } from './results.js';

export interface E2eModel {
  readonly name: string;
  /** The model file (made on first use for synthetic models). */
  readonly file: () => Promise<string>;
  readonly tokenizer?: string;
}

export interface E2eOptions {
  readonly models: readonly E2eModel[];
  /** Prompt lengths timed as pp (default 128, 512). */
  readonly prompts?: readonly number[];
  /** Tokens generated per tg run (default 128). */
  readonly genTokens?: number;
  /** Context depths of tg (default 0, 512, 1024). */
  readonly depths?: readonly number[];
  readonly repeats?: number;
  readonly threads?: number;
  readonly device?: 'cpu' | 'cuda';
  /** Ceilings: read bandwidth (GB/s) for decode, matrix rate (GFLOP/s) for prefill. */
  readonly readGBps?: number;
  readonly matrixGflops?: number;
  readonly deviceName: string;
  readonly log?: (line: string) => void;
}

/** A file given on the command line: its base name (without extension) names its rows. */
export function modelFromFile(file: string, tokenizer?: string): E2eModel {
  const base = path.basename(file).replace(/\.(gguf|bin)$/i, '');
  return { name: base, file: async () => file, ...(tokenizer !== undefined ? { tokenizer } : {}) };
}

/** A synthetic model in a real shape, written by `synth` into `dir` on first use. */
export function synthModel(dir: string, shared: string, name: string, preset: SynthPreset, type: SynthType, layers?: number): E2eModel {
  return {
    name,
    file: async () => {
      const out = path.join(dir, `${name}.gguf`);
      if (!existsSync(out)) {
        mkdirSync(dir, { recursive: true });
        const tokenizer = await loadTokenizerFile(path.join(shared, 'models/llama2-tokenizer/tokenizer.bin'), 32000);
        await synthesizeModel({ preset, type, out, tokenizer, ...(layers !== undefined ? { layers } : {}) });
      }
      return out;
    },
  };
}

/** stories260K (real) and the synthetic set: TinyLlama-1.1B Q4_0 and Q8_0, Llama-2-7B width with 2 layers in F16. */
export function defaultE2eModels(shared: string, dir: string): E2eModel[] {
  return [
    {
      name: 'stories260K',
      file: async () => path.join(shared, 'models/stories260K/stories260K.bin'),
      tokenizer: path.join(shared, 'models/stories260K/tok512.bin'),
    },
    synthModel(dir, shared, 'tinyllama-1.1b.q4_0', 'tinyllama-1.1b', 'q4_0'),
    synthModel(dir, shared, 'tinyllama-1.1b.q8_0', 'tinyllama-1.1b', 'q8_0'),
    synthModel(dir, shared, 'llama2-7b-2layers.f16', 'llama2-7b', 'f16', 2),
  ];
}

interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function spread(xs: readonly number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function spreadText(s: Spread, n: number): string {
  return `median of ${n}: min ${fmt(s.min)}, max ${fmt(s.max)}`;
}

/** Prompt token ids: BOS, then a fixed spread over the vocabulary (no special ids). */
function promptTokens(model: LlamaModel, length: number): number[] {
  const vocab = model.config.vocabSize;
  return Array.from({ length }, (_, i) => (i === 0 ? model.tokenizer.bos : 3 + ((i * 7919) % (vocab - 3))));
}

function argmax(logits: Float32Array): number {
  let best = 0;
  for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
  return best;
}

export async function runE2e(opts: E2eOptions): Promise<ResultRow[]> {
  const prompts = opts.prompts ?? [128, 512];
  const gen = opts.genTokens ?? 128;
  const depths = [...(opts.depths ?? [0, 512, 1024])].sort((a, b) => a - b);
  const repeats = opts.repeats ?? 3;
  const device = opts.device ?? 'cpu';
  const log = opts.log ?? (() => {});
  const rows: ResultRow[] = [];
  const maxPrompt = Math.max(...prompts, 1);
  const contextLength = Math.max(maxPrompt, Math.max(...depths, 0) + gen);
  for (const m of opts.models) {
    const file = await m.file();
    const model = await loadModel(file, {
      device,
      contextLength,
      batchSize: maxPrompt, // a pp run is one native step, as llama-bench's -ub 512
      ...(opts.threads !== undefined && opts.threads > 0 ? { threads: opts.threads } : {}),
      ...(m.tokenizer !== undefined ? { tokenizer: m.tokenizer } : {}),
    });
    try {
      const kernel = model.info.backend.description;
      const { bytesPerToken } = model.info;
      const params = model.info.parameters;
      const seq = model.createSequence();
      // warm-up: a short prompt and a few decode steps (page faults, thread pool, caches)
      let logits = (await seq.evaluate(promptTokens(model, Math.min(32, maxPrompt))))!;
      for (let i = 0; i < 4; i++) logits = (await seq.evaluate([argmax(logits)]))!;

      for (const p of prompts) {
        const tps: number[] = [];
        const tokens = promptTokens(model, p);
        for (let r = 0; r < repeats; r++) {
          seq.truncate(0);
          const t0 = performance.now();
          await seq.evaluate(tokens);
          tps.push((p * 1000) / (performance.now() - t0));
        }
        const s = spread(tps);
        // prefill does 2 FLOPs per weight per token (attention aside)
        const ceiling = opts.matrixGflops !== undefined ? (opts.matrixGflops * 1e9) / (2 * params) : null;
        const row = resultRow({
          name: `e2e.prefill.${m.name}.p${p}`,
          backend: device,
          device: opts.deviceName,
          value: s.median,
          unit: 'tokens/s',
          ceiling,
          notes: `${kernel}; pp${p} in one step; ${spreadText(s, repeats)}` + (ceiling !== null ? `; ceiling = ${fmt(opts.matrixGflops!)} GFLOP/s / (2 x ${fmt(params / 1e6)} M weights)` : ''),
        });
        rows.push(row);
        log(`${m.name} pp${p}: ${fmt(s.median)} tokens/s (min ${fmt(s.min)}, max ${fmt(s.max)})`);
      }

      // tg at each depth: the depth prompt is evaluated once (untimed), each repeat truncates back to it
      const depthPrompt = promptTokens(model, Math.max(...depths, 1));
      seq.truncate(0);
      for (const d of depths) {
        if (seq.position < d) await seq.evaluate(depthPrompt.slice(seq.position, d));
        const tps: number[] = [];
        for (let r = 0; r < repeats; r++) {
          // back to d - 1 tokens, and the last prompt token again (untimed) for the first logits
          let next = model.tokenizer.bos;
          seq.truncate(Math.max(0, d - 1));
          if (d > 0) {
            logits = (await seq.evaluate([depthPrompt[d - 1]!]))!;
            next = argmax(logits);
          }
          const t0 = performance.now();
          for (let i = 0; i < gen; i++) {
            logits = (await seq.evaluate([next]))!;
            next = argmax(logits);
          }
          tps.push((gen * 1000) / (performance.now() - t0));
        }
        const s = spread(tps);
        const ceiling = opts.readGBps !== undefined ? (opts.readGBps * 1e9) / bytesPerToken : null;
        rows.push(
          resultRow({
            name: `e2e.decode.${m.name}.b1${d > 0 ? `.d${d}` : ''}`,
            backend: device,
            device: opts.deviceName,
            value: s.median,
            unit: 'tokens/s',
            ceiling,
            notes:
              `${kernel}; tg${gen} at depth ${d}; ${spreadText(s, repeats)}` +
              (ceiling !== null ? `; ceiling = ${fmt(opts.readGBps!)} GB/s read / ${fmt(bytesPerToken / 1e6)} MB of weights read per token` : ''),
          }),
        );
        log(`${m.name} tg${gen} @ d${d}: ${fmt(s.median)} tokens/s (min ${fmt(s.min)}, max ${fmt(s.max)})`);
      }
      await seq.dispose();
    } finally {
      await model.dispose();
    }
  }
  return rows;
}
