/**
 * llama2.c checkpoints, version 0 ("legacy" export of karpathy/llama2.c): a header of 7 int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) and then f32 arrays:
 *
 *   token_embedding[vocab][dim]  rms_att[L][dim]  wq[L][dim][dim]  wk[L][kv_dim][dim]
 *   wv[L][kv_dim][dim]  wo[L][dim][dim]  rms_ffn[L][dim]  w1[L][hidden][dim]
 *   w2[L][dim][hidden]  w3[L][hidden][dim]  rms_final[dim]
 *   freq_cis_real[seq_len][head_dim/2]  freq_cis_imag[seq_len][head_dim/2]   (unused)
 *   wcls[vocab][dim]   only when vocab_size < 0 (an unshared classifier)
 *
 * Matrices are [out][in], row-major, as in GGUF. Tensors are reported under GGUF names so
 * the rest of the library maps one set of names. RoPE pairs are interleaved (run.c).
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { type LlamaConfig, validateConfig } from '../model/config.js';
import { readHead, withFile } from './file-io.js';
import type { TensorInfo } from './tensor-info.js';

export interface Llama2cFile {
  readonly path: string;
  readonly config: LlamaConfig;
  readonly sharedClassifier: boolean;
  readonly tensors: readonly TensorInfo[];
}

const HEADER_BYTES = 28;
const VERSIONED_MAGIC = 0x616b3432; // "ak42": llama2.c's version 1+ export

function fail(file: string, msg: string): never {
  throw new LlamaCudaError('ERR_MODEL_FORMAT', `${path.basename(file)}: not a valid llama2.c checkpoint: ${msg}`);
}

/** Parses a version-0 header (28 bytes) and lays out its tensors for a file of fileSize bytes. */
export function parseLlama2cHeader(header: Uint8Array, fileSize: number, file: string): Llama2cFile {
  if (header.length < HEADER_BYTES || fileSize < HEADER_BYTES) fail(file, `the file has ${fileSize} bytes, fewer than a header`);
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  if (view.getUint32(0, true) === VERSIONED_MAGIC) {
    const version = view.getInt32(4, true);
    throw new LlamaCudaError(
      'ERR_UNSUPPORTED',
      `${path.basename(file)}: llama2.c export version ${version} is not supported; export with version 0 (legacy) or use GGUF`,
    );
  }
  const h = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = h as [number, number, number, number, number, number, number];
  const sharedClassifier = rawVocab > 0;
  const vocabSize = Math.abs(rawVocab);
  if (dim <= 0 || nHeads <= 0 || dim % nHeads !== 0) fail(file, `dim ${dim} is not a positive multiple of n_heads ${nHeads}`);
  const headDim = dim / nHeads;
  const config = validateConfig(
    {
      dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize,
      contextLength: seqLen, ropeTheta: 10000, ropeDim: headDim, ropeFreqScale: 1,
      ropePairing: 'interleaved', normEps: 1e-5,
    },
    path.basename(file),
  );

  const kvDim = nKvHeads * headDim;
  const abs = path.resolve(file);
  const tensors: TensorInfo[] = [];
  let offset = HEADER_BYTES;
  // one array of `count` matrices [rows][cols], named per layer (or once when perLayer is false)
  const add = (names: (l: number) => string, count: number, shape: number[]): void => {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    for (let l = 0; l < count; l++) {
      tensors.push({ name: names(l), type: 'f32', shape, file: abs, offset, nbytes: bytes });
      offset += bytes;
    }
  };
  add(() => 'token_embd.weight', 1, [vocabSize, dim]);
  add((l) => `blk.${l}.attn_norm.weight`, nLayers, [dim]);
  add((l) => `blk.${l}.attn_q.weight`, nLayers, [dim, dim]);
  add((l) => `blk.${l}.attn_k.weight`, nLayers, [kvDim, dim]);
  add((l) => `blk.${l}.attn_v.weight`, nLayers, [kvDim, dim]);
  add((l) => `blk.${l}.attn_output.weight`, nLayers, [dim, dim]);
  add((l) => `blk.${l}.ffn_norm.weight`, nLayers, [dim]);
  add((l) => `blk.${l}.ffn_gate.weight`, nLayers, [hiddenDim, dim]);
  add((l) => `blk.${l}.ffn_down.weight`, nLayers, [dim, hiddenDim]);
  add((l) => `blk.${l}.ffn_up.weight`, nLayers, [hiddenDim, dim]);
  add(() => 'output_norm.weight', 1, [dim]);
  offset += 2 * seqLen * (headDim / 2) * 4; // freq_cis_real, freq_cis_imag
  if (!sharedClassifier) add(() => 'output.weight', 1, [vocabSize, dim]);
  if (offset !== fileSize) {
    fail(
      file,
      `the header (dim ${dim}, hidden ${hiddenDim}, layers ${nLayers}, heads ${nHeads}/${nKvHeads}, vocab ${rawVocab}, ` +
        `seq_len ${seqLen}) implies ${offset} bytes but the file has ${fileSize}` + (offset > fileSize ? ': truncated?' : ''),
    );
  }
  return { path: abs, config, sharedClassifier, tensors };
}

export async function readLlama2c(file: string): Promise<Llama2cFile> {
  return withFile(file, async (handle, size) => parseLlama2cHeader(await readHead(handle, HEADER_BYTES), size, file));
}
