/**
 * The package's two entry points (ESM `import` and CommonJS `require`) as a consumer sees them
 * through package.json "exports", from a separate process.
 */
import { spawnSync } from 'node:child_process';

import { expect, it } from 'vitest';

import { repoRoot } from '../helpers/shared-data.js';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

const probe = `typeof m.loadModel + ' ' + typeof m.loadTokenizer + ' ' + typeof m.LlamaCudaError + ' ' + typeof m.backendInfo + ' ' + m.backendInfo('cpu').variant`;

it('import("llama-cuda") resolves to the ESM build', () => {
  const r = run(['--input-type=module', '-e', `import * as m from 'llama-cuda'; console.log(${probe});`]);
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('function function function function cpu');
});

it('require("llama-cuda") resolves to the CommonJS build', () => {
  const r = run(['-e', `const m = require('llama-cuda'); console.log(${probe}, require.resolve('llama-cuda').includes('dist/cjs'));`]);
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('function function function function cpu true');
});

it('errors thrown by either build carry their code', () => {
  const r = run(['-e', `require('llama-cuda').loadModel('/nonexistent.gguf').catch((e) => console.log(e.name, e.code, e instanceof Error));`]);
  expect(r.stdout).toBe('LlamaCudaError ERR_IO true');
});
