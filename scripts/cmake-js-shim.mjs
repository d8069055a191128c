#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (prebuildify 6 only knows how to call a node-gyp
// binary: `--node-gyp <file>`). prebuildify calls `<this> rebuild --target=V --devdir=D --arch=A
// --release` in its working folder and then takes the .node from <cwd>/build/Release; this shim
// builds the addon there with cmake-js instead:
//
//   cmake-js configure -d <repo> --out <cwd>/build --CD<each LC_PREBUILD_CMAKE_ARGS entry>
//   cmake-js build     -d <repo> --out <cwd>/build --target llama_cuda
//
// Configure runs every time (cmake-js build alone keeps a stale cache), so one build folder can
// be reused for several CUDA architectures: the host objects stay, only the .cu files recompile.
// --target is ignored: a Node-API build is the same for every Node version, and cmake-js uses the
// headers of the Node that runs it (already downloaded, so no network is needed).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`cmake-js-shim: expected "rebuild" as node-gyp's command, got ${JSON.stringify(args)}`);
  process.exit(2);
}
const extra = JSON.parse(process.env.LC_PREBUILD_CMAKE_ARGS ?? '[]');
const cmakeJs = createRequire(path.join(repo, 'package.json')).resolve('cmake-js/bin/cmake-js');
const out = path.join(process.cwd(), 'build');
const common = ['-d', repo, '--out', out, ...(args.includes('--debug') ? ['--debug'] : [])];

function run(argv) {
  const r = spawnSync(process.execPath, [cmakeJs, ...argv], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
run(['configure', ...common, ...extra.map((d) => `--CD${d}`)]);
run(['build', ...common, '--target', 'llama_cuda', '--parallel', process.env.LC_PREBUILD_JOBS ?? '2']);
