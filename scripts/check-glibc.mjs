#!/usr/bin/env node
// node scripts/check-glibc.mjs [file.node ...]
//
// Lists the versioned symbols (GLIBC_*, GLIBCXX_*, CXXABI_*) each native build imports, from
// `objdump -T` (the dynamic symbol table), and fails when one needs a glibc newer than the floor
// the package promises (2.34: RHEL 9, Ubuntu 22.04, Debian 12). libstdc++ stays dynamic, so the
// GLIBCXX floor is reported too (GLIBCXX_3.4.30 = GCC 12's libstdc++). Without arguments it checks
// every .node under prebuilds/ and cuda/*/prebuilds/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const GLIBC_FLOOR = '2.34';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function cmp(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  }
  return 0;
}

function nodeFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? nodeFiles(path.join(dir, e.name)) : e.name.endsWith('.node') ? [path.join(dir, e.name)] : [],
  );
}

const files = process.argv.length > 2
  ? process.argv.slice(2)
  : [path.join(repo, 'prebuilds'), ...(existsSync(path.join(repo, 'cuda')) ? readdirSync(path.join(repo, 'cuda')).map((d) => path.join(repo, 'cuda', d, 'prebuilds')) : [])].flatMap(nodeFiles);
if (files.length === 0) {
  console.error('check-glibc: no .node files found (run npm run prebuild first)');
  process.exit(1);
}
let failed = false;
const overall = {};
for (const file of files) {
  const dump = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const max = {};
  for (const m of dump.matchAll(/\b(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)\b/g)) {
    const [, lib, v] = m;
    if (max[lib] === undefined || cmp(v, max[lib]) > 0) max[lib] = v;
    if (overall[lib] === undefined || cmp(v, overall[lib]) > 0) overall[lib] = v;
  }
  const bad = max.GLIBC !== undefined && cmp(max.GLIBC, GLIBC_FLOOR) > 0;
  failed ||= bad;
  const row = ['GLIBC', 'GLIBCXX', 'CXXABI'].map((l) => `${l}_${max[l] ?? '-'}`).join('  ');
  console.log(`${bad ? 'FAIL' : 'ok  '} ${row}  ${path.relative(repo, file)}`);
}
console.log(`floors: ${['GLIBC', 'GLIBCXX', 'CXXABI'].map((l) => `${l}_${overall[l] ?? '-'}`).join('  ')} (GLIBC must be <= ${GLIBC_FLOOR})`);
if (failed) {
  console.error(`check-glibc: a build needs a glibc newer than ${GLIBC_FLOOR}`);
  process.exit(1);
}
