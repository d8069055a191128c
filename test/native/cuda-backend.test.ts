/**
 * The CUDA backend (native/cuda/backend_cuda.cu) end to end, on the SIMT emulator build
 * (`npm run build:simt`: the same backend and kernels compiled for the CPU): stories260K greedy
 * tokens and logits against the CPU backend, prompts in chunks against one token at a time,
 * decode steps replayed from a captured CUDA graph against eager ones, out-of-memory and kernel
 * faults as errors with codes (in subprocesses, whose emulated device is their own), device
 * memory returned by dispose, and use after dispose.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Addon, GraphSpec, KvCacheType, NativeEngine, NativeSession } from '../../lib/addon-types.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import { type LlamaModel, loadModel } from '../../lib/index.js';
import { loadModelWith } from '../../lib/load-model.js';
import { cudaActivationBytes } from '../../lib/model/memory.js';
import { buildLlamaGraph, LOGITS_BUFFER } from '../../lib/model/transformer.js';
import { planWeights } from '../../lib/model/weights.js';
import type { AddonChoice } from '../../lib/native.js';
import { assertClose } from '../helpers/assert-close.js';
import { expectErrorCode } from '../helpers/errors.js';
import { buildEngine, simtChoice, simtMissing } from '../helpers/graphs.js';
import { repoRoot, sharedPath } from '../helpers/shared-data.js';
import { describeWithShared } from '../helpers/shared-data.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const PROMPT = [1, 403, 407, 261, 378]; // BOS "Once upon a time"
/**
 * Greedy steps compared with the CPU. The emulator runs a stories260K decode step in about 50 ms
 * (2 cores; the matrix-vector kernels' blocks dominate), so 80 steps take about 4 s.
 */
const STEPS = 80;
/**
 * Logits of the SIMT CUDA backend against the CPU reference tier (f32 weights and KV cache on
 * both): f32 accumulation in different orders through 5 layers; logits are O(10).
 */
const LOGITS_TOLERANCE = { atol: 1e-3, rtol: 1e-3, nmse: 1e-9 };

function isCi(): boolean {
  return process.env['CI'] === 'true' || process.env['CI'] === '1';
}

/** A describe that needs the SIMT build: skipped with the reason without it (failing under CI=true). */
function describeSimt(name: string, fn: (simt: AddonChoice) => void): void {
  const choice = simtChoice();
  if (choice !== undefined) {
    describe(name, () => fn(choice));
  } else if (isCi()) {
    describe(name, () => it('has the SIMT build', () => expect.fail(simtMissing())));
  } else {
    console.warn(`skipping "${name}": ${simtMissing()}`);
    describe(name, () => it.skip(`skipped: ${simtMissing()}`, () => {}));
  }
}

/** stories260K as a bare engine on an addon (for session stats, several sessions, raw steps). */
async function storiesEngine(addon: Addon, device: 'cpu' | 'cuda', contextLength = 512): Promise<{ engine: NativeEngine; spec: GraphSpec; vocab: number }> {
  const file = await openModelFile(sharedPath(BIN));
  const plan = planWeights(file.config, file.tensors, path.basename(file.path));
  const spec = buildLlamaGraph(file.config, plan, { contextLength });
  const engine = new addon.Engine(spec, device === 'cpu' ? { device, cpuKernels: 'reference', threads: 2 } : { device });
  await engine.load(plan.sources);
  return { engine, spec, vocab: file.config.vocabSize };
}

/** One step of `tokens` at `pos`, returning the last position's logits. */
async function step(session: NativeSession, tokens: readonly number[], pos: number, vocab: number): Promise<Float32Array> {
  const logits = new Float32Array(vocab);
  await session.run({ pos, tokens: Int32Array.from(tokens), outputs: [{ buffer: LOGITS_BUFFER, data: logits }] });
  return logits;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] as number) > (x[best] as number)) best = i;
  return best;
}

/** Runs a script in a fresh node process (the emulated device and its limits are per process). */
function runScript(body: string, env: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const dist = (f: string): string => JSON.stringify(path.join(repoRoot, 'dist', 'esm', f));
  const code = `
    import(${dist('native.js')}).then(async (native) => {
      const { loadModelWith } = await import(${dist('load-model.js')});
      const { loadModel } = await import(${dist('index.js')});
      const simt = native.loadSimtAddon();
      const bin = ${JSON.stringify(sharedPath(BIN))}, tokenizer = ${JSON.stringify(sharedPath(TOK))};
      const out = (x) => console.log(JSON.stringify(x));
      const codeOf = async (p) => { try { await p; return 'ok'; } catch (e) { return { code: e.code, message: e.message }; } };
      ${body}
    }).catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function lines(stdout: string): unknown[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
}

describeSimt('the SIMT build', (simt) => {
  it('is the simt variant with one device, "SIMT emulator", and a CUDA compute backend', () => {
    const info = simt.addon.backendInfo();
    expect(info.variant).toBe('simt');
    expect(info.cuda).toMatchObject({ compiled: true, computeBackend: true, architectures: ['simt'] });
    expect(info.cuda.devices.map((d) => d.name)).toEqual(['SIMT emulator']);
    expect(simt.addon.cudaProbe(0)).toBe('');
    const mem = simt.addon.cudaMemoryInfo(0);
    expect(mem.total).toBeGreaterThan(0);
    expect(mem.free).toBeLessThanOrEqual(mem.total);
  });

  it("runs the GPU benchmark's native timing on tiny sizes (bench/gpu/run.mjs; the times mean nothing here)", () => {
    const bench = simt.addon.cudaBench!;
    const before = simt.addon.cudaMemoryInfo().free;
    const copy = bench({ kind: 'copy', bytes: 1 << 16, repeats: 2 });
    expect(copy).toMatchObject({ bytes: 2 << 16, kernel: expect.stringMatching(/^copy_bandwidth_kernel/) });
    expect(copy.ms).toHaveLength(2);
    const mma = bench({ kind: 'mma', iterations: 1, blocksPerSm: 1, repeats: 1 });
    expect(mma.flops).toBe(108 * 4 * 8 * 4096); // 108 emulated SMs x 4 warps x 8 chains x one m16n8k16
    for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'int4'] as const) {
      for (const n of [1, 16]) {
        const m = bench({ kind: 'op', op: 'matmul', dtype, rows: 40, cols: 128, n, flushL2: n === 1, repeats: 1 });
        expect(m.flops).toBe(2 * n * 40 * 128);
      }
    }
    for (const n of [1, 16]) {
      expect(bench({ kind: 'op', op: 'attention', nHeads: 4, nKvHeads: 2, headDim: 64, ctx: 40, n, kvType: 'bf16', flushL2: false, repeats: 1 }).ms).toHaveLength(1);
    }
    expect(bench({ kind: 'op', op: 'rmsnorm', n: 2, cols: 96, flushL2: false, repeats: 1 }).bytes).toBe(8 * 2 * 96 + 4 * 96);
    expect(bench({ kind: 'op', op: 'swiglu', n: 2, cols: 96, flushL2: false, repeats: 1 }).bytes).toBe(12 * 2 * 96);
    expectErrorCode(() => bench({ kind: 'op', op: 'conv' as 'matmul', repeats: 1 }), 'ERR_INVALID_ARG', /unknown op "conv"/);
    expect(simt.addon.cudaMemoryInfo().free).toBe(before); // everything it allocated is freed
  });
});

describeWithShared([BIN, TOK], 'CUDA backend (SIMT emulator) on stories260K', () => {
  describeSimt('against the CPU backend', (simt) => {
    let cpu: LlamaModel;
    let cuda: LlamaModel;
    beforeAll(async () => {
      const options = { tokenizer: sharedPath(TOK), kvCacheType: 'f32', batchSize: 32 } as const;
      cpu = await loadModel(sharedPath(BIN), { ...options, device: 'cpu', cpuKernels: 'reference' });
      cuda = await loadModelWith(simt, sharedPath(BIN), options);
    });
    afterAll(async () => {
      await cpu?.dispose();
      await cuda?.dispose();
    });

    it('runs on the CUDA backend of the SIMT build', () => {
      expect(cuda.info.backend).toMatchObject({ variant: 'simt', device: 'cuda', description: expect.stringMatching(/^cuda \(SIMT emulator, sm_80/) });
    });

    it(`greedy tokens equal the CPU's for ${STEPS} steps (f32 KV cache on both)`, async () => {
      const a = await cpu.complete(PROMPT, { temperature: 0, maxTokens: STEPS });
      const b = await cuda.complete(PROMPT, { temperature: 0, maxTokens: STEPS });
      expect(b.tokens.length).toBe(STEPS);
      expect(b.tokens).toEqual(a.tokens);
    });

    it('logits are close to the CPU reference tier: a prompt in chunks of 32 (prefill kernels), then one token at a time', async () => {
      const tokens = (await cpu.complete(PROMPT, { temperature: 0, maxTokens: 60 })).tokens;
      const prompt = [...PROMPT, ...tokens.slice(0, 40)]; // 45 tokens: a chunk of 32 and one of 13
      const vocab = cpu.config.vocabSize;
      const seqCpu = cpu.createSequence({ allLogits: true });
      const seqCuda = cuda.createSequence({ allLogits: true });
      try {
        const want = (await seqCpu.evaluate(prompt, { allLogits: true }))!;
        const got = (await seqCuda.evaluate(prompt, { allLogits: true }))!;
        for (let pos = 0; pos < prompt.length; pos++) {
          assertClose(got.subarray(pos * vocab, (pos + 1) * vocab), want.subarray(pos * vocab, (pos + 1) * vocab), LOGITS_TOLERANCE, `prefill logits at position ${pos}`);
        }
        for (const t of tokens.slice(40, 60)) {
          const w = (await seqCpu.evaluate([t]))!;
          const g = (await seqCuda.evaluate([t]))!;
          assertClose(g, w, LOGITS_TOLERANCE, `decode logits at position ${seqCpu.position - 1}`);
          expect(argmax(g)).toBe(argmax(w));
        }
      } finally {
        await seqCpu.dispose();
        await seqCuda.dispose();
      }
    });

    it('a prompt in chunks (prefill kernels) gives the logits of one token at a time (decode kernels and graph replay)', async () => {
      const tokens = (await cpu.complete(PROMPT, { temperature: 0, maxTokens: 40 })).tokens;
      const prompt = [...PROMPT, ...tokens]; // 45 tokens
      const vocab = cuda.config.vocabSize;
      const chunked = cuda.createSequence({ allLogits: true });
      const single = cuda.createSequence();
      try {
        const all = (await chunked.evaluate(prompt, { allLogits: true }))!;
        for (let pos = 0; pos < prompt.length; pos++) {
          const one = (await single.evaluate([prompt[pos]!]))!;
          // different kernels (GEMM and tiled causal attention vs matrix-vector and split-KV
          // decode attention), both f32: the same bound as against the CPU
          assertClose(one, all.subarray(pos * vocab, (pos + 1) * vocab), LOGITS_TOLERANCE, `position ${pos}`);
        }
      } finally {
        await chunked.dispose();
        await single.dispose();
      }
    });

    it("a bf16 KV cache (CUDA only) generates close to the f32 cache's logits", async () => {
      const bf16 = await loadModelWith(simt, sharedPath(BIN), { tokenizer: sharedPath(TOK), kvCacheType: 'bf16', batchSize: 32 });
      try {
        const a = cuda.createSequence();
        const b = bf16.createSequence();
        const prompt = [...PROMPT, 403, 407];
        const la = (await a.evaluate(prompt))!;
        const lb = (await b.evaluate(prompt))!;
        // keys and values rounded to bf16 (2^-9 relative): logits move by ~1e-2 of their size
        assertClose(lb, la, { atol: 0.1, rtol: 0.05 }, 'bf16 vs f32 KV cache');
        expect(argmax(lb)).toBe(argmax(la));
        await a.dispose();
        await b.dispose();
      } finally {
        await bf16.dispose();
      }
    });
  });

  describeSimt('CUDA graphs', (simt) => {
    it('decode steps replayed from a captured graph equal eager steps, bit for bit, across prefills in between', async () => {
      const { engine, vocab } = await storiesEngine(simt.addon, 'cuda');
      const saved = process.env['LLAMA_CUDA_GRAPHS'];
      let graphed: NativeSession | undefined;
      let eager: NativeSession | undefined;
      try {
        graphed = engine.createSession({ maxSeqLen: 512, maxTokens: 16, kvType: 'f16' });
        process.env['LLAMA_CUDA_GRAPHS'] = '0'; // read at session creation
        eager = engine.createSession({ maxSeqLen: 512, maxTokens: 16, kvType: 'f16' });
        if (saved === undefined) delete process.env['LLAMA_CUDA_GRAPHS'];
        else process.env['LLAMA_CUDA_GRAPHS'] = saved;

        let pos = 0;
        let token = 0;
        const both = async (tokens: number[]): Promise<void> => {
          const a = await step(graphed!, tokens, pos, vocab);
          const b = await step(eager!, tokens, pos, vocab);
          expect(Array.from(a), `logits at position ${pos + tokens.length - 1}`).toEqual(Array.from(b));
          pos += tokens.length;
          token = argmax(a);
        };
        await both(PROMPT);
        for (let i = 0; i < 24; i++) await both([token]); // decode: captured at the 2nd, replayed after
        await both([token, 403, 407]); // a prefill chunk in between: eager
        for (let i = 0; i < 12; i++) await both([token]); // the same graph again, at later positions
        const stats = graphed.stats();
        expect(stats).toEqual({ steps: 38, graphCaptures: 1, graphLaunches: 35 });
        expect(eager.stats()).toEqual({ steps: 38, graphCaptures: 0, graphLaunches: 0 });
      } finally {
        if (saved === undefined) delete process.env['LLAMA_CUDA_GRAPHS'];
        else process.env['LLAMA_CUDA_GRAPHS'] = saved;
        await graphed?.dispose();
        await eager?.dispose();
        await engine.dispose();
      }
    });

    it('a decode step with different outputs runs eagerly and is captured on its own', async () => {
      const { engine, vocab } = await storiesEngine(simt.addon, 'cuda');
      const session = engine.createSession({ maxSeqLen: 64, maxTokens: 8, kvType: 'f32' });
      try {
        await step(session, PROMPT, 0, vocab);
        let pos = PROMPT.length;
        const logits = new Float32Array(vocab);
        const hidden = new Float32Array(64);
        for (let i = 0; i < 6; i++) {
          // every other step also reads the final norm's input buffer back: two signatures alternate
          const outputs = [{ buffer: LOGITS_BUFFER, data: logits }, ...(i % 2 === 1 ? [{ buffer: 'x', data: hidden }] : [])];
          const r = await session.run({ pos, tokens: Int32Array.of(403), outputs });
          expect(r.outputRows).toEqual(i % 2 === 1 ? [1, 1] : [1]);
          pos++;
        }
        // signatures alternate, so no step repeats the previous one's: nothing is captured
        expect(session.stats()).toMatchObject({ steps: 7, graphCaptures: 0 });
      } finally {
        await session.dispose();
        await engine.dispose();
      }
    });
  });

  describeSimt('memory and errors', (simt) => {
    it('dispose returns every byte of device memory', async () => {
      const before = simt.addon.cudaMemoryInfo().free;
      const model = await loadModelWith(simt, sharedPath(BIN), { tokenizer: sharedPath(TOK) });
      const seq = model.createSequence({ allLogits: true });
      await seq.evaluate(PROMPT, { allLogits: true });
      await model.complete('Once upon a time', { temperature: 0, maxTokens: 5 });
      const during = simt.addon.cudaMemoryInfo().free;
      expect(before - during).toBeGreaterThan(model.info.weightBytes);
      await model.dispose();
      expect(simt.addon.cudaMemoryInfo().free).toBe(before);

      // a bare engine and session: the session's memory goes with the session, the weights with the engine
      const { engine } = await storiesEngine(simt.addon, 'cuda');
      const session = engine.createSession({ maxSeqLen: 256, maxTokens: 8 });
      const used = before - simt.addon.cudaMemoryInfo().free;
      // weights (each allocation rounded up to 256 bytes by the emulator, as cudaMalloc's granularity) and the session arena
      const { weightBytes, weights } = engine.memoryInfo();
      expect(used).toBeGreaterThanOrEqual(weightBytes + session.memoryInfo().bytes);
      expect(used).toBeLessThanOrEqual(weightBytes + session.memoryInfo().bytes + 256 * Object.keys(weights).length);
      await session.dispose();
      await engine.dispose();
      expect(simt.addon.cudaMemoryInfo().free).toBe(before);
    });

    it("a session's device memory is what lib/model/memory.ts estimates for a GPU", async () => {
      const { engine, spec } = await storiesEngine(simt.addon, 'cuda');
      try {
        for (const [contextLength, batchSize, outputRows, kvType] of [[256, 8, 1, 'f16'], [512, 32, 32, 'f32'], [100, 100, 1, 'bf16']] as const) {
          const session = engine.createSession({ maxSeqLen: contextLength, maxTokens: batchSize, maxOutputRows: outputRows, kvType });
          const elem = kvType === 'f32' ? 4 : 2;
          const kv = spec.kvCaches.reduce((sum, c) => sum + 2 * Math.ceil((contextLength * c.kvDim * elem) / 256) * 256, 0);
          expect(session.memoryInfo().bytes, `${contextLength}/${batchSize}/${outputRows}`).toBe(cudaActivationBytes(spec, { contextLength, batchSize, outputRows }) + kv);
          await session.dispose();
        }
      } finally {
        await engine.dispose();
      }
    });

    it('calls after dispose are ERR_DISPOSED', async () => {
      const { engine, vocab } = await storiesEngine(simt.addon, 'cuda');
      const session = engine.createSession({ maxSeqLen: 32, maxTokens: 8 });
      await step(session, PROMPT, 0, vocab);
      await engine.dispose();
      await expect(step(session, [1], 5, vocab)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
      expectErrorCode(() => engine.createSession({ maxSeqLen: 8, maxTokens: 8 }), 'ERR_DISPOSED');
      await session.dispose();
      await session.dispose();
      await engine.dispose();
      const model = await loadModelWith(simt, sharedPath(BIN), { tokenizer: sharedPath(TOK) });
      await model.dispose();
      expect(() => model.createSequence()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }) as Error);
    });

    it('errors carry codes: bad tokens, positions, KV types, unsupported shapes', async () => {
      const { engine, vocab } = await storiesEngine(simt.addon, 'cuda');
      const session = engine.createSession({ maxSeqLen: 16, maxTokens: 8 });
      try {
        await expect(step(session, [vocab], 0, vocab)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/outside the vocabulary/) });
        await expect(step(session, [1, 2, 3], 14, vocab)).rejects.toMatchObject({ code: 'ERR_CONTEXT_FULL' });
        await expect(step(session, Array(9).fill(1) as number[], 0, vocab)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/exceeds this session's maxTokens/) });
        await expect(session.run({ pos: 0, tokens: Int32Array.of(1), outputs: [{ buffer: LOGITS_BUFFER, data: new Float32Array(vocab - 1) }] })).rejects.toMatchObject({
          code: 'ERR_INVALID_ARG',
          message: expect.stringMatching(/output "logits" has 1 rows but the array holds 0/),
        });
        // still usable after every refusal
        expect(argmax(await step(session, PROMPT, 0, vocab))).toBeGreaterThanOrEqual(0);
        expectErrorCode(() => engine.createSession({ maxSeqLen: 16, maxTokens: 8, kvType: 'q8_0' as KvCacheType }), 'ERR_INVALID_ARG', /kvType/);
      } finally {
        await session.dispose();
        await engine.dispose();
      }
      // bf16 KV caches are the CUDA backend's only
      const cpu = await buildEngine({ weights: [], buffers: [{ name: 'x', width: 4 }, { name: 'y', width: 4 }], kvCaches: [], nodes: [{ op: 'add', out: 'y', a: 'x', b: 'x' }] }, [], { tier: 'reference' }).catch((e: unknown) => e);
      expect(cpu).toHaveProperty('engine');
      const { engine: cpuEngine } = cpu as { engine: NativeEngine };
      expectErrorCode(() => cpuEngine.createSession({ maxSeqLen: 8, maxTokens: 8, kvType: 'bf16' }), 'ERR_INVALID_ARG', /bf16 KV cache needs the CUDA backend/);
      await cpuEngine.dispose();
      await expect(loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu', kvCacheType: 'bf16' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/bf16' needs the CUDA backend/) });
      // a head_dim the attention kernels do not cover: ERR_UNSUPPORTED naming the node
      const wide: GraphSpec = {
        weights: [],
        buffers: [{ name: 'q', width: 256 }, { name: 'o', width: 256 }],
        kvCaches: [{ name: 'kv', kvDim: 256 }],
        nodes: [
          { op: 'kv_append', a: 'q', b: 'q', kv: 'kv' },
          { op: 'attention', out: 'o', a: 'q', kv: 'kv', nHeads: 1, nKvHeads: 1, headDim: 256 },
        ],
      };
      const built = await buildEngine(wide, [], { tier: 'cuda-simt', maxSeqLen: 8, maxTokens: 4 });
      try {
        await expect(built.session.run({ pos: 0, inputs: [{ buffer: 'q', data: new Float32Array(256) }] })).rejects.toMatchObject({
          code: 'ERR_UNSUPPORTED',
          message: expect.stringMatching(/^node 1 \(attention\): .*unsupported head_dim: 256/),
        });
      } finally {
        await built.session.dispose();
        await built.engine.dispose();
      }
    });

    it('a process that exits with live CUDA engines and a step in flight exits cleanly; worker_threads each run their own', () => {
      const lib = JSON.stringify(simt.path);
      const engineCode = `
        const addon = require(${lib});
        const spec = { weights: [{ name: 'w', dtype: 'f32', shape: [256, 256] }], buffers: [{ name: 'x', width: 256 }, { name: 'o', width: 256 }], kvCaches: [], nodes: [{ op: 'matmul', out: 'o', a: 'x', weight: 'w' }] };
        const src = [{ weight: 'w', type: 'f32', nbytes: 256 * 256 * 4, data: new Uint8Array(new Float32Array(256 * 256).fill(1).buffer) }];
        const e = new addon.Engine(spec, { device: 'cuda' });`;
      const exit = spawnSync(process.execPath, ['-e', `${engineCode}
        e.load(src).then(() => {
          const s = e.createSession({ maxSeqLen: 64, maxTokens: 64 });
          s.run({ pos: 0, inputs: [{ buffer: 'x', data: new Float32Array(256 * 64) }] });
          setTimeout(() => process.exit(0), 2);
        });`], { encoding: 'utf8', timeout: 60_000 });
      expect(exit.stderr).toBe('');
      expect(exit.status).toBe(0);
      const workers = spawnSync(process.execPath, ['-e', `
        const { Worker } = require('node:worker_threads');
        const code = ${JSON.stringify(`${engineCode}
          const { parentPort } = require('node:worker_threads');
          e.load(src).then(async () => {
            const s = e.createSession({ maxSeqLen: 8, maxTokens: 8 });
            const out = new Float32Array(256);
            for (let i = 0; i < 3; i++) await s.run({ pos: 0, inputs: [{ buffer: 'x', data: new Float32Array(256).fill(1) }], outputs: [{ buffer: 'o', data: out }] });
            parentPort.postMessage(out[0]);
          });`)};
        let done = 0;
        for (let i = 0; i < 4; i++) {
          const w = new Worker(code, { eval: true });
          w.on('message', (m) => { if (m !== 256) throw new Error('bad result ' + m); w.terminate().then(() => { if (++done === 4) console.log('ok'); }); });
          w.on('error', (e) => { console.error(e); process.exit(1); });
        }`], { encoding: 'utf8', timeout: 60_000 });
      expect(workers.stderr).toBe('');
      expect(workers.stdout.trim()).toBe('ok');
    });

    it('out of device memory (LLAMA_CUDA_SIMT_MEMORY) is ERR_OUT_OF_MEMORY and the process carries on', () => {
      const r = runScript(
        `
        const models = [];
        for (let i = 0; i < 8; i++) {
          try { models.push(await loadModelWith(simt, bin, { tokenizer, contextLength: 64 })); }
          catch (e) { out({ load: models.length, code: e.code, message: e.message }); break; }
        }
        out({ free: simt.addon.cudaMemoryInfo().free });
        // a session whose KV cache does not fit
        const big = await loadModelWith(simt, bin, { tokenizer, contextLength: 512 }).catch((e) => e);
        out({ bigLoad: big.code ?? 'ok' });
        for (const m of models) await m.dispose();
        const total = simt.addon.cudaMemoryInfo().total;
        out({ freeAfterDispose: simt.addon.cudaMemoryInfo().free, total });
        const m = await loadModelWith(simt, bin, { tokenizer, contextLength: 2048 });
        out({ session: await codeOf(m.complete('Once', { maxTokens: 2 })) });
        await m.dispose();
        const again = await loadModelWith(simt, bin, { tokenizer, contextLength: 64 });
        const r = await again.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
        const cpu = await loadModel(bin, { tokenizer, device: 'cpu' });
        const c = await cpu.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
        out({ tokens: r.tokens, cpuTokens: c.tokens });
        await again.dispose();
        await cpu.dispose();
        out({ freeAtEnd: simt.addon.cudaMemoryInfo().free, total });`,
        { LLAMA_CUDA_SIMT_MEMORY: '3M' },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const [load, , , freed, session, gen, end] = lines(r.stdout) as [
        { load: number; code: string; message: string },
        unknown,
        unknown,
        { freeAfterDispose: number; total: number },
        { session: { code: string; message: string } },
        { tokens: number[]; cpuTokens: number[] },
        { freeAtEnd: number; total: number },
      ];
      expect(load.load).toBeGreaterThanOrEqual(1); // 1 MiB of weights per model in 3 MiB
      expect(load).toMatchObject({ code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/cannot allocate .* of device memory for .*(cudaErrorMemoryAllocation)/) });
      expect(freed.freeAfterDispose).toBe(freed.total);
      // contextLength 2048: 5 layers x K and V x 2048 x 64 x 2 bytes = 2.5 MiB of f16 KV cache on top of 1 MiB of weights
      expect(session.session).toMatchObject({ code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/for a session .*KV caches/) });
      expect(gen.tokens).toEqual(gen.cpuTokens);
      expect(end.freeAtEnd).toBe(end.total);
    });

    it('a kernel fault leaves the CUDA context unusable: ERR_CUDA that says so, and the CPU still works', () => {
      const r = runScript(`
        const model = await loadModelWith(simt, bin, { tokenizer, contextLength: 64 });
        out({ before: await codeOf(model.complete('Once', { temperature: 0, maxTokens: 3 })) });
        out({ fault: simt.addon.simtInjectFault() });
        out({ after: await codeOf(model.complete('Once upon', { temperature: 0, maxTokens: 3 })) });
        out({ again: await codeOf(model.complete('Once upon a', { temperature: 0, maxTokens: 3 })) });
        out({ newEngine: await codeOf(loadModelWith(simt, bin, { tokenizer, contextLength: 64 })) });
        await model.dispose();
        const cpu = await loadModel(bin, { tokenizer, device: 'cpu' });
        out({ cpu: (await cpu.complete('Once upon a time', { temperature: 0, maxTokens: 4 })).tokens.length });
        await cpu.dispose();`);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const [before, fault, after, again, fresh, cpu] = lines(r.stdout) as [
        { before: string },
        { fault: string },
        { after: { code: string; message: string } },
        { again: { code: string; message: string } },
        { newEngine: { code: string; message: string } },
        { cpu: number },
      ];
      expect(before.before).toBe('ok');
      expect(fault.fault).toBe('cudaErrorLaunchFailure');
      expect(after.after).toMatchObject({ code: 'ERR_CUDA', message: expect.stringMatching(/cudaErrorLaunchFailure.*the CUDA context is now unusable/s) });
      expect(again.again).toMatchObject({ code: 'ERR_CUDA', message: expect.stringMatching(/^the CUDA context is unusable after a fault \(cudaErrorLaunchFailure\)/) });
      expect(fresh.newEngine).toMatchObject({ code: 'ERR_CUDA', message: expect.stringMatching(/the CUDA context is unusable/) });
      expect(cpu.cpu).toBe(4);
    });
  });
});
