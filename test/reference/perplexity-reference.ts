/**
 * Perplexity computed independently of lib/: the float64 forward pass, a float64 log-softmax,
 * and llama.cpp's windows (BOS at each window's start, second half scored).
 */
import type { Reference } from './llama2c-forward.js';

/** Perplexity of `tokens` computed independently: float64 forward pass, float64 log-softmax. */
export function referencePerplexity(ref: Reference, tokens: readonly number[], ctx: number): { nll: number; tokens: number; windows: number[] } {
  const windows = Math.floor(tokens.length / ctx);
  const first = Math.floor(ctx / 2);
  let sum = 0;
  let count = 0;
  const perWindow: number[] = [];
  for (let w = 0; w < windows; w++) {
    const win = tokens.slice(w * ctx, (w + 1) * ctx);
    win[0] = 1; // BOS
    ref.reset();
    let wsum = 0;
    for (let pos = 0; pos < ctx - 1; pos++) {
      const logits = ref.forward(win[pos]!, pos);
      if (pos < first) continue;
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let z = 0;
      for (const v of logits) z += Math.exp(v - max);
      wsum += Math.log(z) + max - logits[win[pos + 1]!]!;
      count++;
    }
    sum += wsum;
    perWindow.push(Math.exp(wsum / (ctx - 1 - first)));
  }
  return { nll: sum / count, tokens: count, windows: perWindow };
}

