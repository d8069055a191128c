/**
 * llama-cuda tokenize --model F [--tokenizer F] [--jsonl] [TEXT]
 *
 * Prints the token ids of TEXT (BOS first), space-separated on one line. Without TEXT it reads
 * the text from stdin. With --jsonl it reads lines {"text": ...} from stdin and writes one line
 * {"ids": [...]} for each.
 */
import { createInterface } from 'node:readline';

import { LlamaCudaError } from '../errors.js';
import { loadTokenizer } from '../load-model.js';
import { type OptionSpecs, UsageError, helpText, optBool, optString, parseArgs } from './args.js';

export const tokenizeOptions: OptionSpecs = {
  model: { type: 'string', value: 'F', description: 'model file (its tokenizer is used; weights are not loaded)' },
  tokenizer: { type: 'string', value: 'F', description: 'tokenizer file (tokenizer.json, tokenizer.model, GGUF or llama2.c tokenizer.bin); needed for .bin models' },
  jsonl: { type: 'boolean', description: 'read {"text": ...} lines from stdin, write {"ids": [...]} lines' },
  'no-bos': { type: 'boolean', description: 'do not prepend BOS' },
  'parse-special': { type: 'boolean', description: 'recognize <s> and </s> in the text as control tokens' },
  help: { type: 'boolean', description: 'show this help' },
};

export const tokenizeUsage = 'usage: llama-cuda tokenize --model F [--tokenizer F] [--jsonl] [TEXT]';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runTokenize(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, tokenizeOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(tokenizeUsage, tokenizeOptions));
    return 0;
  }
  const modelPath = optString(p, 'model');
  if (modelPath === undefined) throw new UsageError('--model is required');
  const tokenizerPath = optString(p, 'tokenizer');
  const tokenizer = await loadTokenizer(modelPath, tokenizerPath !== undefined ? { tokenizer: tokenizerPath } : {});
  const encodeOptions = { addBos: !optBool(p, 'no-bos'), parseSpecial: optBool(p, 'parse-special') };

  if (optBool(p, 'jsonl')) {
    if (p.positionals.length > 0) throw new UsageError('--jsonl reads stdin: give no TEXT');
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let text: unknown;
      try {
        text = (JSON.parse(line) as { text?: unknown }).text;
      } catch (err) {
        throw new LlamaCudaError('ERR_INVALID_ARG', `stdin line ${lineNo}: not JSON (${(err as Error).message})`);
      }
      if (typeof text !== 'string') throw new LlamaCudaError('ERR_INVALID_ARG', `stdin line ${lineNo}: "text" must be a string`);
      process.stdout.write(`${JSON.stringify({ ids: tokenizer.encode(text, encodeOptions) })}\n`);
    }
    return 0;
  }
  const text = p.positionals.length > 0 ? p.positionals.join(' ') : await readStdin();
  process.stdout.write(`${tokenizer.encode(text, encodeOptions).join(' ')}\n`);
  return 0;
}
