/**
 * End-to-end speed on the CPU: prompt processing (tokens/s over a 128-token prompt) and decode
 * (tokens/s over 128 generated tokens, greedy), median of repeats after a warm-up, for
 * stories260K and synthetic models of real shapes (made with `llama-cuda synth` into .bench/).
 * Each decode number is printed against the ceiling of this machine: read bandwidth divided
 * by the bytes of weights read per token.
 *
 *   npm run bench:e2e [-- --json out.json] [-- --models tinyllama-q4_0,...]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as path from 'node:path';

import { tokenizerFromFile } from '../../lib/cli/synth.js';
import { loadModel } from '../../lib/index.js';
import { type SynthPreset, type SynthType, synthesizeModel } from '../../lib/synth.js';
import { measureCeilings } from '../ceilings.js';

const root = process.cwd();
const shared = path.resolve(root, process.env.LLAMA_CUDA_SHARED ?? '../shared');
const benchDir = path.join(root, '.bench', 'models');

interface ModelCase {
  readonly name: string;
  readonly file: () => Promise<string>;
  readonly tokenizer?: string;
}

function synthetic(name: string, preset: SynthPreset, type: SynthType, layers?: number): ModelCase {
  return {
    name,
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
  { name: 'stories260K', file: async () => path.join(shared, 'models/stories260K/stories260K.bin'), tokenizer: path.join(shared, 'models/stories260K/tok512.bin') },
  synthetic('tinyllama-1.1b.q4_0', 'tinyllama-1.1b', 'q4_0'),
  synthetic('tinyllama-1.1b.q8_0', 'tinyllama-1.1b', 'q8_0'),
  synthetic('llama2-7b-2layers.f16', 'llama2-7b', 'f16', 2),
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const only = args.includes('--models') ? args[args.indexOf('--models') + 1]!.split(',') : undefined;
  const repeats = 3;
  const ceilings = measureCeilings();
  const device = cpus()[0]?.model.trim() ?? ceilings.cpu;
  console.log(`CPU: ${device}, ${ceilings.threads} threads; read bandwidth ${ceilings.readGBps.toFixed(1)} GB/s, copy ${ceilings.copyGBps.toFixed(1)} GB/s (1 GiB, best of 5)`);
  const rows: Row[] = [];
  for (const m of MODELS) {
    if (only && !only.includes(m.name)) continue;
    const file = await m.file();
    const model = await loadModel(file, { device: 'cpu', ...(m.tokenizer ? { tokenizer: m.tokenizer } : {}), contextLength: 512, batchSize: 128 });
    const { weightBytes, bytesPerToken } = model.info;
    const prompt = Array.from({ length: 128 }, (_, i) => (i === 0 ? model.tokenizer.bos : 3 + ((i * 7919) % (model.config.vocabSize - 3))));
    const pp: number[] = [];
    const tg: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      const seq = model.createSequence();
      let t0 = performance.now();
      let logits = (await seq.evaluate(prompt))!;
      const promptMs = performance.now() - t0;
      t0 = performance.now();
      for (let i = 0; i < 128; i++) {
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
        logits = (await seq.evaluate([best]))!;
      }
      const genMs = performance.now() - t0;
      await seq.dispose();
      if (r === 0) continue; // warm-up
      pp.push((128 * 1000) / promptMs);
      tg.push((128 * 1000) / genMs);
    }
    // decode reads every weight once per token (of an untied embedding table: one row)
    const ceilingTps = (ceilings.readGBps * 1e9) / bytesPerToken;
    const spread = (xs: number[]): string => `min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}`;
    const kernel = model.info.backend.description;
    console.log(
      `${m.name.padEnd(24)} ${(weightBytes / 2 ** 20).toFixed(0).padStart(6)} MiB  pp128 ${median(pp).toFixed(1).padStart(8)} tok/s (${spread(pp)})  ` +
        `tg128 ${median(tg).toFixed(1).padStart(8)} tok/s (${spread(tg)})  ceiling ${ceilingTps.toFixed(1)} tok/s  ratio ${(median(tg) / ceilingTps).toFixed(2)}  [${kernel}]`,
    );
    rows.push(
      { name: `e2e.prefill.${m.name}.p128`, backend: 'cpu', device, value: median(pp), unit: 'tokens/s', ceiling: null, ratio: null, notes: `${kernel}; ${spread(pp)}; median of ${repeats}` },
      { name: `e2e.decode.${m.name}.b1`, backend: 'cpu', device, value: median(tg), unit: 'tokens/s', ceiling: ceilingTps, ratio: median(tg) / ceilingTps, notes: `${kernel}; ceiling = ${ceilings.readGBps.toFixed(1)} GB/s read / ${(bytesPerToken / 1e6).toFixed(1)} MB of weights read per token; ${spread(tg)}` },
    );
    await model.dispose();
  }
  if (jsonOut) {
    writeFileSync(jsonOut, `${JSON.stringify(rows, null, 2)}\n`);
    console.log(`wrote ${jsonOut}`);
  }
}

await main();
