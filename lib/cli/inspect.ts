/**
 * llama-cuda inspect F [--tokenizer F] [--ctx-size N] [--batch-size N] [--threads N] [--quantize int4|int8|nf4] [--json]
 *
 * Describes a model file without loading its weights (lib/inspect.ts): format, hyper-parameters,
 * parameter count, tokenizer, tensor types and their engine storage, and the memory needed on
 * the CPU and on a GPU. With --json it prints one JSON object with stable snake_case keys
 * (see reportJson).
 */
import { type ModelReport, inspectModel } from '../inspect.js';
import type { DeviceMemory } from '../model/memory.js';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optString, parseArgs } from './args.js';

export const inspectOptions: OptionSpecs = {
  model: { type: 'string', value: 'F', description: 'model file (or give it as the argument)' },
  tokenizer: { type: 'string', value: 'F', description: 'tokenizer file (tokenizer.json, tokenizer.model, GGUF or llama2.c tokenizer.bin); needed for .bin models' },
  'ctx-size': { type: 'number', description: "context length to size the KV cache for (default: the model's)" },
  'batch-size': { type: 'number', description: 'prompt tokens per step, to size activations (default 128)' },
  threads: { type: 'number', description: 'CPU threads, to size kernel scratch (default: all)' },
  quantize: { type: 'string', value: 'Q', description: 'size as if loaded with quantize: int4, int8 or nf4' },
  json: { type: 'boolean', description: 'print one JSON object' },
  help: { type: 'boolean', description: 'show this help' },
};

export const inspectUsage = 'usage: llama-cuda inspect F [--tokenizer F] [--ctx-size N] [--json]';

function memoryJson(m: DeviceMemory, withScratch: boolean): Record<string, number> {
  return {
    weight_bytes: m.weights,
    kv_cache_bytes: m.kvCache,
    activation_bytes: m.activations,
    ...(withScratch ? { scratch_bytes: m.scratch } : {}),
    total_bytes: m.total,
  };
}

/** The --json object (keys are part of the CLI's interface: add, never rename). */
export function reportJson(r: ModelReport): unknown {
  const c = r.config;
  const m = r.memory;
  return {
    path: r.path,
    format: r.format,
    architecture: r.architecture,
    name: r.name,
    file_bytes: r.fileBytes,
    parameters: r.parameters,
    tensor_count: r.tensorCount,
    tensor_elements: r.tensorElements,
    tied_classifier: r.tiedClassifier ?? null,
    config: {
      dim: c.dim,
      hidden_dim: c.hiddenDim,
      n_layers: c.nLayers,
      n_heads: c.nHeads,
      n_kv_heads: c.nKvHeads,
      head_dim: c.headDim,
      vocab_size: c.vocabSize,
      context_length: c.contextLength,
      rope_theta: c.ropeTheta,
      rope_dim: c.ropeDim,
      rope_freq_scale: c.ropeFreqScale,
      rope_scaling: c.ropeScaling ?? null,
      rope_pairing: c.ropePairing,
      norm_eps: c.normEps,
    },
    tokenizer:
      r.tokenizer === undefined
        ? null
        : {
            type: r.tokenizer.type,
            source: r.tokenizer.source,
            vocab_size: r.tokenizer.vocabSize,
            bos: r.tokenizer.bos,
            eos: r.tokenizer.eos,
            unk: r.tokenizer.unk,
            add_bos: r.tokenizer.addBos,
            add_eos: r.tokenizer.addEos,
          },
    tokenizer_error: r.tokenizerError ?? null,
    tensor_types: r.tensorTypes.map((t) => ({
      type: t.type,
      storage: t.storage,
      count: t.count,
      elements: t.elements,
      file_bytes: t.fileBytes,
      engine_bytes: t.engineBytes,
    })),
    plan_error: r.planError ?? null,
    memory:
      m === undefined
        ? null
        : {
            context_length: m.contextLength,
            batch_size: m.batchSize,
            threads: r.threads,
            weight_bytes: m.weights,
            kv_cache: {
              model_context_length: c.contextLength,
              model_context_f16_bytes: r.kvCacheAtModelContext.f16,
              model_context_f32_bytes: r.kvCacheAtModelContext.f32,
              context_f16_bytes: m.kvCacheF16,
              context_f32_bytes: m.kvCacheF32,
            },
            activation_bytes: m.activations,
            cpu: memoryJson(m.cpu, true),
            cuda: memoryJson(m.cuda, false),
          },
  };
}

/** "1.5 MiB" style, exact bytes below 1 KiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/**
 * Rows of cells (the first row a header) in aligned columns; a column whose cells below the
 * header are all numbers (or "-") is right-aligned, header included, unless `alignNumbers` is false.
 */
function table(rows: string[][], alignNumbers = true, indent = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = (s: string): boolean => s === '-' || /^[\d,.]+( [KMGT]?i?B| [KMB])?$/.test(s);
  const right = widths.map((_, i) => alignNumbers && i > 0 && rows.slice(1).every((row) => numeric(row[i] ?? '-')));
  return rows
    .map((row) => indent + row.map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

export function reportText(r: ModelReport): string {
  const c = r.config;
  const out: string[] = [];
  out.push(r.path);
  out.push(
    table([
      ['format', r.format],
      ['architecture', r.architecture],
      ['name', r.name],
      ['file size', `${formatBytes(r.fileBytes)} (${count(r.fileBytes)} bytes)`],
      ['parameters', `${count(r.parameters)} (${human(r.parameters)})${r.tiedClassifier === true ? ', classifier tied to the embedding' : ''}`],
      ['tensors', `${r.tensorCount} (${count(r.tensorElements)} elements)`],
    ]),
  );
  out.push('', 'hyper-parameters');
  const rope = `theta ${c.ropeTheta}, ${c.ropeDim} dims, ${c.ropePairing}${c.ropeFreqScale !== 1 ? `, freq scale ${c.ropeFreqScale}` : ''}${c.ropeScaling !== undefined ? `, ${c.ropeScaling.type} scaling x${c.ropeScaling.factor}` : ''}`;
  out.push(
    table(
      [
        ['dim', String(c.dim), 'heads', String(c.nHeads)],
        ['hidden dim', String(c.hiddenDim), 'kv heads', `${c.nKvHeads}${c.nKvHeads !== c.nHeads ? ` (GQA ${c.nHeads / c.nKvHeads}:1)` : ''}`],
        ['layers', String(c.nLayers), 'head dim', String(c.headDim)],
        ['vocab', String(c.vocabSize), 'context', String(c.contextLength)],
      ],
      false,
    ),
  );
  out.push(table([['rope', rope], ['norm eps', String(Number(c.normEps.toPrecision(6)))]], false));
  out.push('', 'tokenizer');
  if (r.tokenizer !== undefined) {
    const t = r.tokenizer;
    out.push(
      table([
        ['type', `${t.type} (${t.source})`],
        ['vocab', String(t.vocabSize)],
        ['special', `bos ${t.bos}, eos ${t.eos}, unk ${t.unk}`],
        ['add bos/eos', `${t.addBos} / ${t.addEos}`],
      ], false),
    );
  } else {
    out.push(`  not available: ${r.tokenizerError ?? 'unknown'}`);
  }
  out.push('', 'tensors');
  out.push(
    table([
      ['type', 'count', 'file bytes', 'engine storage', 'engine bytes'],
      ...r.tensorTypes.map((t) => [t.type, String(t.count), formatBytes(t.fileBytes), t.storage, t.storage === 'unused' ? '-' : formatBytes(t.engineBytes)]),
    ]),
  );
  const m = r.memory;
  if (m === undefined) {
    out.push('', `cannot run in this version: ${r.planError ?? 'unknown'}`);
  } else {
    out.push('', `memory for one sequence (context ${m.contextLength}, batch ${m.batchSize})`);
    out.push(
      table([
        ['', 'CPU', 'GPU'],
        ['weights', formatBytes(m.cpu.weights), formatBytes(m.cuda.weights)],
        ['KV cache (f16)', formatBytes(m.cpu.kvCache), formatBytes(m.cuda.kvCache)],
        ['activations', formatBytes(m.cpu.activations), formatBytes(m.cuda.activations)],
        [`kernel scratch (${r.threads} threads)`, formatBytes(m.cpu.scratch), '-'],
        ['total', formatBytes(m.cpu.total), formatBytes(m.cuda.total)],
      ]),
    );
    const kv = [`  KV cache per sequence: context ${m.contextLength}: ${formatBytes(m.kvCacheF16)} f16, ${formatBytes(m.kvCacheF32)} f32`];
    if (m.contextLength !== c.contextLength) {
      kv.push(`; model context ${c.contextLength}: ${formatBytes(r.kvCacheAtModelContext.f16)} f16, ${formatBytes(r.kvCacheAtModelContext.f32)} f32`);
    }
    out.push(kv.join(''));
  }
  return `${out.join('\n')}\n`;
}

export async function runInspect(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, inspectOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(inspectUsage, inspectOptions));
    return 0;
  }
  const given = optString(p, 'model');
  if (given !== undefined && p.positionals.length > 0) throw new UsageError('give the model once: as the argument or with --model');
  if (p.positionals.length > 1) throw new UsageError(`one model at a time (got ${p.positionals.length})`);
  const modelPath = given ?? p.positionals[0];
  if (modelPath === undefined) throw new UsageError('the model file is required');
  const quantize = optString(p, 'quantize');
  if (quantize !== undefined && quantize !== 'int4' && quantize !== 'int8' && quantize !== 'nf4') throw new UsageError('--quantize must be int4, int8 or nf4');
  const tokenizer = optString(p, 'tokenizer');
  const ctx = optInt(p, 'ctx-size');
  const batch = optInt(p, 'batch-size');
  const threads = optInt(p, 'threads');
  const report = await inspectModel(modelPath, {
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    ...(ctx !== undefined ? { contextLength: ctx } : {}),
    ...(batch !== undefined ? { batchSize: batch } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(quantize !== undefined ? { quantize } : {}),
  });
  process.stdout.write(optBool(p, 'json') ? `${JSON.stringify(reportJson(report))}\n` : reportText(report));
  return 0;
}
