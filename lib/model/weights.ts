/**
 * Which tensors a Llama model needs, what shape each must have, and how each is stored in the
 * engine: the plan handed to native code (specs) and where to read each tensor (sources).
 *
 * Storage follows the file (STORAGE below; native/core/weight_loader.cc converts, and its table
 * says which conversions are exact): f32, f16, bf16 and Q8_0 stay as they are; the 4-bit types
 * (Q4_0, Q4_1, Q4_K) become int4 group-affine with groups of 32; the 5-, 6- and 8-bit block
 * types become Q8_0. Norm vectors are kept in f32.
 *
 * Quantize at load (`quantize: 'int4' | 'int8'`): 2-D float weights (f32, f16, bf16) are
 * stored as int4 (groups of `quantizeGroup`, min/max affine, round to nearest) or Q8_0 instead,
 * the token embedding included (as llama.cpp's quantizer does: the lookup reads one row per
 * token, so the table costs memory, not bandwidth; its rows are quantized like any other).
 * Tensors already quantized in the file stay as they are; a matrix whose rows do not fill the
 * groups keeps its float type. `quantize: 'nf4'` stores QLoRA's 4-bit NormalFloat instead (blocks
 * of 64 with an f32 absmax, each value rounded to the nearest of the 16 NF4 levels:
 * native/core/nf4.h); bitsandbytes NF4 checkpoints load into the same storage exactly.
 */
import type { SourceEncoding, WeightDType, WeightSource, WeightSpec } from '../addon-types.js';
import { LlamaCudaError } from '../errors.js';
import type { SourceType, TensorInfo } from '../formats/tensor-info.js';
import { type LlamaConfig, kvDim } from './config.js';

/** Engine names of the weights of one layer. */
export interface LayerWeights {
  readonly attnNorm: string;
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly o: string;
  readonly ffnNorm: string;
  readonly gate: string;
  readonly up: string;
  readonly down: string;
}

export interface WeightPlan {
  readonly specs: readonly WeightSpec[];
  readonly sources: readonly WeightSource[];
  readonly embedding: string;
  readonly outputNorm: string;
  /** The classifier: `output.weight`, or the embedding when the file ties them. */
  readonly output: string;
  readonly tiedClassifier: boolean;
  readonly layers: readonly LayerWeights[];
  /** Source bytes to read. */
  readonly totalBytes: number;
}

interface Storage {
  readonly dtype: WeightDType;
  readonly group?: number;
}

/** The engine storage of each source type the native loader reads (exactness: weight_loader.cc). */
const STORAGE: Readonly<Partial<Record<SourceType, Storage>>> = {
  f32: { dtype: 'f32' },
  f16: { dtype: 'f16' },
  bf16: { dtype: 'bf16' },
  q8_0: { dtype: 'q8_0' },
  q4_0: { dtype: 'int4', group: 32 }, // exact
  q4_1: { dtype: 'int4', group: 32 }, // exact
  q4_k: { dtype: 'int4', group: 32 }, // sub-block scale and min rounded to f16
  q5_0: { dtype: 'q8_0' }, // exact
  q5_1: { dtype: 'q8_0' }, // re-quantized from the exact values
  q5_k: { dtype: 'q8_0' },
  q6_k: { dtype: 'q8_0' },
  q8_k: { dtype: 'q8_0' },
  nf4: { dtype: 'nf4' }, // exact (bitsandbytes 4-bit, lib/formats/bnb-nf4.ts)
};
const LOADABLE = Object.keys(STORAGE) as readonly SourceType[];
const FLOAT_TYPES: readonly SourceType[] = ['f32', 'f16', 'bf16'];

export type QuantizeAtLoad = 'int4' | 'int8' | 'nf4';

export interface PlanOptions {
  /** Store 2-D float weights as int4, Q8_0 or NF4 (see the file comment). */
  readonly quantize?: QuantizeAtLoad;
  /** int4 group size (default 32). */
  readonly quantizeGroup?: 32 | 64 | 128;
}

function checkPlanOptions(options: PlanOptions): void {
  const { quantize, quantizeGroup } = options;
  if (quantize !== undefined && quantize !== 'int4' && quantize !== 'int8' && quantize !== 'nf4') {
    throw new LlamaCudaError('ERR_INVALID_ARG', `quantize must be 'int4', 'int8' or 'nf4', got ${String(quantize)}`);
  }
  if (quantizeGroup !== undefined) {
    if (quantizeGroup !== 32 && quantizeGroup !== 64 && quantizeGroup !== 128) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `quantizeGroup must be 32, 64 or 128, got ${String(quantizeGroup)}`);
    }
    if (quantize !== 'int4') throw new LlamaCudaError('ERR_INVALID_ARG', "quantizeGroup applies only to quantize: 'int4'");
  }
}

/** The quantized storage of a float matrix with rows of `cols` values, or undefined to keep it. */
function quantizedStorage(options: PlanOptions, type: SourceType, cols: number): Storage | undefined {
  if (options.quantize === undefined || !FLOAT_TYPES.includes(type)) return undefined;
  if (options.quantize === 'int8') return cols % 32 === 0 ? { dtype: 'q8_0' } : undefined;
  if (options.quantize === 'nf4') return cols % 64 === 0 ? { dtype: 'nf4' } : undefined;
  const group = options.quantizeGroup ?? 32;
  return cols % group === 0 ? { dtype: 'int4', group } : undefined;
}

export function planWeights(config: LlamaConfig, tensors: readonly TensorInfo[], source: string, options: PlanOptions = {}): WeightPlan {
  checkPlanOptions(options);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const specs: WeightSpec[] = [];
  const sources: WeightSource[] = [];
  let totalBytes = 0;

  const take = (name: string, shape: readonly number[], kind: 'matrix' | 'vector'): string => {
    const t = byName.get(name);
    if (t === undefined) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: missing tensor "${name}"`);
    const same = t.shape.length === shape.length && t.shape.every((v, i) => v === shape[i]);
    if (!same) {
      throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (!LOADABLE.includes(t.type)) {
      throw new LlamaCudaError(
        'ERR_UNSUPPORTED',
        `${source}: tensor "${name}" has type ${t.type.toUpperCase()}, which this version cannot run (supported: ${LOADABLE.join(', ')})`,
      );
    }
    if (kind === 'vector' && !FLOAT_TYPES.includes(t.type)) {
      throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: norm tensor "${name}" is ${t.type}; expected a float type`);
    }
    const rows = kind === 'vector' ? 1 : shape[0]!;
    const cols = kind === 'vector' ? shape[0]! : shape[1]!;
    const storage: Storage = kind === 'vector' ? { dtype: 'f32' } : (quantizedStorage(options, t.type, cols) ?? STORAGE[t.type]!);
    specs.push({ name, dtype: storage.dtype, shape: [rows, cols], ...(storage.group !== undefined ? { group: storage.group } : {}) });
    sources.push({ weight: name, type: t.type as SourceEncoding, nbytes: t.nbytes, file: t.file, offset: t.offset });
    totalBytes += t.nbytes;
    return name;
  };

  const { dim, hiddenDim, vocabSize } = config;
  const qDim = config.nHeads * config.headDim;
  const kv = kvDim(config);
  const embedding = take('token_embd.weight', [vocabSize, dim], 'matrix');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: take(`${p}attn_norm.weight`, [dim], 'vector'),
      q: take(`${p}attn_q.weight`, [qDim, dim], 'matrix'),
      k: take(`${p}attn_k.weight`, [kv, dim], 'matrix'),
      v: take(`${p}attn_v.weight`, [kv, dim], 'matrix'),
      o: take(`${p}attn_output.weight`, [dim, qDim], 'matrix'),
      ffnNorm: take(`${p}ffn_norm.weight`, [dim], 'vector'),
      gate: take(`${p}ffn_gate.weight`, [hiddenDim, dim], 'matrix'),
      up: take(`${p}ffn_up.weight`, [hiddenDim, dim], 'matrix'),
      down: take(`${p}ffn_down.weight`, [dim, hiddenDim], 'matrix'),
    });
  }
  const outputNorm = take('output_norm.weight', [dim], 'vector');
  const tiedClassifier = !byName.has('output.weight');
  const output = tiedClassifier ? embedding : take('output.weight', [vocabSize, dim], 'matrix');
  return { specs, sources, embedding, outputNorm, output, tiedClassifier, layers, totalBytes };
}
