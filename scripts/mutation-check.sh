#!/usr/bin/env bash
# Mutation check (style.md rule 8): plants a wrong index in CUDA kernels, one at a time, in a
# scratch copy of the committed tree, and requires the emulated kernel checks to FAIL on each
# mutant (and to pass on the unmutated tree). The working tree is never touched.
#   bash scripts/mutation-check.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/llama-cuda-mutation.XXXXXX)"
trap 'git -C "$root" worktree remove --force "$work/tree" > /dev/null 2>&1; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/tree" HEAD > /dev/null 2>&1 || { echo "cannot create a worktree" >&2; exit 2; }
cd "$work/tree"

build_and_check() {  # $1: check name; prints the check's summary line; returns its exit status
  cmake -S . -B build -DLLAMA_CUDA_SIMT=ON -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 &&
    cmake --build build -j 2 --target "$1" >> build.log 2>&1 || { echo "build failed"; tail -20 build.log; return 2; }
  ./build/"$1" --quick > run.log 2>&1
  local status=$?
  tail -1 run.log
  return $status
}

# (file, the exact text to replace, its mutant, the check that must catch it)
mutants=(
  "native/cuda/attention_decode.cu|const int len = min(pos[0] + row + 1, capacity);|const int len = min(pos[0] + row, capacity);|cuda_check_attention"
  "native/cuda/matvec.cu|bytes4(qh[r], (raw[r][q] >> 4) & 0x0F0F0F0Fu);|bytes4(qh[r], (raw[r][q] >> 3) & 0x0F0F0F0Fu);|cuda_check_matmul"
  "native/cuda/kv_cache.cu|const int64_t row = pos0 + i;|const int64_t row = pos0 + i + 1;|cuda_check_elementwise"
)

fail=0
for check in cuda_check_attention cuda_check_matmul cuda_check_elementwise; do
  printf 'clean %-24s ' "$check"
  if build_and_check "$check"; then :; else echo "  the unmutated kernels must pass"; fail=1; fi
done
for m in "${mutants[@]}"; do
  IFS='|' read -r file from to check <<< "$m"
  cp "$file" "$file.orig"
  python3 - "$file" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"mutation target not found exactly once in {path}: {old}")
open(path, 'w').write(text.replace(old, new))
PY
  [ $? -eq 0 ] || { fail=1; mv "$file.orig" "$file"; continue; }
  printf 'mutant %-40s ' "$file"
  if build_and_check "$check"; then echo "  NOT caught by $check"; fail=1; else echo "  caught by $check"; fi
  mv "$file.orig" "$file"
done
exit $fail
