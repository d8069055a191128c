/**
 * Perplexity of stories260K stored as f32, as QLoRA's NF4 (`quantize: 'nf4'`: blocks of 64 with
 * an absmax scale) and as int4 group-affine (`quantize: 'int4'`, groups of 32 and of 64), on two
 * texts: a short children's story written for this comparison (TinyStories' register, not a
 * text the model produced) and the model's own greedy story (STORIES260K_GREEDY_TEXT). Uses
 * model.perplexity (lib/perplexity.ts: llama.cpp's windows, second half of each window scored).
 *
 *   npm run bench:build && node .bench/build/bench/e2e/nf4-perplexity.js [--ctx 64] [--shared DIR]
 *
 * Quantization applies to matrices whose rows fill the blocks: in stories260K every matrix but
 * ffn_down (rows of 172) and the tied embedding / classifier too, the same set for all three.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../../lib/index.js';
import type { LoadModelOptions } from '../../lib/load-model.js';

const STORY =
  'Once upon a time, there was a small cat named Tom. Tom liked to play in the garden with his red ball. ' +
  'One day, the ball rolled under a big tree. Tom looked and looked, but he could not find it. ' +
  'He was sad. A little bird saw Tom and said, "Why are you sad, Tom?" Tom said, "I lost my ball." ' +
  'The bird flew down and looked under the tree. "Here it is!" said the bird. Tom was very happy. ' +
  'He said, "Thank you, bird! You are my friend." From that day on, Tom and the bird played together every day. ' +
  'One morning, Tom and his mom went to the park. The sun was warm and the sky was blue. ' +
  'Tom saw a boy with a kite. The kite was big and yellow. Tom wanted to fly the kite too. ' +
  'The boy said, "You can try, but be careful." Tom held the string and ran fast. The kite went up high. ' +
  'Tom laughed and said, "Look, mom! I can fly it!" His mom smiled and clapped her hands. ' +
  'When it was time to go home, Tom gave the kite back to the boy and said, "Thank you for sharing." ' +
  'The boy smiled. They were happy, and they played again the next day.';

const { values } = parseArgs({
  options: { ctx: { type: 'string', default: '64' }, shared: { type: 'string', default: process.env['LLAMA_CUDA_SHARED'] ?? '../shared' } },
});
const ctx = Number(values.ctx);
const bin = path.resolve(values.shared!, 'models/stories260K/stories260K.bin');
const tok = path.resolve(values.shared!, 'models/stories260K/tok512.bin');
const { STORIES260K_GREEDY_TEXT } = await import('../../test/reference/stories260k-expected.js').catch(() => ({ STORIES260K_GREEDY_TEXT: '' }));

const variants: { name: string; options: LoadModelOptions }[] = [
  { name: 'f32', options: {} },
  { name: 'nf4 (blocks of 64, f32 absmax)', options: { quantize: 'nf4' } },
  { name: 'int4 g32 (min/max affine)', options: { quantize: 'int4', quantizeGroup: 32 } },
  { name: 'int4 g64 (min/max affine)', options: { quantize: 'int4', quantizeGroup: 64 } },
];
const texts = [
  { name: 'written story', text: STORY },
  ...(STORIES260K_GREEDY_TEXT ? [{ name: 'greedy story', text: STORIES260K_GREEDY_TEXT }] : []),
];

console.log(`stories260K perplexity, ctx ${ctx}, device cpu, f32 KV cache`);
const rows: string[][] = [['weights', 'bytes', ...texts.flatMap((t) => [`${t.name} ppl`, 'vs f32'])]];
const base: number[] = [];
for (const v of variants) {
  const model = await loadModel(bin, { device: 'cpu', tokenizer: tok, kvCacheType: 'f32', ...v.options });
  try {
    const row = [v.name, String(model.info.weightBytes)];
    for (const [i, t] of texts.entries()) {
      const r = await model.perplexity(t.text, { ctx });
      if (v.name === 'f32') base[i] = r.perplexity;
      row.push(`${r.perplexity.toFixed(4)} (${r.tokens} tok)`, `${(100 * (r.perplexity / base[i]! - 1)).toFixed(2)}%`);
    }
    rows.push(row);
  } finally {
    await model.dispose();
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
