/**
 * The float64 reference forward pass (llama2c-forward.ts) over the weights of a GGUF file,
 * dequantized with the reference dequantizers of quant.ts. The header is located with the
 * library's GGUF reader (tested on its own in test/formats); every weight value comes from
 * independent code.
 */
import { readFileSync } from 'node:fs';

import { readGguf } from '../../lib/formats/gguf.js';
import type { TensorInfo } from '../../lib/formats/tensor-info.js';
import { type Llama2cConfig, type Llama2cWeights, type Reference, createLlama2cReference } from './llama2c-forward.js';
import { dequantBf16, dequantF16, dequantF32, dequantQ4_0, dequantQ8_0 } from './quant.js';

function dequant(bytes: Uint8Array, t: TensorInfo): Float64Array {
  const b = bytes.subarray(t.offset, t.offset + t.nbytes);
  switch (t.type) {
    case 'f32': return dequantF32(b);
    case 'f16': return dequantF16(b);
    case 'bf16': return dequantBf16(b);
    case 'q8_0': return dequantQ8_0(b);
    case 'q4_0': return dequantQ4_0(b);
    default: throw new Error(`reference: no dequantizer for ${t.type}`);
  }
}

/** A reference over a Llama GGUF (eps 1e-5 and RoPE base 10000, as the reference fixes them). */
export async function ggufReference(file: string, seqLen: number): Promise<Reference> {
  const g = await readGguf(file);
  const bytes = readFileSync(file);
  const get = (name: string): Float64Array => {
    const t = g.tensors.find((x) => x.name === name);
    if (t === undefined) throw new Error(`reference: ${file} has no tensor ${name}`);
    return dequant(bytes, t);
  };
  const num = (key: string): number => g.metadata.get(key)!.value as number;
  const dim = num('llama.embedding_length');
  const nHeads = num('llama.attention.head_count');
  const nKvHeads = (g.metadata.get('llama.attention.head_count_kv')?.value as number | undefined) ?? nHeads;
  const nLayers = num('llama.block_count');
  const emb = g.tensors.find((t) => t.name === 'token_embd.weight')!;
  const config: Llama2cConfig = {
    dim, hiddenDim: num('llama.feed_forward_length'), nLayers, nHeads, nKvHeads, vocabSize: emb.shape[0]!, seqLen,
    headDim: dim / nHeads, kvDim: (dim / nHeads) * nKvHeads, sharedClassifier: !g.tensors.some((t) => t.name === 'output.weight'),
  };
  const layers = (suffix: string): Float64Array[] => Array.from({ length: nLayers }, (_, l) => get(`blk.${l}.${suffix}`));
  const tokenEmbedding = get('token_embd.weight');
  const weights: Llama2cWeights = {
    tokenEmbedding,
    rmsAtt: layers('attn_norm.weight'),
    wq: layers('attn_q.weight'),
    wk: layers('attn_k.weight'),
    wv: layers('attn_v.weight'),
    wo: layers('attn_output.weight'),
    rmsFfn: layers('ffn_norm.weight'),
    w1: layers('ffn_gate.weight'),
    w2: layers('ffn_down.weight'),
    w3: layers('ffn_up.weight'),
    rmsFinal: get('output_norm.weight'),
    wcls: config.sharedClassifier ? tokenEmbedding : get('output.weight'),
  };
  return createLlama2cReference(config, weights);
}
