#!/usr/bin/env node
// npm run prebuild [-- --cpu-only | --cuda-only] [--arch sm80,sm90a,...]
//
// The prebuilt binaries that ship inside the package, made by prebuildify through cmake-js
// (scripts/cmake-js-shim.mjs stands in for node-gyp):
//
//   prebuilds/<platform>-<arch>/llama-cuda.napi.node            the CPU build
//   cuda/<family>/prebuilds/<platform>-<arch>/llama-cuda.napi.node   one CUDA build per family:
//     sm80  sm_80 SASS    A100, A30 (and any 8.x GPU without a closer build)
//     sm86  sm_86 SASS    RTX 30xx, A10, A40, RTX A-series (and 8.7, 8.9)
//     sm89  sm_89 SASS    RTX 40xx, L4, L40S
//     sm90a sm_90a SASS   H100, H200 (Hopper-only instructions; runs on 9.0 only)
//     ptx   compute_90 PTX, JIT-compiled by the driver for any GPU of compute capability >= 9.0
//           that has no SASS build (Blackwell 10.x/12.x)
// (the same table as lib/cuda-archs.ts, which the loader and `llama-cuda build` use.)
//
// Each family is built with -DLLAMA_CUDA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=<one entry>. All
// CUDA families share one build folder (build-pkg/cuda/build): the host C++ objects are compiled
// once and each reconfigure only recompiles the .cu files for the new architecture. CUDA
// families are built when nvcc is found (or --cuda-only, which fails without it). The .node files
// are stripped. Prints the time each build took.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CUDA_PREBUILD_FAMILIES = [
  { family: 'sm80', cmakeArchitectures: '80-real' },
  { family: 'sm86', cmakeArchitectures: '86-real' },
  { family: 'sm89', cmakeArchitectures: '89-real' },
  { family: 'sm90a', cmakeArchitectures: '90a-real' },
  { family: 'ptx', cmakeArchitectures: '90-virtual' },
];

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repo, 'package.json'));

function hasNvcc() {
  return spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0;
}

function prebuildify(opts) {
  const run = require('prebuildify');
  return new Promise((resolve, reject) => run(opts, (err) => (err ? reject(err) : resolve())));
}

/** Builds one variant into <out>/prebuilds/<platform>-<arch>/ and returns the .node path and seconds. */
async function buildOne(label, stageDir, out, cmakeArgs) {
  mkdirSync(stageDir, { recursive: true });
  const tuple = `${process.platform}-${process.arch}`;
  rmSync(path.join(out, 'prebuilds', tuple), { recursive: true, force: true });
  process.env.LC_PREBUILD_CMAKE_ARGS = JSON.stringify(cmakeArgs);
  console.log(`\n== prebuild ${label}: cmake ${cmakeArgs.map((a) => `-D${a}`).join(' ') || '(CPU)'}`);
  const start = process.hrtime.bigint();
  await prebuildify({
    napi: true,
    strip: true,
    name: 'llama-cuda.napi', // file llama-cuda.napi.node (node-gyp-build reads the napi tag)
    cwd: stageDir,
    out,
    nodeGyp: path.join(repo, 'scripts', 'cmake-js-shim.mjs'),
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const dir = path.join(out, 'prebuilds', tuple);
  const file = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.node')));
  return { label, file: path.relative(repo, file), seconds, bytes: statSync(file).size };
}

async function main(argv) {
  const cpuOnly = argv.includes('--cpu-only');
  const cudaOnly = argv.includes('--cuda-only');
  const archIdx = argv.indexOf('--arch');
  const wanted = archIdx >= 0 ? (argv[archIdx + 1] ?? '').split(',').filter(Boolean) : CUDA_PREBUILD_FAMILIES.map((f) => f.family);
  for (const w of wanted) {
    if (!CUDA_PREBUILD_FAMILIES.some((f) => f.family === w)) {
      throw new Error(`unknown --arch ${w}: expected one of ${CUDA_PREBUILD_FAMILIES.map((f) => f.family).join(', ')}`);
    }
  }
  const stageRoot = path.join(repo, 'build-pkg');
  const results = [];
  if (!cudaOnly) results.push(await buildOne('cpu', path.join(stageRoot, 'cpu'), repo, []));
  const nvcc = hasNvcc();
  if (cudaOnly && !nvcc) throw new Error('--cuda-only: nvcc (CUDA 13) is not on PATH');
  if (!cpuOnly && nvcc) {
    for (const f of CUDA_PREBUILD_FAMILIES.filter((f) => wanted.includes(f.family))) {
      results.push(await buildOne(f.family, path.join(stageRoot, 'cuda'), path.join(repo, 'cuda', f.family), [
        'LLAMA_CUDA_CUDA=ON',
        `CMAKE_CUDA_ARCHITECTURES=${f.cmakeArchitectures}`,
      ]));
    }
  } else if (!cpuOnly) {
    console.log('\n== nvcc not found: CUDA prebuilds skipped');
  }
  console.log('\nprebuild   seconds   MiB  file');
  for (const r of results) {
    console.log(`${r.label.padEnd(9)} ${r.seconds.toFixed(0).padStart(8)} ${(r.bytes / 2 ** 20).toFixed(1).padStart(5)}  ${r.file}`);
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`prebuild: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
