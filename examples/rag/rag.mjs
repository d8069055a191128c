#!/usr/bin/env node
// Ask a question about the arXiv chunks of ../shared/seeds/003_*.txt (the GQA and Llama 2
// papers): index the chunks with the model's embeddings, retrieve the closest, and stream a
// Llama 2 chat answer grounded in them. See README.md beside this file.
//
//   node examples/rag/rag.mjs --model llama-2-7b-chat.Q4_0.gguf --question "How is a multi-head checkpoint converted to GQA?"
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { loadModel } from 'llama-cuda';

import { answer, buildIndex, buildMessages, parseArxivDump, retrieve } from './pipeline.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function defaultCorpus() {
  const shared = process.env.LLAMA_CUDA_SHARED ? path.resolve(process.env.LLAMA_CUDA_SHARED) : path.resolve(here, '..', '..', '..', 'shared');
  const seeds = path.join(shared, 'seeds');
  const file = readdirSync(seeds).find((f) => /^003_.*\.txt$/.test(f));
  if (!file) throw new Error(`no 003_*.txt in ${seeds}`);
  return path.join(seeds, file);
}

const usage = `usage: node examples/rag/rag.mjs --model F --question TEXT [--tokenizer F] [--corpus F] [--top-k N]
       [--max-tokens N] [--temperature T] [--ctx-size N] [--device cpu|cuda|auto] [--show-prompt]`;

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      question: { type: 'string' },
      corpus: { type: 'string' },
      'top-k': { type: 'string', default: '3' },
      'max-tokens': { type: 'string', default: '256' },
      temperature: { type: 'string', default: '0' },
      'ctx-size': { type: 'string' },
      device: { type: 'string', default: 'auto' },
      'show-prompt': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.model || !values.question) {
    process.stderr.write(`${usage}\n`);
    return values.help ? 0 : 2;
  }
  const corpus = values.corpus ?? defaultCorpus();
  const records = parseArxivDump(readFileSync(corpus, 'utf8'));
  const model = await loadModel(values.model, {
    device: values.device,
    ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    ...(values['ctx-size'] ? { contextLength: Number(values['ctx-size']) } : {}),
  });
  try {
    const t0 = performance.now();
    const index = await buildIndex(model, records, {
      onProgress: (done, total) => process.stderr.isTTY && process.stderr.write(`\rindexing ${done}/${total} chunks`),
    });
    process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}indexed ${records.length} chunks (${((performance.now() - t0) / 1000).toFixed(1)} s, ${model.info.backend.description})\n`);

    const hits = await retrieve(model, index, values.question, Number(values['top-k']));
    process.stderr.write('retrieved:\n');
    for (const h of hits) process.stderr.write(`  ${h.score.toFixed(3)}  ${h.payload.title} (arXiv ${h.payload.doi}, chunk ${h.payload.chunkId})\n`);

    const maxTokens = Number(values['max-tokens']);
    const { messages, promptTokens, passageTokens, passages } = buildMessages(model, values.question, hits, maxTokens);
    process.stderr.write(`prompt: ${promptTokens} tokens, ${passages} passage(s) of at most ${passageTokens} tokens\n`);
    if (values['show-prompt']) process.stderr.write(`${messages.map((m) => `--- ${m.role}\n${m.content}`).join('\n')}\n---\n`);

    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    const result = await answer(model, messages, {
      maxTokens,
      temperature: Number(values.temperature),
      signal: abort.signal,
      onText: (t) => process.stdout.write(t),
    });
    process.stdout.write('\n');
    process.stderr.write(`[${result.finishReason}, ${result.timings.generatedTokens} tokens at ${result.timings.tokensPerSecond.toFixed(1)} tok/s]\n`);
    return 0;
  } finally {
    await model.dispose();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`rag: ${err && err.code ? `[${err.code}] ` : ''}${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
