#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, with .gpu-run carried along (see
# scripts/pack-gpu-run.mjs): unpacks Node, records the GPU, rebuilds the CUDA addon for this GPU
# if the packed one cannot load (or GPU_RUN_REBUILD=1), runs the GPU tests and the GPU benchmark,
# and writes everything into the output folder ($1, or $OUT):
#   nvidia-smi.txt, doctor.json, doctor.txt, loader-check.log, gpu-tests.log, gpu-bench.log, rows.jsonl,
#   <yyyy-mm-dd>-<device>.json
#   device run:  bash scripts/gpu-run.sh "$OUT"        (carry: [".gpu-run"])
# Exit status: 0 when everything passed, 1 when a test or the benchmark failed, 2 on bad usage or
# a missing package, 3 when there is no usable GPU, 4 when the rebuild failed.
set -uo pipefail
out="${1:-${OUT:-}}"
[ -n "$out" ] || { echo "usage: scripts/gpu-run.sh OUTPUT_DIR" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
pkg="$(cd "$(dirname "$0")/.." && pwd)/.gpu-run/pkg"
[ -f "$pkg/PACKED" ] || { echo "no .gpu-run/pkg: run node scripts/pack-gpu-run.mjs first (and carry .gpu-run)" >&2; exit 2; }
cd "$pkg"
cat PACKED
if [ ! -x node ]; then
  if command -v xz > /dev/null; then xz -dc node.xz > node.tmp; else python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open('node.xz').read())" > node.tmp; fi
  chmod +x node.tmp && mv node.tmp node
fi
export PATH="$pkg:$PATH"
./node --version
if ! nvidia-smi > "$out/nvidia-smi.txt" 2>&1; then
  echo "nvidia-smi failed: no usable NVIDIA GPU here (see $out/nvidia-smi.txt)" | tee -a "$out/nvidia-smi.txt" >&2
  exit 3
fi

# The packed CUDA build targets sm_90a (H100/H200). Rebuild here when it cannot load or cannot run
# a kernel on this GPU (another architecture), or when asked.
addon="$pkg/cuda/build/Release/llama_cuda.node"
probe() { ./node -e "const a = require('$addon'); const why = a.cudaProbe(0); if (why) { console.error(why); process.exit(1); }" 2>&1; }
if [ "${GPU_RUN_REBUILD:-0}" = "1" ] || ! why="$(probe)"; then
  echo "rebuilding the CUDA addon for this GPU (${why:-GPU_RUN_REBUILD=1})"
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
  arch="${cc}-real"
  [ "$cc" = "90" ] && arch="90a-real"
  command -v cmake > /dev/null || { echo "cmake not found: cannot rebuild" >&2; exit 4; }
  cmake -S src -B .gpu-build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CUDA_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch" \
    -DCMAKE_JS_VERSION=8.0.0 "-DCMAKE_JS_INC=$pkg/src/node_modules/node-api-headers/include;$pkg/src/node_modules/node-addon-api" \
    -DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$pkg/cuda/build/Release" > "$out/rebuild.log" 2>&1 &&
    cmake --build .gpu-build -j "$(nproc)" --target llama_cuda >> "$out/rebuild.log" 2>&1 || { echo "rebuild failed: see $out/rebuild.log" >&2; exit 4; }
  why="$(probe)" || { echo "the rebuilt addon cannot run a kernel: $why" >&2; exit 4; }
fi

export LLAMA_CUDA_SHARED="$pkg/shared" GPU_OUT="$out" GPU_MODELS="$pkg/.models"
rm -f "$out/rows.jsonl"
status=0
# the installed layout (prebuilds/ + cuda/<family>/prebuilds/): doctor, the build the loader picks, a model on it
./node test/gpu/loader-check.mjs "$out" 2>&1 | tee "$out/loader-check.log" || status=1
./node --test --test-reporter=spec test/gpu/*.test.mjs 2>&1 | tee "$out/gpu-tests.log" || status=1
./node bench/gpu/run.mjs "$out" 2>&1 | tee "$out/gpu-bench.log" || status=1
echo "results in $out (exit $status)"
exit $status
