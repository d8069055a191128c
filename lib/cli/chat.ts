/**
 * llama-cuda chat --model F [--tokenizer F] [--system TEXT] [sampling options as generate]
 *   [--device D] [--ctx-size N] [--verbose]
 *
 * An interactive Llama 2 chat: one user turn per line of stdin, the reply streamed to stdout
 * (followed by a newline), until EOF. The whole history is passed each turn (model.chat), so the
 * KV cache holds it and only the new part is computed. `/reset` clears the history (the system
 * message stays). A "> " prompt is printed only when stdin is a terminal. When the history no
 * longer fits the context, the oldest exchanges are dropped (said on stderr). Ctrl-C stops the
 * reply being generated; at the prompt it ends the chat. --verbose prints, per turn, on stderr:
 *   [llama-cuda] turn N: prompt P tokens (E evaluated, C from cache); reply G tokens at X tok/s (reason)
 */
import { createInterface } from 'node:readline';

import type { ChatMessage, ChatOptions } from '../chat.js';
import { buildLlama2ChatTokens } from '../chat.js';
import type { GenerateResult } from '../generate.js';
import { type LoadModelOptions, loadModel } from '../load-model.js';
import type { LlamaModel } from '../model/llama-model.js';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optList, optNumber, optString, parseArgs } from './args.js';
import { generateOptions } from './generate.js';
import { loraLoadOptions } from './lora-args.js';
import { loadOptionsFrom } from './model-options.js';
import { progressBar } from './progress.js';

const shared = (name: string): OptionSpecs[string] => generateOptions[name]!;

export const chatOptions: OptionSpecs = {
  model: shared('model'),
  tokenizer: shared('tokenizer'),
  system: { type: 'string', value: 'TEXT', description: 'system message (folded into the first user turn, <<SYS>>)' },
  'max-tokens': { type: 'number', description: 'most tokens per reply (default 512)' },
  temperature: shared('temperature'),
  'top-k': shared('top-k'),
  'top-p': shared('top-p'),
  'min-p': shared('min-p'),
  'repeat-penalty': shared('repeat-penalty'),
  seed: shared('seed'),
  stop: shared('stop'),
  device: shared('device'),
  threads: shared('threads'),
  'ctx-size': shared('ctx-size'),
  'batch-size': shared('batch-size'),
  'kv-type': shared('kv-type'),
  quantize: shared('quantize'),
  lora: shared('lora'),
  'lora-mode': shared('lora-mode'),
  verbose: { type: 'boolean', description: 'print per-turn token counts and speed to stderr' },
  help: { type: 'boolean', description: 'show this help' },
};

export const chatUsage = 'usage: llama-cuda chat --model F [--tokenizer F] [--system TEXT] [options]   (one user turn per line of stdin; /reset clears the history)';

function numberOption<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/**
 * Drops the oldest (user, assistant) exchanges until the dialog's prompt leaves room to reply.
 * Returns how many exchanges were dropped, or -1 when even the last turn alone does not fit.
 */
function fitContext(model: LlamaModel, history: ChatMessage[]): number {
  const first = history[0]?.role === 'system' ? 1 : 0;
  let dropped = 0;
  while (buildLlama2ChatTokens(model.tokenizer, history).length >= model.contextLength) {
    if (history.length - first < 3) return -1;
    history.splice(first, 2);
    dropped++;
  }
  return dropped;
}

export async function runChat(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, chatOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(chatUsage, chatOptions));
    return 0;
  }
  const modelPath = optString(p, 'model');
  if (modelPath === undefined) throw new UsageError('--model is required');
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument "${p.positionals[0]}" (user turns are read from stdin)`);
  const verbose = optBool(p, 'verbose');
  const systemPrompt = optString(p, 'system');
  const options: ChatOptions = {
    maxTokens: optInt(p, 'max-tokens') ?? 512,
    stop: optList(p, 'stop'),
    ...numberOption('temperature', optNumber(p, 'temperature')),
    ...numberOption('topK', optInt(p, 'top-k')),
    ...numberOption('topP', optNumber(p, 'top-p')),
    ...numberOption('minP', optNumber(p, 'min-p')),
    ...numberOption('repeatPenalty', optNumber(p, 'repeat-penalty')),
    ...numberOption('seed', optInt(p, 'seed')),
  };

  const bar = progressBar('loading');
  const loadOptions: LoadModelOptions = {
    ...loadOptionsFrom(p),
    ...loraLoadOptions(p),
    onProgress: bar.update,
  };
  const model = await loadModel(modelPath, loadOptions);
  bar.done();
  if (verbose) process.stderr.write(`[llama-cuda] ${model.info.name}: ${model.info.backend.description}; context ${model.contextLength}\n`);

  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, ...(interactive ? { output: process.stdout, prompt: '> ' } : {}), terminal: interactive, crlfDelay: Infinity });
  const base: ChatMessage[] = systemPrompt === undefined ? [] : [{ role: 'system', content: systemPrompt }];
  let history: ChatMessage[] = [...base];
  let generating: AbortController | undefined;
  const onSigint = (): void => {
    if (generating !== undefined) generating.abort();
    else rl.close();
  };
  rl.on('SIGINT', onSigint);
  process.on('SIGINT', onSigint);
  let turn = 0;
  try {
    if (interactive) rl.prompt();
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/reset') {
        history = [...base];
        process.stderr.write('[llama-cuda] history cleared\n');
      } else if (text !== '') {
        history.push({ role: 'user', content: line });
        const dropped = fitContext(model, history);
        if (dropped < 0) {
          history.pop();
          process.stderr.write(`[llama-cuda] this turn does not fit the context of ${model.contextLength} tokens: skipped\n`);
        } else {
          if (dropped > 0) process.stderr.write(`[llama-cuda] the context is full: dropped the ${dropped} oldest exchange(s)\n`);
          turn++;
          generating = new AbortController();
          const it = model.chat(history, { ...options, signal: generating.signal });
          let result: GenerateResult;
          for (;;) {
            const step = await it.next();
            if (step.done) {
              result = step.value;
              break;
            }
            if (step.value.text.length > 0) process.stdout.write(step.value.text);
          }
          generating = undefined;
          process.stdout.write('\n');
          history.push({ role: 'assistant', content: result.text });
          if (verbose) {
            const t = result.timings;
            process.stderr.write(
              `[llama-cuda] turn ${turn}: prompt ${t.promptTokens} tokens (${t.promptEvaluated} evaluated, ${t.promptTokens - t.promptEvaluated} from cache); ` +
                `reply ${t.generatedTokens} tokens at ${t.tokensPerSecond.toFixed(1)} tok/s (${result.finishReason})\n`,
            );
          }
        }
      }
      if (interactive) rl.prompt();
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    rl.close();
    await model.dispose();
  }
}
