/**
 * Runtime LoRA: the base weights stay as loaded, and after every matmul of an adapted weight
 * the graph computes the low-rank correction and adds it (per token row):
 *
 *   out = a·Wᵀ                       the base matmul            out [outFeatures]
 *   t   = a·Aᵀ                       lora.t.<r>                 t   [r]
 *   u   = t·B'ᵀ                      lora.u.<outFeatures>       u   [outFeatures]
 *   out = out + u
 *
 * with B' = scale·scaling·B (rows in the model's RoPE order: effectiveB). A and B' are f32
 * weights named `lora.<adapter>.<layer>.<target>.a|b`; every adapter adds its own three nodes.
 * The t and u buffers are shared by all adapted matmuls of one width (ops run in order).
 */
import type { BufferSpec, GraphSpec, NodeSpec, WeightSource, WeightSpec } from '../addon-types.js';
import type { LlamaConfig } from '../model/config.js';
import type { WeightPlan } from '../model/weights.js';
import { TARGET_WEIGHT, effectiveB } from './adapter.js';
import type { LoadedLora } from './types.js';

function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values as ArrayLike<number>);
  return new Uint8Array(f.buffer);
}

export function addRuntimeLora(
  config: LlamaConfig,
  plan: WeightPlan,
  graph: GraphSpec,
  adapters: readonly LoadedLora[],
): { plan: WeightPlan; graph: GraphSpec } {
  const specs: WeightSpec[] = [...plan.specs];
  const sources: WeightSource[] = [...plan.sources];
  let totalBytes = plan.totalBytes;
  const buffers: BufferSpec[] = [...graph.buffers];
  const haveBuffer = new Set(buffers.map((b) => b.name));
  const buffer = (name: string, width: number): string => {
    if (!haveBuffer.has(name)) {
      buffers.push({ name, width });
      haveBuffer.add(name);
    }
    return name;
  };
  const addWeight = (name: string, rows: number, cols: number, values: ArrayLike<number>): string => {
    const data = f32Bytes(values);
    specs.push({ name, dtype: 'f32', shape: [rows, cols] });
    sources.push({ weight: name, type: 'f32', nbytes: data.byteLength, data });
    totalBytes += data.byteLength;
    return name;
  };

  // base weight name -> the nodes to run after its matmul
  const after = new Map<string, NodeSpec[]>();
  adapters.forEach(({ adapter, scale }, ai) => {
    for (const m of adapter.modules) {
      const base = plan.layers[m.layer]![TARGET_WEIGHT[m.target]];
      const prefix = `lora.${ai}.${m.layer}.${m.target}`;
      const a = addWeight(`${prefix}.a`, m.rank, m.inFeatures, m.a);
      const b = addWeight(`${prefix}.b`, m.outFeatures, m.rank, effectiveB(m, scale, config));
      const t = buffer(`lora.t.${m.rank}`, m.rank);
      const u = buffer(`lora.u.${m.outFeatures}`, m.outFeatures);
      const list = after.get(base) ?? [];
      // `out`/`a` are filled in from the base matmul below
      list.push({ op: 'matmul', out: t, a: '', weight: a }, { op: 'matmul', out: u, a: t, weight: b }, { op: 'add', out: '', a: '', b: u });
      after.set(base, list);
    }
  });

  const nodes: NodeSpec[] = [];
  const applied = new Set<string>();
  for (const node of graph.nodes) {
    nodes.push(node);
    if (node.op !== 'matmul') continue;
    const extra = after.get(node.weight);
    if (extra === undefined) continue;
    applied.add(node.weight);
    for (const n of extra) {
      if (n.op === 'matmul' && n.a === '') nodes.push({ ...n, a: node.a });
      else if (n.op === 'add') nodes.push({ ...n, out: node.out, a: node.out });
      else nodes.push(n);
    }
  }
  for (const w of after.keys()) {
    if (!applied.has(w)) throw new Error(`runtime LoRA: no matmul uses weight "${w}"`); // a graph/plan mismatch: a bug
  }
  return {
    plan: { ...plan, specs, sources, totalBytes },
    graph: { ...graph, weights: specs, buffers, nodes },
  };
}
