/**
 * llama-cuda synth --preset llama2-7b|llama2-13b|llama2-70b|tinyllama-1.1b --type f16|bf16|q8_0|q4_0
 *   [--layers N] --out F.gguf --tokenizer F [--seed S]
 *
 * Writes a GGUF with random weights in the preset's exact shapes and the vocabulary of the
 * named tokenizer file (tokenizer.json, tokenizer.model, a GGUF carrying tokenizer metadata, or a
 * llama2.c tokenizer.bin with the 32000-token Llama 2 vocabulary).
 */
import { stat } from 'node:fs/promises';

import { SYNTH_PRESETS, type SynthPreset, type SynthType, synthesizeModel } from '../synth.js';
import { type Tokenizer, loadTokenizerFile } from '../tokenizer/index.js';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optString, parseArgs } from './args.js';

export const synthOptions: OptionSpecs = {
  preset: { type: 'string', value: 'P', description: `model shape: ${Object.keys(SYNTH_PRESETS).join(', ')}` },
  type: { type: 'string', value: 'T', description: 'weight type: f16, bf16, q8_0 or q4_0' },
  layers: { type: 'number', description: "layers (default: the preset's)" },
  out: { type: 'string', value: 'F', description: 'output .gguf' },
  tokenizer: { type: 'string', value: 'F', description: 'vocabulary source: a GGUF with tokenizer metadata or a Llama 2 tokenizer.bin' },
  seed: { type: 'number', description: 'random seed (default 1)' },
  help: { type: 'boolean', description: 'show this help' },
};

export const synthUsage = 'usage: llama-cuda synth --preset P --type T [--layers N] --out F.gguf --tokenizer F';

/** The vocabulary source: any tokenizer file; a llama2.c tokenizer.bin is read as Llama 2's 32000 pieces. */
export async function tokenizerFromFile(file: string): Promise<Tokenizer> {
  return loadTokenizerFile(file, 32000);
}

export async function runSynth(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, synthOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(synthUsage, synthOptions));
    return 0;
  }
  const preset = optString(p, 'preset');
  const type = optString(p, 'type');
  const out = optString(p, 'out');
  const tokenizerPath = optString(p, 'tokenizer');
  if (preset === undefined || !(preset in SYNTH_PRESETS)) throw new UsageError(`--preset must be one of ${Object.keys(SYNTH_PRESETS).join(', ')}`);
  if (type === undefined || !['f16', 'q8_0', 'q4_0'].includes(type)) throw new UsageError('--type must be f16, q8_0 or q4_0');
  if (out === undefined) throw new UsageError('--out is required');
  if (tokenizerPath === undefined) throw new UsageError('--tokenizer is required (the vocabulary to copy)');
  const layers = optInt(p, 'layers');
  const seed = optInt(p, 'seed');
  const tokenizer = await tokenizerFromFile(tokenizerPath);
  const t0 = performance.now();
  const shape = await synthesizeModel({
    preset: preset as SynthPreset,
    type: type as SynthType,
    out,
    tokenizer,
    ...(layers !== undefined ? { layers } : {}),
    ...(seed !== undefined ? { seed } : {}),
  });
  const { size } = await stat(out);
  process.stderr.write(`wrote ${out}: ${preset} shape, ${shape.nLayers} layers, ${type}, ${(size / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}
