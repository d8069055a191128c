/**
 * Side by side with node-llama-cpp (llama.cpp's CPU build, a devDependency) on the same GGUF
 * files, the same threads, the same prompt tokens and greedy decoding:
 *   prefill  tokens/s feeding a P-token prompt in one batch (pp128, pp512)
 *   decode   tokens/s generating 128 tokens one at a time after a 128-token prompt (tg128)
 * Runs of the two engines are interleaved (ours, theirs, ours, ...) and repeated after one
 * warm-up each, and the medians compared, because the machine is shared. The greedy tokens
 * both engines generate from the same prompt are compared: synthetic models have random
 * weights, where a near-tie between two logits may legitimately go either way, so the row
 * reports the length of the agreeing prefix.
 *
 *   npm run bench:compare [-- --json out.json] [-- --models tinyllama-1.1b.q4_0,...]
 *                         [-- --repeats 5] [-- --no-pp512]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { getLlama, type LlamaContextSequence, LlamaLogLevel, type Token } from 'node-llama-cpp';

import { tokenizerFromFile } from '../../lib/cli/synth.js';
import { loadModel } from '../../lib/index.js';
import { loadAddon } from '../../lib/native.js';
import { type SynthPreset, type SynthType, synthesizeModel } from '../../lib/synth.js';

const root = process.cwd();
const shared = path.resolve(root, process.env.LLAMA_CUDA_SHARED ?? '../shared');
const benchDir = path.join(root, '.bench', 'models');
const THREADS = 2;
const GEN = 128;

interface ModelCase {
  readonly model: string; // row name parts: <model>.<type>
  readonly type: string;
  readonly file: () => Promise<string>;
}

function synthetic(model: string, preset: SynthPreset, type: SynthType, layers?: number): ModelCase {
  const name = `${model}.${type}`;
  return {
    model,
    type,
    file: async () => {
      const out = path.join(benchDir, `${name}.gguf`);
      if (!existsSync(out)) {
        mkdirSync(benchDir, { recursive: true });
        process.stderr.write(`synthesizing ${out} ...\n`);
        const tokenizer = await tokenizerFromFile(path.join(shared, 'models/llama2-tokenizer/tokenizer.bin'));
        await synthesizeModel({ preset, type, out, tokenizer, ...(layers !== undefined ? { layers } : {}) });
      }
      return out;
    },
  };
}

const MODELS: readonly ModelCase[] = [
  { model: 'stories260K', type: 'f32', file: async () => path.join(shared, 'models/stories260K/stories260K.gguf') },
  synthetic('tinyllama-1.1b', 'tinyllama-1.1b', 'q4_0'),
  synthetic('tinyllama-1.1b', 'tinyllama-1.1b', 'q8_0'),
  synthetic('llama2-7b-2layers', 'llama2-7b', 'f16', 2),
];

interface Row {
  name: string;
  backend: string;
  device: string;
  value: number;
  unit: string;
  ceiling: number | null;
  ratio: number | null;
  notes: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let j = 1; j < v.length; j++) if (v[j]! > v[best]!) best = j;
  return best;
}

/** BOS, then a fixed spread of ordinary token ids (the same for both engines). */
function promptTokens(length: number, bos: number, vocab: number): number[] {
  return Array.from({ length }, (_, i) => (i === 0 ? bos : 3 + ((i * 7919) % (vocab - 3))));
}

function agreeingPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

interface Engine {
  /** Seconds to evaluate the prompt in one batch from an empty cache. */
  prefill(prompt: number[]): Promise<number>;
  /** After the prompt, GEN greedy tokens: seconds for the GEN single-token steps, and the tokens. */
  decode(prompt: number[]): Promise<{ seconds: number; tokens: number[] }>;
  dispose(): Promise<void>;
}

async function ours(file: string, contextLength: number, batchSize: number): Promise<Engine & { vocab: number; bos: number; kernel: string }> {
  const model = await loadModel(file, { device: 'cpu', threads: THREADS, contextLength, batchSize });
  return {
    vocab: model.config.vocabSize,
    bos: model.tokenizer.bos,
    kernel: model.info.backend.description,
    async prefill(prompt) {
      const seq = model.createSequence();
      const t0 = performance.now();
      await seq.evaluate(prompt);
      const s = (performance.now() - t0) / 1000;
      await seq.dispose();
      return s;
    },
    async decode(prompt) {
      const seq = model.createSequence();
      let logits = (await seq.evaluate(prompt))!;
      const tokens: number[] = [argmax(logits)];
      const t0 = performance.now();
      for (let i = 0; i < GEN; i++) {
        logits = (await seq.evaluate([tokens[tokens.length - 1]!]))!;
        tokens.push(argmax(logits));
      }
      const seconds = (performance.now() - t0) / 1000;
      await seq.dispose();
      return { seconds, tokens: tokens.slice(0, GEN) };
    },
    dispose: () => model.dispose(),
  };
}

async function theirs(file: string, contextSize: number, batchSize: number): Promise<Engine> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize, threads: THREADS, batchSize, sequences: 1 });
  const seq: LlamaContextSequence = ctx.getSequence();
  return {
    async prefill(prompt) {
      await seq.clearHistory();
      const t0 = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt as Token[]);
      return (performance.now() - t0) / 1000;
    },
    async decode(prompt) {
      await seq.clearHistory();
      // the first token comes from the prompt's logits; each later one costs one step
      const tokens: number[] = [];
      let t0 = 0;
      for await (const tok of seq.evaluate(prompt as Token[], { temperature: 0 })) {
        tokens.push(tok);
        if (tokens.length === 1) t0 = performance.now();
        if (tokens.length > GEN) break;
      }
      return { seconds: (performance.now() - t0) / 1000, tokens: tokens.slice(0, GEN) };
    },
    async dispose() {
      await ctx.dispose();
      await model.dispose();
    },
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const jsonOut = opt('--json');
  const only = opt('--models')?.split(',');
  const repeats = Number(opt('--repeats') ?? 5);
  const promptLengths = args.includes('--no-pp512') ? [128] : [128, 512];
  const { info } = loadAddon('cpu');
  const device = info.cpu.model;
  console.log(`CPU: ${device}; ${THREADS} threads for both engines; median of ${repeats} interleaved runs after one warm-up each`);
  const rows: Row[] = [];
  const row = (kind: 'decode' | 'prefill', m: ModelCase, a: number[], b: number[], extra: string): void => {
    const o = median(a), t = median(b);
    const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)}`;
    console.log(`${`${kind} ${m.model}.${m.type}`.padEnd(38)} ours ${o.toFixed(1).padStart(8)}  node-llama-cpp ${t.toFixed(1).padStart(8)} tok/s  ratio ${(o / t).toFixed(2)}  ${extra}`);
    rows.push({
      name: `compare.node-llama-cpp.${kind}.${m.model}.${m.type}`,
      backend: 'cpu',
      device,
      value: o,
      unit: 'tokens/s',
      ceiling: t,
      ratio: o / t,
      notes: `ours ${o.toFixed(1)} tok/s (${spread(a)}), node-llama-cpp 3.22.1 ${t.toFixed(1)} tok/s (${spread(b)}); ${THREADS} threads, median of ${repeats}; ${extra}`,
    });
  };

  for (const m of MODELS) {
    if (only && !only.includes(`${m.model}.${m.type}`)) continue;
    const file = await m.file();
    const ctxLen = 1024, batch = 512;
    const a = await ours(file, ctxLen, batch);
    const b = await theirs(file, ctxLen, batch);
    const decodePrompt = promptTokens(128, a.bos, a.vocab);
    // warm-up both
    await a.decode(decodePrompt);
    await b.decode(decodePrompt);
    for (const p of promptLengths) {
      const prompt = promptTokens(p, a.bos, a.vocab);
      const oa: number[] = [], ob: number[] = [];
      await a.prefill(prompt);
      await b.prefill(prompt);
      for (let r = 0; r < repeats; r++) {
        oa.push(p / (await a.prefill(prompt)));
        ob.push(p / (await b.prefill(prompt)));
      }
      const pm: ModelCase = { ...m, type: p === 128 ? m.type : `${m.type}.p${p}` };
      row('prefill', pm, oa, ob, `pp${p} [${a.kernel}]`);
    }
    const oa: number[] = [], ob: number[] = [];
    let agree = '';
    for (let r = 0; r < repeats; r++) {
      const x = await a.decode(decodePrompt);
      const y = await b.decode(decodePrompt);
      oa.push(GEN / x.seconds);
      ob.push(GEN / y.seconds);
      if (r === 0) {
        const k = agreeingPrefix(x.tokens, y.tokens);
        agree = k === GEN ? `greedy tokens agree (${GEN}/${GEN})` : `greedy tokens agree for the first ${k} of ${GEN} (ours ${x.tokens[k]}, theirs ${y.tokens[k]} next)`;
      }
    }
    row('decode', m, oa, ob, `tg${GEN} after a 128-token prompt; ${agree}`);
    await b.dispose();
    await a.dispose();
  }
  if (jsonOut) {
    writeFileSync(jsonOut, `${JSON.stringify(rows, null, 2)}\n`);
    console.log(`wrote ${jsonOut}`);
  }
}

await main();
