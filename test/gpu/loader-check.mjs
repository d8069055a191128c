// The install layout on a GPU machine (issue 5): does the loader pick the CUDA family build for
// this GPU, and do models then run on it? Run by scripts/gpu-run.sh before the tests:
//
//   node test/gpu/loader-check.mjs OUT_DIR
//
// It lays the packed files out as an installed package would hold them (.install-view/:
// package.json, dist/, bin/, node_modules/, prebuilds/linux-x64/ with the CPU build,
// cuda/sm90a/prebuilds/linux-x64/ with the sm_90a build; no developer build), then from there:
//   - `llama-cuda doctor --json`  -> OUT/doctor.json, OUT/doctor.txt
//   - greedy stories260K on device 'auto' and on 'cpu' -> the tokens must agree
// and appends rows to OUT/rows.jsonl: check.loader.chosen (value 1 when the build chosen is the one
// for this GPU's family and runs on the GPU) and check.loader.greedy.stories260K (1 when auto's
// tokens equal the CPU's). Exit 1 when either check fails.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { recordRow } from './results.mjs';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2] ?? process.env.GPU_OUT;
if (!out) {
  console.error('usage: node test/gpu/loader-check.mjs OUT_DIR');
  process.exit(2);
}
process.env.GPU_OUT = out;

// the family folder each compute capability is served from (lib/cuda-archs.ts has the full rules)
const FAMILY = { '8.0': 'sm80', '8.6': 'sm86', '8.7': 'sm86', '8.9': 'sm89', '9.0': 'sm90a' };
const packedCuda = join(pkg, 'cuda', 'build', 'Release', 'llama_cuda.node');
const cc = (() => {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], { encoding: 'utf8' }).trim().split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
})();
const family = FAMILY[cc] ?? 'ptx';

// 1. the installed layout
const view = join(pkg, '.install-view');
rmSync(view, { recursive: true, force: true });
mkdirSync(view, { recursive: true });
for (const f of ['package.json', 'dist', 'bin', 'node_modules']) cpSync(join(pkg, f), join(view, f), { recursive: true });
const tuple = `${process.platform}-${process.arch}`;
cpSync(join(pkg, 'build', 'Release', 'llama_cuda.node'), join(view, 'prebuilds', tuple, 'llama-cuda.napi.node'));
cpSync(packedCuda, join(view, 'cuda', family, 'prebuilds', tuple, 'llama-cuda.napi.node'));

const cli = join(view, 'bin', 'llama-cuda.js');
const env = { ...process.env };
delete env.LLAMA_CUDA_BACKEND;
delete env.LLAMA_CUDA_PREBUILD;
function run(args, extraEnv = {}) {
  return execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
}

// 2. doctor
let doctor;
try {
  writeFileSync(join(out, 'doctor.txt'), run(['doctor']));
  doctor = JSON.parse(run(['doctor', '--json']));
  writeFileSync(join(out, 'doctor.json'), `${JSON.stringify(doctor, null, 2)}\n`);
} catch (err) {
  console.error(`doctor failed: ${err.stderr ?? err.message}`);
  process.exit(1);
}
const gpu = doctor.gpus?.[0]?.name ?? 'none';
const chosen = doctor.chosen ?? {};
const wanted = `cuda/${family}/`;
const chosenOk = chosen.device === 'cuda' && typeof chosen.path === 'string' && chosen.path.includes(wanted);
console.log(`GPU ${gpu} (compute capability ${cc}): chose ${chosen.path} on ${chosen.device}: ${chosen.reason}`);
recordRow({ name: 'check.loader.chosen', device: gpu, value: chosenOk ? 1 : 0, unit: 'pass', notes: `compute capability ${cc}; wanted ${wanted}; chose ${chosen.path} (${chosen.variant} build, runs on ${chosen.device}): ${chosen.reason}` });

// 3. the chosen build runs a model: greedy stories260K on 'auto' equals the CPU's tokens
const model = join(pkg, 'shared', 'models', 'stories260K', 'stories260K.gguf');
let greedyOk = false;
let notes = '';
if (existsSync(model)) {
  const args = ['generate', '--model', model, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '64', '--json'];
  try {
    const auto = JSON.parse(run(args));
    const cpu = JSON.parse(run(args, { LLAMA_CUDA_BACKEND: 'cpu' }));
    greedyOk = JSON.stringify(auto.tokens) === JSON.stringify(cpu.tokens);
    notes = `auto ${auto.timings.tokens_per_second} tok/s, cpu ${cpu.timings.tokens_per_second} tok/s; ${greedyOk ? 'tokens equal' : `tokens differ: ${auto.tokens.join(' ')} vs ${cpu.tokens.join(' ')}`}`;
  } catch (err) {
    notes = `generate failed: ${String(err.stderr ?? err.message).split('\n')[0]}`;
  }
} else {
  notes = `${model} was not packed`;
}
console.log(`greedy stories260K through the installed layout: ${notes}`);
recordRow({ name: 'check.loader.greedy.stories260K', device: gpu, value: greedyOk ? 1 : 0, unit: 'pass', notes });
process.exit(chosenOk && greedyOk ? 0 : 1);
