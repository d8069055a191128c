/**
 * Before the tests: make sure dist/ (used by the CLI tests, which run the real `llama-cuda`
 * command) is at least as new as lib/, rebuilding the TypeScript when it is not.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const built = path.join(root, 'dist', 'esm', 'cli', 'main.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newest(path.join(root, 'lib'))) {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build-ts.mjs')], { cwd: root, stdio: 'inherit' });
  }
}
