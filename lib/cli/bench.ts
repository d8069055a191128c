/**
 * llama-cuda bench [--quick] [--shapes LIST] [--ops LIST] [--dtypes LIST] [--backends LIST]
 *   [--filter S]... [--time MS] [--samples N] [--threads N] [--json F]
 * llama-cuda bench --e2e [--model F]... [--tokenizer F] [--prompts LIST] [--depths LIST]
 *   [--gen N] [--repeats N] [--threads N] [--json F]
 *
 * Microbenchmarks (default): every op at Llama 2 shapes on every backend present, each against
 * its measured ceiling; a table, and with --json the §5 rows plus a roofline SVG beside them.
 * With --e2e: pp/tg tokens/s of whole models (lib/bench/e2e.ts).
 */
import * as path from 'node:path';

import type { OpName, WeightDType } from '../addon-types.js';
import { ALL_OPS, MATMUL_DTYPES, SHAPE_PRESETS, type ShapeName } from '../bench/cases.js';
import { measureBandwidth } from '../bench/ceilings.js';
import { type E2eModel, defaultE2eModels, modelFromFile, runE2e } from '../bench/e2e.js';
import { type ResultRow, fmt, textTable, writeResultsJson } from '../bench/results.js';
import { type BenchBackend, cpuDeviceName, runMicroSuite } from '../bench/suite.js';
import { loadAddon } from '../native.js';
import { type OptionSpecs, type Parsed, UsageError, helpText, optBool, optInt, optList, optString, parseArgs } from './args.js';

const DEFAULT_SHAPES: readonly ShapeName[] = ['small', '7b', '13b', '70b'];

export const benchOptions: OptionSpecs = {
  quick: { type: 'boolean', description: 'tiny shapes, short timings (a smoke run: the numbers are rough)' },
  shapes: { type: 'string', value: 'LIST', description: `shape presets: ${Object.keys(SHAPE_PRESETS).join(',')} (default ${DEFAULT_SHAPES.join(',')})` },
  ops: { type: 'string', value: 'LIST', description: `ops (default all: ${ALL_OPS.join(',')})` },
  dtypes: { type: 'string', value: 'LIST', description: `matmul weight types (default ${MATMUL_DTYPES.join(',')})` },
  backends: { type: 'string', value: 'LIST', description: 'cpu,cuda (default: cpu, and cuda where a GPU build is usable)' },
  filter: { type: 'string', repeat: true, value: 'S', description: 'only cases whose name contains S' },
  time: { type: 'number', value: 'MS', description: 'time budget per case in ms (default 250; --quick 20)' },
  samples: { type: 'number', description: 'at least N samples per case (default 3)' },
  threads: { type: 'number', description: 'CPU threads (default all)' },
  json: { type: 'string', value: 'F', description: 'write the result rows (design.md §5) to F, and the roofline chart to F with .svg' },
  e2e: { type: 'boolean', description: 'end-to-end pp/tg tokens/s of whole models instead of microbenchmarks' },
  model: { type: 'string', repeat: true, value: 'F', description: '--e2e: a model file (default: stories260K and the synthetic set)' },
  tokenizer: { type: 'string', value: 'F', description: '--e2e: tokenizer for .bin models' },
  models: { type: 'string', value: 'LIST', description: '--e2e: only these of the default set' },
  prompts: { type: 'string', value: 'LIST', description: '--e2e: prompt lengths (default 128,512)' },
  depths: { type: 'string', value: 'LIST', description: '--e2e: generation depths (default 0,512,1024)' },
  gen: { type: 'number', description: '--e2e: tokens per generation run (default 128)' },
  repeats: { type: 'number', description: '--e2e: repeats per number (default 3)' },
  device: { type: 'string', value: 'D', description: '--e2e: cpu or cuda (default cpu)' },
  help: { type: 'boolean', description: 'show this help' },
};

export const benchUsage =
  'usage: llama-cuda bench [--quick] [--shapes LIST] [--ops LIST] [--dtypes LIST] [--backends LIST] [--json F]\n' +
  '       llama-cuda bench --e2e [--model F]... [--prompts LIST] [--depths LIST] [--json F]';

function list<T extends string>(p: Parsed, name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = optString(p, name);
  if (raw === undefined) return [...fallback];
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const it of items) if (!(allowed as readonly string[]).includes(it)) throw new UsageError(`--${name}: unknown "${it}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

function numbers(p: Parsed, name: string, fallback: readonly number[]): number[] {
  const raw = optString(p, name);
  if (raw === undefined) return [...fallback];
  const out = raw.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`--${name} must be a list of non-negative integers`);
  return out;
}

function positive(p: Parsed, name: string): number | undefined {
  const v = optInt(p, name);
  if (v !== undefined && v < 1) throw new UsageError(`--${name} must be at least 1`);
  return v;
}

export async function runBench(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, benchOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(benchUsage, benchOptions));
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument "${p.positionals[0]}"`);
  const threads = optInt(p, 'threads') ?? 0;
  if (threads < 0) throw new UsageError('--threads must be 0 or more');
  const json = optString(p, 'json');
  return optBool(p, 'e2e') ? runE2eCommand(p, threads, json) : runMicroCommand(p, threads, json);
}

async function runMicroCommand(p: Parsed, threads: number, json: string | undefined): Promise<number> {
  const quick = optBool(p, 'quick');
  const shapes = list(p, 'shapes', Object.keys(SHAPE_PRESETS) as ShapeName[], quick ? ['tiny'] : DEFAULT_SHAPES);
  const ops = list<OpName>(p, 'ops', ALL_OPS, ALL_OPS);
  const dtypes = list<WeightDType>(p, 'dtypes', MATMUL_DTYPES, MATMUL_DTYPES);
  const backends = optString(p, 'backends') === undefined ? undefined : list<BenchBackend>(p, 'backends', ['cpu', 'cuda'], ['cpu']);
  const report = await runMicroSuite({
    shapes,
    ops,
    dtypes,
    ...(backends !== undefined ? { backends } : {}),
    filter: optList(p, 'filter'),
    timeMs: positive(p, 'time') ?? (quick ? 20 : 250),
    minSamples: positive(p, 'samples') ?? (quick ? 2 : 3),
    threads,
    quick,
    ...(json !== undefined ? { json: path.resolve(json) } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  return report.rows.length > 0 || report.skipped.length === 0 ? 0 : 1;
}

async function runE2eCommand(p: Parsed, threads: number, json: string | undefined): Promise<number> {
  const device = optString(p, 'device') ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new UsageError('--device must be cpu or cuda');
  const files = optList(p, 'model');
  const tokenizer = optString(p, 'tokenizer');
  let models: E2eModel[];
  if (files.length > 0) {
    models = files.map((f) => modelFromFile(path.resolve(f), tokenizer));
  } else {
    const shared = path.resolve(process.env.LLAMA_CUDA_SHARED ?? '../shared');
    models = defaultE2eModels(shared, path.resolve('.bench', 'models'));
    const only = optString(p, 'models')?.split(',');
    if (only !== undefined) {
      const unknown = only.filter((n) => !models.some((m) => m.name === n));
      if (unknown.length > 0) throw new UsageError(`--models: unknown ${unknown.join(', ')} (one of ${models.map((m) => m.name).join(', ')})`);
      models = models.filter((m) => only.includes(m.name));
    }
  }
  const { addon, info } = loadAddon('cpu');
  const deviceName = device === 'cpu' ? cpuDeviceName(info.cpu.model) : (loadAddon('cuda').info.cuda.devices[0]?.name ?? 'CUDA device');
  let readGBps: number | undefined;
  if (device === 'cpu') {
    const bw = measureBandwidth(addon, threads);
    readGBps = bw.readGBps;
    process.stdout.write(`cpu: ${deviceName}, ${bw.threads} threads; read bandwidth ${fmt(bw.readGBps)} GB/s (1 GiB, best of 5): the decode ceiling\n`);
  }
  const gen = positive(p, 'gen');
  const repeats = positive(p, 'repeats');
  const rows = await runE2e({
    models,
    prompts: numbers(p, 'prompts', [128, 512]).filter((n) => n > 0),
    depths: numbers(p, 'depths', [0, 512, 1024]),
    ...(gen !== undefined ? { genTokens: gen } : {}),
    ...(repeats !== undefined ? { repeats } : {}),
    threads,
    device,
    deviceName,
    ...(readGBps !== undefined ? { readGBps } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\n${e2eTable(rows)}\n`);
  if (json !== undefined) {
    writeResultsJson(path.resolve(json), rows);
    process.stdout.write(`wrote ${json} (${rows.length} rows)\n`);
  }
  return 0;
}

export function e2eTable(rows: readonly ResultRow[]): string {
  return textTable(
    ['name', 'tokens/s', 'ceiling', 'ratio', 'notes'],
    rows.map((r) => [r.name, fmt(r.value), r.ceiling === null ? '-' : fmt(r.ceiling), r.ratio === null ? '-' : `${(r.ratio * 100).toFixed(1)}%`, r.notes.split('; ').slice(1, 3).join('; ')]),
  );
}
