/**
 * llama-cuda quantize IN OUT.gguf --type q4_0|q8_0 [--tokenizer F] [--json]
 *
 * Writes a GGUF whose matrices are Q4_0 or Q8_0 (ggml's own rounding rules, so llama.cpp reads
 * it and gets the numbers its own quantizer would have written), from any model file the
 * library reads (GGUF, llama2.c .bin with --tokenizer, Hugging Face folders). Norms become f32;
 * matrices whose rows do not fill 32-blocks stay f32 or f16 (bf16 becomes f32).
 * lib/quantize-file.ts does the work.
 */
import { quantizeModelFile } from '../quantize-file.js';
import { type OptionSpecs, UsageError, helpText, optBool, optString, parseArgs } from './args.js';
import { progressBar } from './progress.js';

export const quantizeOptions: OptionSpecs = {
  type: { type: 'string', value: 'T', description: 'weight type: q4_0 or q8_0' },
  tokenizer: { type: 'string', value: 'F', description: 'tokenizer file (tokenizer.json, tokenizer.model, GGUF or llama2.c tokenizer.bin); needed for .bin models' },
  json: { type: 'boolean', description: 'print a JSON summary on stdout' },
  help: { type: 'boolean', description: 'show this help' },
};

export const quantizeUsage = 'usage: llama-cuda quantize IN OUT.gguf --type q4_0|q8_0 [--tokenizer F] [--json]';

export async function runQuantize(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, quantizeOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(quantizeUsage, quantizeOptions));
    return 0;
  }
  if (p.positionals.length !== 2) throw new UsageError(`expected an input model and an output file, got ${p.positionals.length} arguments`);
  const [input, output] = p.positionals as [string, string];
  const type = optString(p, 'type');
  if (type !== 'q4_0' && type !== 'q8_0') throw new UsageError('--type must be q4_0 or q8_0');
  const tokenizer = optString(p, 'tokenizer');

  const t0 = performance.now();
  const bar = progressBar('quantizing');
  const result = await quantizeModelFile(input, output, {
    type,
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    onProgress: (q) => bar.update({ loadedBytes: q.doneBytes, totalBytes: q.totalBytes, fraction: q.fraction }),
  }).finally(() => bar.done());
  const seconds = (performance.now() - t0) / 1000;
  const counts: Record<string, number> = {};
  for (const t of result.tensors) counts[t.to] = (counts[t.to] ?? 0) + 1;
  if (optBool(p, 'json')) {
    process.stdout.write(`${JSON.stringify({ output: result.output, type, bytes: result.bytes, tensor_types: counts, seconds })}\n`);
  }
  const summary = Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ');
  process.stderr.write(`wrote ${output}: ${result.tensors.length} tensors (${summary}), ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s\n`);
  return 0;
}
