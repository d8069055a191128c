/**
 * Which tensors a Llama model needs, what shape each must have, and how each is stored in the
 * engine: the plan handed to native code (specs) and where to read each tensor (sources).
 *
 * Storage follows the file: f32, f16, bf16 and Q8_0 stay as they are; Q4_0 is repacked
 * (exactly) into int4 group-affine with groups of 32; norm vectors are kept in f32.
 */
import type { LoadableType, WeightDType, WeightSource, WeightSpec } from '../addon-types.js';
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

const STORAGE: Partial<Record<SourceType, { dtype: WeightDType; group?: number }>> = {
  f32: { dtype: 'f32' },
  f16: { dtype: 'f16' },
  bf16: { dtype: 'bf16' },
  q8_0: { dtype: 'q8_0' },
  q4_0: { dtype: 'int4', group: 32 },
};
const LOADABLE: readonly SourceType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];
const FLOAT_TYPES: readonly SourceType[] = ['f32', 'f16', 'bf16'];

export function planWeights(config: LlamaConfig, tensors: readonly TensorInfo[], source: string): WeightPlan {
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
    const storage = kind === 'vector' ? { dtype: 'f32' as const } : STORAGE[t.type]!;
    const rows = kind === 'vector' ? 1 : shape[0]!;
    const cols = kind === 'vector' ? shape[0]! : shape[1]!;
    specs.push({ name, dtype: storage.dtype, shape: [rows, cols], ...(storage.group !== undefined ? { group: storage.group } : {}) });
    sources.push({ weight: name, type: t.type as LoadableType, nbytes: t.nbytes, file: t.file, offset: t.offset });
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
