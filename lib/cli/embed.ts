/**
 * llama-cuda embed --model F [--pooling mean|last] [--jsonl] [TEXT] [model options]
 *
 * Prints the L2-normalized embedding of TEXT (lib/embed.ts) as one JSON array of numbers; with
 * --jsonl it reads lines `{"text": ...}` on stdin and writes `{"embedding": [...]}` per line.
 */
import { createInterface } from 'node:readline';

import { loadModel } from '../load-model.js';
import { type OptionSpecs, UsageError, helpText, optBool, optString, parseArgs } from './args.js';
import { loadOptionsFrom, modelLoadOptions } from './model-options.js';

export const embedOptions: OptionSpecs = {
  model: { type: 'string', value: 'F', description: 'model file (GGUF, Hugging Face folder or llama2.c .bin)' },
  pooling: { type: 'string', value: 'P', description: 'mean (default: average over the tokens) or last (the last token)' },
  jsonl: { type: 'boolean', description: 'read {"text": ...} lines on stdin, write {"embedding": [...]} lines' },
  ...modelLoadOptions,
  help: { type: 'boolean', description: 'show this help' },
};

export const embedUsage = 'usage: llama-cuda embed --model F [--pooling mean|last] [--jsonl] [TEXT]';

export async function runEmbed(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, embedOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(embedUsage, embedOptions));
    return 0;
  }
  const modelPath = optString(p, 'model');
  if (modelPath === undefined) throw new UsageError('--model is required');
  const pooling = optString(p, 'pooling') ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'last') throw new UsageError('--pooling must be mean or last');
  const jsonl = optBool(p, 'jsonl');
  if (!jsonl && p.positionals.length === 0) throw new UsageError('give a TEXT, or --jsonl with lines on stdin');
  const model = await loadModel(modelPath, loadOptionsFrom(p));
  try {
    if (!jsonl) {
      const [vector] = await model.embed([p.positionals.join(' ')], { pooling });
      process.stdout.write(`${JSON.stringify(Array.from(vector!))}\n`);
      return 0;
    }
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      let text: unknown;
      try {
        text = (JSON.parse(line) as { text?: unknown }).text;
      } catch {
        throw new UsageError(`not a JSON line: ${line.slice(0, 80)}`);
      }
      if (typeof text !== 'string') throw new UsageError('each line must be an object {"text": "..."}');
      const [vector] = await model.embed([text], { pooling });
      process.stdout.write(`${JSON.stringify({ embedding: Array.from(vector!) })}\n`);
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
