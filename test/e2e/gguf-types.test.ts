/**
 * Real GGUF files of every tensor type the engine loads: stories260K re-encoded by the test
 * into F16, BF16, Q8_0 and Q4_0 files (tensors whose rows do not fit 32-blocks stay F32, as
 * llama.cpp's quantizer leaves them), and the F16 llama-2-tiny-random model. Each file's logits
 * must match the float64 reference over the same file's dequantized weights.
 */
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readGguf } from '../../lib/formats/gguf.js';
import { type GgufTensorToWrite, writeGguf } from '../../lib/formats/gguf-writer.js';
import type { SourceType } from '../../lib/formats/tensor-info.js';
import { type LlamaModel, loadModel } from '../../lib/index.js';
import { type Tolerance, assertClose } from '../helpers/assert-close.js';
import { availableTiers } from '../helpers/graphs.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { ggufReference } from '../reference/gguf-reference.js';
import type { Reference } from '../reference/llama2c-forward.js';
import { argmax } from '../reference/llama2c-forward.js';
import { dequantF32, encodeF16, numberToBf16, quantizeQ4_0, quantizeQ8_0 } from '../reference/ops.js';

const tmp = useTmpDir();
const STORIES = 'models/stories260K/stories260K.gguf';
const TINY = 'models/llama-2-tiny-random/llama-2-tiny-random.gguf';
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

function encode(type: SourceType, values: Float64Array): Uint8Array {
  switch (type) {
    case 'f16': return encodeF16(values);
    case 'bf16': return new Uint8Array(Uint16Array.from(values, numberToBf16).buffer);
    case 'q8_0': return quantizeQ8_0(values);
    case 'q4_0': return quantizeQ4_0(values);
    default: return new Uint8Array(Float32Array.from(values).buffer);
  }
}

/** stories260K.gguf with every 2-D tensor re-encoded as `type` where its rows allow it. */
async function reencode(type: SourceType): Promise<string> {
  const src = sharedPath(STORIES);
  const g = await readGguf(src);
  const bytes = readFileSync(src);
  const blockElems = type === 'q8_0' || type === 'q4_0' ? 32 : 1;
  const tensors: GgufTensorToWrite[] = g.tensors.map((t) => {
    const f32 = dequantF32(bytes.subarray(t.offset, t.offset + t.nbytes));
    const to: SourceType = t.shape.length === 2 && t.shape[1]! % blockElems === 0 ? type : 'f32';
    return { name: t.name, type: to, shape: t.shape, data: encode(to, f32) };
  });
  const out = tmp(`stories260K.${type}.gguf`);
  await writeGguf(out, g.metadata, tensors);
  return out;
}

/** Logits of the model at every position of TOKENS, fed in two chunks. */
async function engineLogits(model: LlamaModel): Promise<Float32Array> {
  const seq = model.createSequence({ allLogits: true });
  const a = (await seq.evaluate(TOKENS.slice(0, 13), { allLogits: true }))!;
  const b = (await seq.evaluate(TOKENS.slice(13), { allLogits: true }))!;
  await seq.dispose();
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Tolerances against the float64 reference over the same dequantized weights. The reference
 * tier dequantizes exactly and accumulates in double: only f32 activations and the f32 KV cache
 * separate it from float64. The fast tiers quantize activations to int8 blocks for q8_0/q4_0
 * weights; through 5 layers of width 64 that compounds (seen here: NMSE up to 9e-4 per position,
 * worst logit off by 0.17 in a range of about 20), as it does in llama.cpp's CPU dot products.
 */
function tolerance(type: SourceType, tier: string): Tolerance {
  const quantizesActivations = (type === 'q8_0' || type === 'q4_0') && (tier === 'avx2' || tier === 'avx512');
  return quantizesActivations ? { atol: 0.3, rtol: 0.05, nmse: 3e-3 } : { atol: 1e-4, rtol: 1e-4, nmse: 1e-11 };
}

describeWithShared([STORIES], 'stories260K re-encoded into every loadable GGUF type', () => {
  for (const type of ['f16', 'bf16', 'q8_0', 'q4_0'] as const) {
    describe(type, () => {
      let file: string;
      let reference: Reference;
      const refLogits: Float64Array[] = [];
      beforeAll(async () => {
        file = await reencode(type);
        reference = await ggufReference(file, 64);
        TOKENS.forEach((t, pos) => refLogits.push(reference.forward(t, pos)));
      });

      for (const tier of availableTiers()) {
        it(`${tier} kernels: logits match the reference over the dequantized file`, async () => {
          const model = await loadModel(file, { device: 'cpu', cpuKernels: tier, kvCacheType: 'f32', contextLength: 64 });
          try {
            expect(model.info.tensorTypes[type]).toBeGreaterThan(0);
            const logits = await engineLogits(model);
            const vocab = model.config.vocabSize;
            refLogits.forEach((ref, pos) => {
              assertClose(logits.subarray(pos * vocab, (pos + 1) * vocab), ref, tolerance(type, tier), `${type} ${tier} position ${pos}`);
            });
            if (tier === 'reference') {
              refLogits.forEach((ref, pos) => expect(argmax(logits.subarray(pos * vocab, (pos + 1) * vocab)), `argmax at ${pos}`).toBe(argmax(ref)));
            }
          } finally {
            await model.dispose();
          }
        });
      }
    });
  }
});

describeWithShared([TINY], 'llama-2-tiny-random.gguf (F16, 32000-token vocab)', () => {
  let model: LlamaModel;
  let reference: Reference;
  beforeAll(async () => {
    model = await loadModel(sharedPath(TINY), { device: 'cpu', kvCacheType: 'f32', contextLength: 64 });
    reference = await ggufReference(sharedPath(TINY), 64);
  });
  afterAll(() => model.dispose());

  it('has its README config and loads the F16 weights as F16', () => {
    expect(model.config).toMatchObject({ dim: 8, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, ropeDim: 4, vocabSize: 32000, contextLength: 4096 });
    expect(model.info.tensorTypes).toMatchObject({ f16: 9, f32: 3 });
  });

  it('logits at every position match the float64 reference', async () => {
    const ids = model.tokenize('Hello world, this is a test of the tiny random model.');
    const seq = model.createSequence({ allLogits: true });
    const logits = (await seq.evaluate(ids, { allLogits: true }))!;
    await seq.dispose();
    ids.forEach((t, pos) => {
      const ref = reference.forward(t, pos);
      assertClose(logits.subarray(pos * 32000, (pos + 1) * 32000), ref, { atol: 1e-3, rtol: 1e-3, nmse: 1e-8 }, `tiny-random position ${pos}`);
    });
  });
});
