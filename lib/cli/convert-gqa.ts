/**
 * llama-cuda convert-gqa IN OUT.gguf --kv-heads N [--file text.txt] [--ctx N] [--json] [model options]
 *
 * Mean-pools the key/value projection heads of IN into N groups (the GQA paper's checkpoint
 * conversion; lib/convert-gqa.ts) and writes OUT.gguf with head_count_kv = N. With --file, it
 * then scores that text with the model before and after (lib/perplexity.ts, same windows) and
 * prints both perplexities.
 */
import { convertGqa } from '../convert-gqa.js';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optString, parseArgs } from './args.js';
import { loadOptionsFrom, modelLoadOptions } from './model-options.js';
import { describePerplexity, perplexityJson, readTextFile, scoreFile, windowFor } from './perplexity.js';
import { progressBar } from './progress.js';

export const convertGqaOptions: OptionSpecs = {
  'kv-heads': { type: 'number', description: "key/value heads of the output (divides the model's; 1 = multi-query)" },
  file: { type: 'string', value: 'F', description: 'a text to score before and after (perplexity)' },
  ctx: { type: 'number', description: "perplexity window in tokens (default: the model's context, at most 512)" },
  ...modelLoadOptions,
  json: { type: 'boolean', description: 'print one JSON object on stdout' },
  help: { type: 'boolean', description: 'show this help' },
};

export const convertGqaUsage = 'usage: llama-cuda convert-gqa IN OUT.gguf --kv-heads N [--file text.txt] [--ctx N] [--tokenizer F] [--json]';

export async function runConvertGqa(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, convertGqaOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(convertGqaUsage, convertGqaOptions));
    return 0;
  }
  if (p.positionals.length !== 2) throw new UsageError(`expected an input model and an output file, got ${p.positionals.length} arguments`);
  const [input, output] = p.positionals as [string, string];
  const kvHeads = optInt(p, 'kv-heads');
  if (kvHeads === undefined) throw new UsageError('--kv-heads is required');
  if (kvHeads < 1) throw new UsageError('--kv-heads must be at least 1');
  const textFile = optString(p, 'file');
  const tokenizer = optString(p, 'tokenizer');
  const json = optBool(p, 'json');
  const text = textFile !== undefined ? await readTextFile(textFile) : undefined;

  const bar = progressBar('converting');
  const result = await convertGqa(input, output, {
    kvHeads,
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    onProgress: (q) => bar.update({ loadedBytes: q.doneBytes, totalBytes: q.totalBytes, fraction: q.fraction }),
  }).finally(() => bar.done());
  const summary = `wrote ${output}: ${result.heads} query heads, ${result.kvHeadsBefore} -> ${result.kvHeads} KV heads (${result.pooledTensors} k/v projections mean-pooled), ${(result.bytes / 2 ** 20).toFixed(2)} MiB`;
  if (!json) process.stderr.write(`${summary}\n`);

  let before;
  let after;
  if (text !== undefined) {
    const ctx = await windowFor(p, input);
    const load = loadOptionsFrom(p, ctx);
    before = await scoreFile(input, text, ctx, load, 'perplexity (before)', json);
    // the output carries its tokenizer: --tokenizer was only for the input
    const { tokenizer: _unused, ...loadOut } = load;
    after = await scoreFile(output, text, ctx, loadOut, 'perplexity (after)', json);
    if (!json) {
      process.stdout.write(`before (${result.kvHeadsBefore} KV heads): ${describePerplexity(before)}\n`);
      process.stdout.write(`after  (${result.kvHeads} KV heads): ${describePerplexity(after)}\n`);
    }
  }
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        output: result.output,
        heads: result.heads,
        kv_heads_before: result.kvHeadsBefore,
        kv_heads: result.kvHeads,
        bytes: result.bytes,
        ...(before !== undefined ? { perplexity_before: perplexityJson(before) } : {}),
        ...(after !== undefined ? { perplexity_after: perplexityJson(after) } : {}),
      })}\n`,
    );
  }
  return 0;
}
