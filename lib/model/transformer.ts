/**
 * The Llama 2 forward pass, declared as a graph of coarse native ops (native/core/graph.h).
 * Native code validates it once, plans every buffer once, and runs it per step. Buffers are
 * reused across layers as in llama2.c's run.c; widths in comments are per token row.
 *
 *   x = embed(tokens)                                  x  [dim]
 *   per layer l:
 *     xb = rmsnorm(x) * attn_norm                      xb [dim]
 *     q, k, v = xb Wq, xb Wk, xb Wv                    q [n_heads*head_dim], k, v [kv_dim]
 *     rope(q), rope(k)                                 positions pos .. pos+n-1
 *     cache_l[pos..] = k, v
 *     att = causal GQA attention(q, cache_l)           att [n_heads*head_dim]
 *     x = x + att Wo
 *     xb = rmsnorm(x) * ffn_norm
 *     hb = silu(xb Wgate) * (xb Wup)                   hb [hidden]
 *     x = x + hb Wdown
 *   xl = last row of x (or every row)                  the rows whose logits are wanted
 *   logits = (rmsnorm(xl) * output_norm) Wout          logits [vocab]
 */
import type { BufferSpec, GraphSpec, KvCacheSpec, NodeSpec } from '../addon-types.js';
import { type LlamaConfig, kvDim } from './config.js';
import { ropeNodeFields } from './rope-scaling.js';
import type { WeightPlan } from './weights.js';

/** Names of the graph's external buffers. */
export const LOGITS_BUFFER = 'logits';
/** The final hidden state after the output RMSNorm (the classifier's input): embeddings read it. */
export const HIDDEN_BUFFER = 'x_final';

export interface GraphOptions {
  /**
   * KV cache positions of the sessions this graph will run (default: the model's context
   * length). RoPE scaling that depends on it (dynamic NTK) is computed from it.
   */
  readonly contextLength?: number;
}

export function buildLlamaGraph(config: LlamaConfig, weights: WeightPlan, options: GraphOptions = {}): GraphSpec {
  const { dim, hiddenDim, vocabSize, nHeads, nKvHeads, headDim } = config;
  const qDim = nHeads * headDim;
  const buffers: BufferSpec[] = [
    { name: 'x', width: dim },
    { name: 'xb', width: dim },
    { name: 'xb2', width: dim },
    { name: 'q', width: qDim },
    { name: 'k', width: kvDim(config) },
    { name: 'v', width: kvDim(config) },
    { name: 'att', width: qDim },
    { name: 'hb', width: hiddenDim },
    { name: 'hb2', width: hiddenDim },
    { name: 'x_last', width: dim },
    { name: HIDDEN_BUFFER, width: dim },
    { name: LOGITS_BUFFER, width: vocabSize },
  ];
  const kvCaches: KvCacheSpec[] = [];
  // frequencies (and YaRN's mscale) of the config's RoPE scaling for this context length
  const rope = { nHeads, headDim, ropeDim: config.ropeDim, pairing: config.ropePairing, ...ropeNodeFields(config, options.contextLength) };
  const eps = config.normEps;

  const nodes: NodeSpec[] = [{ op: 'embed', out: 'x', weight: weights.embedding }];
  weights.layers.forEach((w, l) => {
    const kv = `kv.${l}`;
    kvCaches.push({ name: kv, kvDim: kvDim(config) });
    nodes.push(
      { op: 'rmsnorm', out: 'xb', a: 'x', weight: w.attnNorm, eps },
      { op: 'matmul', out: 'q', a: 'xb', weight: w.q },
      { op: 'matmul', out: 'k', a: 'xb', weight: w.k },
      { op: 'matmul', out: 'v', a: 'xb', weight: w.v },
      { op: 'rope', a: 'q', ...rope },
      { op: 'rope', a: 'k', ...rope, nHeads: nKvHeads },
      { op: 'kv_append', a: 'k', b: 'v', kv },
      { op: 'attention', out: 'att', a: 'q', kv, nHeads, nKvHeads, headDim },
      { op: 'matmul', out: 'xb2', a: 'att', weight: w.o },
      { op: 'add', out: 'x', a: 'x', b: 'xb2' },
      { op: 'rmsnorm', out: 'xb', a: 'x', weight: w.ffnNorm, eps },
      { op: 'matmul', out: 'hb', a: 'xb', weight: w.gate },
      { op: 'matmul', out: 'hb2', a: 'xb', weight: w.up },
      { op: 'swiglu', out: 'hb', a: 'hb', b: 'hb2' },
      { op: 'matmul', out: 'xb2', a: 'hb', weight: w.down },
      { op: 'add', out: 'x', a: 'x', b: 'xb2' },
    );
  });
  nodes.push(
    { op: 'last_row', out: 'x_last', a: 'x' },
    { op: 'rmsnorm', out: HIDDEN_BUFFER, a: 'x_last', weight: weights.outputNorm, eps },
    { op: 'matmul', out: LOGITS_BUFFER, a: HIDDEN_BUFFER, weight: weights.output },
  );
  return { weights: weights.specs, buffers, kvCaches, nodes };
}
