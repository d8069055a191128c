/**
 * llama-cuda generate --model F [--tokenizer F] --prompt TEXT [--max-tokens N] [--temperature T]
 *   [--top-k K] [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda|auto] [--json] ...
 *
 * Streams the prompt and then the generated text to stdout (like llama2.c's run), and a
 * one-line summary to stderr. With --json it prints only one JSON object:
 *   {"prompt_tokens": [...], "tokens": [...], "text": "...", "finish_reason": "...", "timings": {...}}
 */
import { type LoadModelOptions, loadModel } from '../load-model.js';
import type { GenerateOptions, GenerateResult } from '../generate.js';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optList, optNumber, optString, parseArgs } from './args.js';
import { loraLoadOptions, loraOptions } from './lora-args.js';
import { loadOptionsFrom, quantizeOptionSpec } from './model-options.js';
import { progressBar } from './progress.js';

export const generateOptions: OptionSpecs = {
  model: { type: 'string', value: 'F', description: 'model file (GGUF or llama2.c .bin)' },
  tokenizer: { type: 'string', value: 'F', description: 'tokenizer file (tokenizer.json, tokenizer.model, GGUF or llama2.c tokenizer.bin); needed for .bin models' },
  prompt: { type: 'string', value: 'TEXT', description: 'the prompt (BOS is prepended)' },
  'max-tokens': { type: 'number', description: 'most tokens to generate (default 256)' },
  temperature: { type: 'number', value: 'T', description: 'sampling temperature; 0 = greedy (default 0.8)' },
  'top-k': { type: 'number', value: 'K', description: 'keep the K most likely tokens; 0 = off (default 40)' },
  'top-p': { type: 'number', value: 'P', description: 'nucleus sampling; 1 = off (default 0.95)' },
  'min-p': { type: 'number', value: 'P', description: 'drop tokens below P x the top probability (default 0.05)' },
  'repeat-penalty': { type: 'number', value: 'R', description: 'penalize recent tokens; 1 = off (default 1)' },
  seed: { type: 'number', value: 'S', description: 'random seed, for repeatable sampling' },
  stop: { type: 'string', repeat: true, value: 'TEXT', description: 'stop when this text is generated' },
  device: { type: 'string', value: 'D', description: 'cpu, cuda or auto (default auto; env LLAMA_CUDA_BACKEND)' },
  threads: { type: 'number', description: 'CPU threads (default: all)' },
  'ctx-size': { type: 'number', description: 'context length (default: the model\'s)' },
  'batch-size': { type: 'number', description: 'prompt tokens per step (default 128)' },
  'kv-type': { type: 'string', value: 'T', description: 'KV cache type: f16 (default), f32, or bf16 (CUDA)' },
  quantize: quantizeOptionSpec(),
  ...loraOptions,
  json: { type: 'boolean', description: 'print one JSON object instead of streaming text' },
  help: { type: 'boolean', description: 'show this help' },
};

export const generateUsage = 'usage: llama-cuda generate --model F [--tokenizer F] --prompt TEXT [options]';

function resultJson(result: GenerateResult, loadMs: number): unknown {
  const t = result.timings;
  return {
    prompt_tokens: result.promptTokens,
    tokens: result.tokens,
    text: result.text,
    finish_reason: result.finishReason,
    timings: {
      load_ms: round(loadMs),
      prompt_tokens: t.promptTokens,
      prompt_ms: round(t.promptMs),
      prompt_tokens_per_second: round(t.promptTokensPerSecond),
      generated_tokens: t.generatedTokens,
      generate_ms: round(t.generateMs),
      tokens_per_second: round(t.tokensPerSecond),
    },
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export async function runGenerate(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, generateOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(generateUsage, generateOptions));
    return 0;
  }
  const modelPath = optString(p, 'model');
  const prompt = optString(p, 'prompt') ?? p.positionals.join(' ');
  if (modelPath === undefined) throw new UsageError('--model is required');
  const json = optBool(p, 'json');

  const bar = progressBar('loading');
  const loadOptions: LoadModelOptions = {
    ...loadOptionsFrom(p),
    ...loraLoadOptions(p),
    ...(json ? {} : { onProgress: bar.update }),
  };
  const model = await loadModel(modelPath, loadOptions);
  bar.done();

  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const options: GenerateOptions = {
      maxTokens: optInt(p, 'max-tokens') ?? 256,
      signal: abort.signal,
      stop: optList(p, 'stop'),
      ...numberOption('temperature', optNumber(p, 'temperature')),
      ...numberOption('topK', optInt(p, 'top-k')),
      ...numberOption('topP', optNumber(p, 'top-p')),
      ...numberOption('minP', optNumber(p, 'min-p')),
      ...numberOption('repeatPenalty', optNumber(p, 'repeat-penalty')),
      ...numberOption('seed', optInt(p, 'seed')),
    };
    const it = model.generate(prompt, options);
    if (!json) process.stdout.write(prompt);
    let result: GenerateResult;
    for (;;) {
      const step = await it.next();
      if (step.done) {
        result = step.value;
        break;
      }
      if (!json && step.value.text.length > 0) process.stdout.write(step.value.text);
    }
    if (json) {
      process.stdout.write(`${JSON.stringify(resultJson(result, model.info.loadMs))}\n`);
    } else {
      process.stdout.write('\n');
      const t = result.timings;
      process.stderr.write(
        `[llama-cuda] ${model.info.backend.description}; prompt ${t.promptTokens} tokens at ${t.promptTokensPerSecond.toFixed(1)} tok/s; ` +
          `generated ${t.generatedTokens} tokens at ${t.tokensPerSecond.toFixed(1)} tok/s (${result.finishReason})\n`,
      );
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await model.dispose();
  }
}

function numberOption<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}
