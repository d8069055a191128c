/**
 * The native boundary: every misuse is a thrown or rejected Error with a code, never a crash;
 * disposal is idempotent; a process or worker that exits with live engines exits cleanly.
 */
import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import type { GraphSpec } from '../../lib/addon-types.js';
import { loadAddon } from '../../lib/native.js';
import { addGraph, buildEngine, cpuAddon, f32Source, matmulGraph } from '../helpers/graphs.js';
import { useTmpDir } from '../helpers/tmp.js';
import { expectErrorCode } from '../helpers/errors.js';

const tmp = useTmpDir();

describe('graph validation', () => {
  const { Engine } = cpuAddon();
  const base = matmulGraph(4, 32);

  it('names the node and the problem', () => {
    const wrong: GraphSpec = { ...base, buffers: [{ name: 'x', width: 31 }, { name: 'out', width: 4 }] };
    expectErrorCode(() => new Engine(wrong), 'ERR_INVALID_ARG', /node 0 \(matmul\): weight "w" is 4x32 but maps width 31 to 4/);
    expectErrorCode(() => new Engine({ ...base, nodes: [{ op: 'matmul', out: 'out', a: 'nope', weight: 'w' }] }), 'ERR_INVALID_ARG', /unknown buffer "nope"/);
    expectErrorCode(() => new Engine({ ...base, nodes: [] }), 'ERR_INVALID_ARG', /no nodes/);
    expectErrorCode(() => new Engine({ ...base, weights: [{ name: 'w', dtype: 'q8_0', shape: [4, 33] }] }), 'ERR_INVALID_ARG', /q8_0 needs cols divisible by 32/);
    expectErrorCode(() => new Engine({ ...base, weights: [{ name: 'w', dtype: 'int4', shape: [4, 32], group: 48 }] }), 'ERR_INVALID_ARG', /unsupported int4 group size: 48/);
    expectErrorCode(() => new Engine({ ...base, weights: [{ name: 'w', dtype: 'f64' as never, shape: [4, 32] }] }), 'ERR_INVALID_ARG', /unsupported weight dtype "f64"/);
    expectErrorCode(() => new Engine({ ...base, nodes: [{ op: 'conv' as never, out: 'out', a: 'x', weight: 'w' }] }), 'ERR_INVALID_ARG', /unknown op "conv"/);
  });

  it('checks attention and rope parameters', () => {
    const spec = (nHeads: number, nKvHeads: number, headDim: number): GraphSpec => ({
      weights: [],
      buffers: [{ name: 'q', width: 64 }, { name: 'k', width: 32 }, { name: 'o', width: 64 }],
      kvCaches: [{ name: 'kv', kvDim: 32 }],
      nodes: [
        { op: 'kv_append', a: 'k', b: 'k', kv: 'kv' },
        { op: 'attention', out: 'o', a: 'q', kv: 'kv', nHeads, nKvHeads, headDim },
      ],
    });
    expect(() => new Engine(spec(8, 4, 8))).not.toThrow();
    expectErrorCode(() => new Engine(spec(8, 3, 8)), 'ERR_INVALID_ARG', /not a multiple of n_kv_heads/);
    expectErrorCode(() => new Engine(spec(4, 2, 8)), 'ERR_INVALID_ARG', /does not match width 64/);
    const rope: GraphSpec = {
      weights: [], buffers: [{ name: 'q', width: 64 }], kvCaches: [],
      nodes: [{ op: 'rope', a: 'q', nHeads: 8, headDim: 8, ropeDim: 10, theta: 10000, freqScale: 1, pairing: 'interleaved' }],
    };
    expectErrorCode(() => new Engine(rope), 'ERR_INVALID_ARG', /rope_dim 10 must be even and at most head_dim/);
  });

  it('rejects non-objects and wrong argument types', () => {
    expectErrorCode(() => new Engine(42 as never), 'ERR_INVALID_ARG', /spec must be an object/);
    expectErrorCode(() => new Engine({ ...base, buffers: 'x' } as never), 'ERR_INVALID_ARG', /buffers must be an array/);
    expectErrorCode(() => new Engine(base, { device: 'tpu' }  as never), 'ERR_INVALID_ARG', /unknown device: tpu/);
    expectErrorCode(() => new Engine(base, { cpuKernels: 'sse9' } as never), 'ERR_UNSUPPORTED', /unknown CPU kernel tier/);
  });
});

describe('loading weights', () => {
  const { Engine } = cpuAddon();

  it('rejects wrong sizes, missing or duplicate sources, and files that are too short', async () => {
    const spec = matmulGraph(4, 32);
    const w = new Float32Array(4 * 32);
    let e = new Engine(spec);
    await expect(e.load([{ ...f32Source('w', w), nbytes: 100, data: new Uint8Array(100) }])).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/100 bytes given, 512 expected/) });
    await expect(e.load([])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/"w" has 0 sources/) });
    await expect(e.load([f32Source('w', w), f32Source('w', w)])).rejects.toMatchObject({ message: expect.stringMatching(/2 sources/) });
    const short = tmp('short.bin');
    (await import('node:fs')).writeFileSync(short, new Uint8Array(300));
    await expect(e.load([{ weight: 'w', type: 'f32', nbytes: 512, file: short, offset: 0 }])).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/lies outside/) });
    await expect(e.load([{ weight: 'w', type: 'f32', nbytes: 512, file: tmp('missing.bin'), offset: 0 }])).rejects.toMatchObject({ code: 'ERR_IO' });
    expectErrorCode(() => e.load([{ weight: 'w', type: 'q3_k' as never, nbytes: 512, data: new Uint8Array(512) }]), 'ERR_UNSUPPORTED', /"q3_k"/);
    // after all those failures the engine still loads
    await e.load([f32Source('w', w)]);
    await expect(e.load([f32Source('w', w)])).rejects.toMatchObject({ message: expect.stringMatching(/already loaded/) });
    await e.dispose();
    e = new Engine(spec);
    expectErrorCode(() => e.createSession({ maxSeqLen: 8, maxTokens: 8 }), 'ERR_INVALID_ARG', /load the weights/);
    await e.dispose();
  });

  it('reports progress up to the total', async () => {
    const rows = 40000;
    const spec = matmulGraph(rows, 64);
    const e = new (cpuAddon().Engine)(spec);
    const seen: [number, number][] = [];
    await e.load([f32Source('w', new Float32Array(rows * 64))], (done, total) => seen.push([done, total]));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toEqual([rows * 64 * 4, rows * 64 * 4]);
    for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThanOrEqual(seen[i - 1]![0]);
    await e.dispose();
  });
});

describe('steps', () => {
  it('rejects out-of-vocabulary tokens, positions past the context and wrong arrays', async () => {
    const spec: GraphSpec = {
      weights: [{ name: 'emb', dtype: 'f32', shape: [10, 4] }],
      buffers: [{ name: 'x', width: 4 }, { name: 'y', width: 4 }],
      kvCaches: [],
      nodes: [{ op: 'embed', out: 'x', weight: 'emb' }, { op: 'last_row', out: 'y', a: 'x' }],
    };
    const { engine, session } = await buildEngine(spec, [f32Source('emb', new Float32Array(40).map((_, i) => i))], { maxSeqLen: 8, maxTokens: 4 });
    const out = new Float32Array(4);
    await expect(session.run({ tokens: Int32Array.of(3, 10), pos: 0, outputs: [{ buffer: 'y', data: out }] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/token id 10 at index 1 is outside the vocabulary/) });
    await expect(session.run({ tokens: Int32Array.of(-1), pos: 0, outputs: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(session.run({ tokens: Int32Array.of(1, 2), pos: 7, outputs: [] })).rejects.toMatchObject({ code: 'ERR_CONTEXT_FULL', message: expect.stringMatching(/positions 7..8 do not fit the context of 8/) });
    await expect(session.run({ tokens: Int32Array.of(1, 2, 3, 4, 5), pos: 0, outputs: [] })).rejects.toMatchObject({ message: expect.stringMatching(/exceeds this session's maxTokens \(4\)/) });
    expectErrorCode(() => session.run({ tokens: [1, 2] as never, pos: 0 }), 'ERR_INVALID_ARG', /Int32Array/);
    expectErrorCode(() => session.run({ tokens: Int32Array.of(1), pos: 0, outputs: [{ buffer: 'y', data: new Float64Array(4) as never }] }), 'ERR_INVALID_ARG', /Float32Array/);
    expectErrorCode(() => session.run({ tokens: Int32Array.of(1), pos: -1 }), 'ERR_INVALID_ARG', /pos must be an integer/);
    await expect(session.run({ tokens: Int32Array.of(1, 2), pos: 0, outputs: [{ buffer: 'x', data: new Float32Array(4) }] })).rejects.toMatchObject({ message: expect.stringMatching(/has 2 rows but the array holds 1/) });
    // and then a good step gives the last embedding row
    const r = await session.run({ tokens: Int32Array.of(1, 2), pos: 0, outputs: [{ buffer: 'y', data: out }] });
    expect(r.outputRows).toEqual([1]);
    expect(Array.from(out)).toEqual([8, 9, 10, 11]);
    await session.dispose();
    await engine.dispose();
  });

  it('one step in flight per session: a second call is ERR_BUSY, not a race', async () => {
    const { engine, session } = await buildEngine(addGraph(1 << 16), [], { maxTokens: 16 });
    const x = new Float32Array(16 << 16).fill(1);
    const out = new Float32Array(16 << 16);
    const first = session.run({ pos: 0, inputs: [{ buffer: 'x', data: x }, { buffer: 'y', data: x }], outputs: [{ buffer: 'out', data: out }] });
    expectErrorCode(() => session.run({ pos: 0, inputs: [{ buffer: 'x', data: x }, { buffer: 'y', data: x }] }), 'ERR_BUSY', /busy/);
    await first;
    expect(out[12345]).toBe(2);
    await session.dispose();
    await engine.dispose();
  });

  it('dispose is idempotent and use after dispose is ERR_DISPOSED', async () => {
    const { engine, session } = await buildEngine(addGraph(8), []);
    const x = new Float32Array(8);
    await session.dispose();
    await session.dispose();
    expectErrorCode(() => session.run({ pos: 0, inputs: [{ buffer: 'x', data: x }, { buffer: 'y', data: x }] }), 'ERR_DISPOSED');
    const s2 = engine.createSession({ maxSeqLen: 8, maxTokens: 8 });
    await engine.dispose();
    await engine.dispose();
    await expect(s2.run({ pos: 0, inputs: [{ buffer: 'x', data: x }, { buffer: 'y', data: x }] })).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expectErrorCode(() => engine.createSession({ maxSeqLen: 8, maxTokens: 8 }), 'ERR_DISPOSED');
    await s2.dispose();
  });

  it('disposing the engine waits for a running step', async () => {
    const { engine, session } = await buildEngine(addGraph(1 << 18), [], { maxTokens: 8 });
    const x = new Float32Array(8 << 18).fill(3);
    const out = new Float32Array(8 << 18);
    const step = session.run({ pos: 0, inputs: [{ buffer: 'x', data: x }, { buffer: 'y', data: x }], outputs: [{ buffer: 'out', data: out }] });
    const disposed = engine.dispose();
    await Promise.all([step, disposed]);
    expect(out[0]).toBe(6);
  });
});

describe('process and worker lifetimes', () => {
  const addonPath = loadAddon('cpu').path;
  const script = (body: string): string => `
    const addon = require(${JSON.stringify(addonPath)});
    const spec = { weights: [{ name: 'w', dtype: 'f32', shape: [64, 64] }], buffers: [{ name: 'x', width: 64 }, { name: 'o', width: 64 }], kvCaches: [], nodes: [{ op: 'matmul', out: 'o', a: 'x', weight: 'w' }] };
    const src = [{ weight: 'w', type: 'f32', nbytes: 64 * 64 * 4, data: new Uint8Array(64 * 64 * 4) }];
    ${body}`;

  it('a process that exits with live engines and a step in flight exits cleanly', () => {
    const r = spawnSync(process.execPath, ['-e', script(`
      const e = new addon.Engine(spec);
      e.load(src).then(() => {
        const s = e.createSession({ maxSeqLen: 8, maxTokens: 8 });
        s.run({ pos: 0, inputs: [{ buffer: 'x', data: new Float32Array(64) }] });
        process.exit(0);
      });`)], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('worker_threads can load the addon, run, and be terminated with live engines', () => {
    const r = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const code = ${JSON.stringify(script(`
        const { parentPort } = require('node:worker_threads');
        const e = new addon.Engine(spec);
        e.load(src).then(async () => {
          const s = e.createSession({ maxSeqLen: 8, maxTokens: 8 });
          const out = new Float32Array(64);
          await s.run({ pos: 0, inputs: [{ buffer: 'x', data: new Float32Array(64).fill(1) }], outputs: [{ buffer: 'o', data: out }] });
          parentPort.postMessage(out[0]);
        });`))};
      let done = 0;
      for (let i = 0; i < 4; i++) {
        const w = new Worker(code, { eval: true });
        w.on('message', (m) => { if (m !== 0) throw new Error('bad result ' + m); w.terminate().then(() => { if (++done === 4) console.log('ok'); }); });
        w.on('error', (e) => { console.error(e); process.exit(1); });
      }`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.status).toBe(0);
  });

  it('creating and disposing engines in a loop does not leak', async () => {
    const spec = matmulGraph(256, 1024);
    const w = f32Source('w', new Float32Array(256 * 1024)); // 1 MiB of weights per engine
    const round = async (): Promise<void> => {
      const { engine, session } = await buildEngine(spec, [w], { maxTokens: 4 });
      await session.dispose();
      await engine.dispose();
    };
    for (let i = 0; i < 20; i++) await round();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) await round();
    const grown = process.memoryUsage().rss - before;
    expect(grown).toBeLessThan(64 * 2 ** 20); // 200 MiB were allocated and freed
  });
});

describe('buffers after last_row', () => {
  it('an input larger than such a buffer is refused, not written past its end', async () => {
    const spec: GraphSpec = {
      weights: [],
      buffers: [{ name: 'x', width: 4 }, { name: 'last', width: 4 }, { name: 'out', width: 4 }],
      kvCaches: [],
      nodes: [{ op: 'last_row', out: 'last', a: 'x' }, { op: 'add', out: 'out', a: 'last', b: 'last' }],
    };
    const { engine, session } = await buildEngine(spec, [], { maxTokens: 8, maxOutputRows: 1 });
    await expect(session.run({ pos: 0, inputs: [{ buffer: 'last', data: new Float32Array(32) }] })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG', message: expect.stringMatching(/input "last" has 8 rows; that buffer holds 1/),
    });
    const out = new Float32Array(4);
    await session.run({ pos: 0, inputs: [{ buffer: 'x', data: Float32Array.from({ length: 12 }, (_, i) => i) }], outputs: [{ buffer: 'out', data: out }] });
    expect(Array.from(out)).toEqual([16, 18, 20, 22]);
    await session.dispose();
    await engine.dispose();
  });
});
