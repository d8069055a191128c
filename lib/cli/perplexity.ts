/**
 * llama-cuda perplexity --model F --file text.txt [--ctx N] [--json] [model options]
 *
 * Perplexity of the file's text in windows of --ctx tokens, scored on each window's second half
 * as llama.cpp's perplexity tool does (lib/perplexity.ts), with a progress bar on stderr. Prints
 * one summary line on stdout, or with --json one object:
 *   {"perplexity", "nll", "tokens", "windows", "ctx", "text_tokens", "window_perplexities", "seconds"}
 */
import { readFile } from 'node:fs/promises';

import { LlamaCudaError } from '../errors.js';
import { openModelFile } from '../formats/model-file.js';
import { type LoadModelOptions, loadModel } from '../load-model.js';
import type { PerplexityResult } from '../perplexity.js';
import { type OptionSpecs, type Parsed, UsageError, helpText, optBool, optInt, optString, parseArgs } from './args.js';
import { loadOptionsFrom, modelLoadOptions } from './model-options.js';
import { progressBar } from './progress.js';

export const perplexityOptions: OptionSpecs = {
  model: { type: 'string', value: 'F', description: 'model file (GGUF, Hugging Face folder or llama2.c .bin)' },
  file: { type: 'string', value: 'F', description: 'the text to score (UTF-8)' },
  ctx: { type: 'number', description: "tokens per window (default: the model's context, at most 512)" },
  ...modelLoadOptions,
  json: { type: 'boolean', description: 'print one JSON object' },
  help: { type: 'boolean', description: 'show this help' },
};

export const perplexityUsage = 'usage: llama-cuda perplexity --model F --file text.txt [--ctx N] [--json] [options]';

export async function readTextFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The window length: --ctx, else the model's context (at most 512); and the KV cache it needs. */
export async function windowFor(p: Parsed, modelPath: string): Promise<number> {
  const ctx = optInt(p, 'ctx');
  if (ctx !== undefined) {
    if (ctx < 3) throw new UsageError('--ctx must be at least 3');
    return ctx;
  }
  const file = await openModelFile(modelPath);
  return Math.min(file.config.contextLength, 512);
}

/** Loads a model, scores the text with a progress bar labelled `label`, disposes the model. */
export async function scoreFile(modelPath: string, text: string, ctx: number, load: LoadModelOptions, label: string, quiet: boolean): Promise<PerplexityResult> {
  const model = await loadModel(modelPath, load);
  const bar = progressBar(label, process.stderr, (q) => `window ${q.loadedBytes}/${q.totalBytes}`);
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    return await model.perplexity(text, {
      ctx: Math.min(ctx, model.contextLength),
      signal: abort.signal,
      ...(quiet ? {} : { onProgress: (q) => bar.update({ loadedBytes: q.window, totalBytes: q.windows, fraction: q.fraction }) }),
    });
  } finally {
    bar.done();
    process.off('SIGINT', onSigint);
    await model.dispose();
  }
}

export function describePerplexity(r: PerplexityResult): string {
  return `perplexity ${r.perplexity.toFixed(4)} (mean nll ${r.nll.toFixed(4)}) over ${r.tokens} tokens: ${r.windows} window(s) of ${r.ctx} tokens, second halves scored (text: ${r.textTokens} tokens)`;
}

export function perplexityJson(r: PerplexityResult): Record<string, unknown> {
  return { perplexity: r.perplexity, nll: r.nll, tokens: r.tokens, windows: r.windows, ctx: r.ctx, text_tokens: r.textTokens, window_perplexities: r.windowPerplexities };
}

export async function runPerplexity(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, perplexityOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(perplexityUsage, perplexityOptions));
    return 0;
  }
  const modelPath = optString(p, 'model') ?? p.positionals[0];
  const textFile = optString(p, 'file');
  if (modelPath === undefined) throw new UsageError('--model is required');
  if (textFile === undefined) throw new UsageError('--file is required');
  const text = await readTextFile(textFile);
  const ctx = await windowFor(p, modelPath);
  const json = optBool(p, 'json');
  const t0 = performance.now();
  const result = await scoreFile(modelPath, text, ctx, loadOptionsFrom(p, ctx), 'perplexity', json);
  const seconds = (performance.now() - t0) / 1000;
  if (json) process.stdout.write(`${JSON.stringify({ ...perplexityJson(result), seconds })}\n`);
  else process.stdout.write(`${describePerplexity(result)}\n`);
  return 0;
}
