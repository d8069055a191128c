/**
 * Self-test of the float64 llama2.c reference on the real stories260K checkpoint: it must
 * reproduce llama2.c's published greedy story, be deterministic, and agree with the same
 * forward pass assembled from ops.ts (which also checks those ops' conventions and the
 * multi-row "prefill" form of attention).
 */
import { readFileSync } from 'node:fs';

import { expect, it } from 'vitest';

import { assertClose } from '../helpers/assert-close.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { type Reference, argmax, greedyGenerate, loadLlama2cReference } from './llama2c-forward.js';
import { add, attention, embed, matmul, rmsnorm, rope, swiglu } from './ops.js';
import { STORIES260K_GREEDY_STEPS, STORIES260K_GREEDY_TEXT } from './stories260k-expected.js';

const MODEL = 'models/stories260K/stories260K.bin';
const TOKENIZER = 'models/stories260K/tok512.bin';
const BOS = 1;

/** A minimal llama2.c tokenizer decoder (run.c `decode`), kept here so the test needs no lib/ code. */
function readPieces(path: string, vocabSize: number): Uint8Array[] {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: Uint8Array[] = [];
  let offset = 4; // int32 max_token_length
  for (let id = 0; id < vocabSize; id++) {
    const len = view.getInt32(offset + 4, true); // after the float32 score
    pieces.push(bytes.subarray(offset + 8, offset + 8 + len));
    offset += 8 + len;
  }
  expect(offset).toBe(bytes.byteLength);
  return pieces;
}

function decode(pieces: Uint8Array[], ids: readonly number[]): string {
  const out: number[] = [];
  let prev = BOS;
  for (const id of ids) {
    if (id === BOS) break; // run.c stops at BOS
    let piece = Array.from(pieces[id]!);
    const text = String.fromCharCode(...piece);
    const byteMatch = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
    if (byteMatch) piece = [parseInt(byteMatch[1]!, 16)];
    else if (prev === BOS && piece[0] === 0x20) piece = piece.slice(1); // no leading space after BOS
    out.push(...piece);
    prev = id;
  }
  return new TextDecoder().decode(new Uint8Array(out));
}

/** The whole sequence in one multi-row pass built from ops.ts; logits [n][vocab]. */
function forwardWithOps(ref: Reference, tokens: readonly number[]): Float64Array {
  const c = ref.config;
  const w = ref.weights;
  const positions = tokens.map((_, i) => i);
  let x = embed(w.tokenEmbedding, tokens, c.dim);
  for (let l = 0; l < c.nLayers; l++) {
    const xn = rmsnorm(x, w.rmsAtt[l]!, 1e-5);
    const q = rope(matmul(xn, w.wq[l]!, c.dim, c.dim), positions, c.headDim, c.headDim, 10000, 'interleaved');
    const k = rope(matmul(xn, w.wk[l]!, c.kvDim, c.dim), positions, c.headDim, c.headDim, 10000, 'interleaved');
    const v = matmul(xn, w.wv[l]!, c.kvDim, c.dim);
    const att = attention(q, k, v, 0, c.nHeads, c.nKvHeads, c.headDim);
    x = add(x, matmul(att, w.wo[l]!, c.dim, c.dim));
    const hn = rmsnorm(x, w.rmsFfn[l]!, 1e-5);
    const h = swiglu(matmul(hn, w.w1[l]!, c.hiddenDim, c.dim), matmul(hn, w.w3[l]!, c.hiddenDim, c.dim));
    x = add(x, matmul(h, w.w2[l]!, c.dim, c.hiddenDim));
  }
  return matmul(rmsnorm(x, w.rmsFinal, 1e-5), w.wcls, c.vocabSize, c.dim);
}

describeWithShared([MODEL, TOKENIZER], 'llama2.c float64 reference (stories260K)', () => {
  const ref = loadLlama2cReference(sharedPath(MODEL));
  const greedy = greedyGenerate(ref, [BOS], STORIES260K_GREEDY_STEPS);

  it('reads the header', () => {
    expect(ref.config).toEqual({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      headDim: 8,
      kvDim: 32,
      sharedClassifier: true,
    });
  });

  it("reproduces llama2.c's published greedy story from BOS", () => {
    expect(greedy).toHaveLength(STORIES260K_GREEDY_STEPS);
    expect(greedy.every((id) => Number.isInteger(id) && id >= 0 && id < 512)).toBe(true);
    const text = decode(readPieces(sharedPath(TOKENIZER), 512), greedy);
    expect(text).toBe(STORIES260K_GREEDY_TEXT);
  });

  it('is deterministic: a second instance and a reset instance give bit-identical logits', () => {
    const tokens = [BOS, ...greedy.slice(0, 63)];
    const other = loadLlama2cReference(sharedPath(MODEL));
    ref.reset();
    for (let pos = 0; pos < tokens.length; pos++) {
      const a = ref.forward(tokens[pos]!, pos);
      const b = other.forward(tokens[pos]!, pos);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(argmax(a)).toBe(greedy[pos]); // re-feeding gives back the generated token
    }
    other.reset();
    const again = other.forward(BOS, 0);
    ref.reset();
    expect(Array.from(again)).toEqual(Array.from(ref.forward(BOS, 0)));
  });

  it('equals the same forward pass built from ops.ts, run over all positions at once', () => {
    const tokens = [BOS, ...greedy.slice(0, 40)];
    const batched = forwardWithOps(ref, tokens);
    ref.reset();
    const vocab = ref.config.vocabSize;
    for (let pos = 0; pos < tokens.length; pos++) {
      const single = ref.forward(tokens[pos]!, pos);
      assertClose(batched.subarray(pos * vocab, (pos + 1) * vocab), single, { atol: 1e-9, rtol: 1e-9 }, `ops.ts forward vs reference at pos ${pos}`);
    }
  });
});
