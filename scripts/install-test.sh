#!/usr/bin/env bash
# The install test (CI runs it after the prebuilds): the package as a user gets it.
#   1. npm pack (scripts skipped: dist/ and the prebuilds must already be built) and check that the
#      CPU prebuild is in the tarball, and every CUDA family's when nvcc is here;
#   2. install the tarball into a fresh temporary project with no network (npm install --offline:
#      its dependencies (node-gyp-build, tinybench) come from the npm cache that the install filled);
#   3. from that project: a TypeScript file type-checked with the repository's tsc (types resolve
#      for `import { loadModel } from 'llama-cuda'`) and run, plain ESM, and CommonJS require,
#      each loading stories260K and generating greedily the known story start;
#   4. `npx llama-cuda doctor` from the installed package;
#   5. print the packed and installed sizes, and fail when the install exceeds 40 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
shared=$(cd "${LLAMA_CUDA_SHARED:-../shared}" && pwd)
model="$shared/models/stories260K/stories260K.bin"
tok="$shared/models/stories260K/tok512.bin"
[ -f "$model" ] && [ -f "$tok" ] || { echo "install-test: missing $model or $tok (set LLAMA_CUDA_SHARED)" >&2; exit 1; }
[ -f dist/esm/index.js ] || { echo "install-test: dist/ is not built (npm run build:ts)" >&2; exit 1; }
limit=$((40 * 1000 * 1000))
tuple="$(node -p 'process.platform + "-" + process.arch')"

work=$(mktemp -d "${TMPDIR:-/tmp}/llama-cuda-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== npm pack"
npm pack --ignore-scripts --silent --pack-destination "$work" > "$work/pack.txt"
tarball="$work/$(tail -n 1 "$work/pack.txt")"
tar tzf "$tarball" > "$work/contents.txt"
grep -q "^package/prebuilds/$tuple/.*\.node$" "$work/contents.txt" || { echo "install-test: the CPU prebuild (prebuilds/$tuple) is not in the tarball" >&2; exit 1; }
if command -v nvcc > /dev/null 2>&1; then
  for fam in sm80 sm86 sm89 sm90a ptx; do
    grep -q "^package/cuda/$fam/prebuilds/$tuple/.*\.node$" "$work/contents.txt" || { echo "install-test: nvcc is here but the cuda/$fam prebuild is not in the tarball" >&2; exit 1; }
  done
fi
if grep -q "^package/build/\|^package/cuda/build/" "$work/contents.txt"; then echo "install-test: a local build folder was packed" >&2; exit 1; fi
grep '\.node$' "$work/contents.txt" | sed 's/^/  /'

echo "== npm install --offline into a fresh project"
app="$work/app"
mkdir -p "$app"
cat > "$app/package.json" <<'JSON'
{ "name": "llama-cuda-install-test", "version": "1.0.0", "private": true, "type": "module" }
JSON
(cd "$app" && npm install --offline --no-audit --no-fund --loglevel=error "$tarball")

export MODEL="$model" TOK="$tok"
expected=', there was a little girl named Lily.'
export EXPECTED="$expected"

echo "== TypeScript: types resolve and the program runs"
cat > "$app/check.ts" <<'TS'
import { type GenerateResult, type LlamaModel, backendInfo, loadModel } from 'llama-cuda';

const model: LlamaModel = await loadModel(process.env.MODEL!, { tokenizer: process.env.TOK!, device: 'auto' });
const result: GenerateResult = await model.complete('Once upon a time', { temperature: 0, maxTokens: 40 });
await model.dispose();
const info = backendInfo();
if (!result.text.startsWith(process.env.EXPECTED!)) throw new Error(`unexpected text: ${JSON.stringify(result.text)}`);
console.log(`ts:  ${info.variant} build on ${info.device} (${info.path}): ${JSON.stringify(result.text.slice(0, 60))}...`);
TS
cat > "$app/tsconfig.json" <<JSON
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
  "outDir": "out", "skipLibCheck": false, "typeRoots": ["$repo/node_modules/@types"], "types": ["node"] },
  "files": ["check.ts"] }
JSON
(cd "$app" && node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json && node out/check.js)

echo "== plain ESM"
cat > "$app/check.mjs" <<'JS'
import { loadModel } from 'llama-cuda';
const model = await loadModel(process.env.MODEL, { tokenizer: process.env.TOK });
const { text } = await model.complete('Once upon a time', { temperature: 0, maxTokens: 40 });
await model.dispose();
if (!text.startsWith(process.env.EXPECTED)) throw new Error(`unexpected text: ${JSON.stringify(text)}`);
console.log(`esm: ${JSON.stringify(text.slice(0, 60))}...`);
JS
(cd "$app" && node check.mjs)

echo "== CommonJS require"
cat > "$app/check.cjs" <<'JS'
const { loadModel } = require('llama-cuda');
(async () => {
  const model = await loadModel(process.env.MODEL, { tokenizer: process.env.TOK });
  const { text } = await model.complete('Once upon a time', { temperature: 0, maxTokens: 40 });
  await model.dispose();
  if (!text.startsWith(process.env.EXPECTED)) throw new Error(`unexpected text: ${JSON.stringify(text)}`);
  console.log(`cjs: ${JSON.stringify(text.slice(0, 60))}...`);
})().catch((e) => { console.error(e); process.exit(1); });
JS
(cd "$app" && node check.cjs)

echo "== npx llama-cuda doctor (from the installed package)"
(cd "$app" && npx --offline --no-install llama-cuda doctor)
(cd "$app" && npx --offline --no-install llama-cuda doctor --json) > "$work/doctor.json"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (!r.chosen) throw new Error("doctor chose nothing: " + r.choose_error);
  if (!r.chosen.path.startsWith("prebuilds/") && !r.chosen.path.startsWith("cuda/")) throw new Error("doctor did not choose a prebuild: " + r.chosen.path);
  if (r.builds.some((b) => b.path.startsWith("build/"))) throw new Error("a local build folder is in the installed package");
' "$work/doctor.json"

packed=$(stat -c %s "$tarball")
installed=$(du -sb "$app/node_modules" | cut -f1)
pkg=$(du -sb "$app/node_modules/llama-cuda" | cut -f1)
node -e 'const [p, i, k] = process.argv.slice(1).map((x) => (Number(x) / 1e6).toFixed(1)); console.log(`== sizes: packed ${p} MB, installed ${i} MB (llama-cuda ${k} MB + dependencies), limit 40 MB`)' "$packed" "$installed" "$pkg"
if [ "$installed" -gt "$limit" ]; then echo "install-test: the install is $installed bytes, over 40 MB" >&2; exit 1; fi
echo "install-test: ok"
