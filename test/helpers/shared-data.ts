/**
 * Test data that lives outside the repository, in the shared folder (never copied in).
 *
 *   sharedPath('models', 'stories260K', 'tok512.bin')   absolute path under the shared root
 *   describeWithShared(files, name, fn)                  a describe() that needs those files
 *   itWithShared(files, name, fn)                        the same for a single test
 *
 * The root is $LLAMA_CUDA_SHARED, or `../shared` beside the repository. `files` are paths
 * relative to the root (`'models/stories260K/tok512.bin'`). When one is missing, the block
 * fails under CI=true (data that CI should have) and is skipped with the reason otherwise.
 * `fn` is not even called when skipped, so it may read the files at collection time.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, it } from 'vitest';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function sharedRoot(): string {
  const env = process.env['LLAMA_CUDA_SHARED'];
  return env !== undefined && env !== '' ? path.resolve(repoRoot, env) : path.resolve(repoRoot, '..', 'shared');
}

export function sharedPath(...parts: string[]): string {
  return path.join(sharedRoot(), ...parts);
}

/** The files (relative to the shared root) that do not exist. */
export function missingShared(files: readonly string[]): string[] {
  return files.filter((f) => !existsSync(sharedPath(f)));
}

function isCi(): boolean {
  const ci = process.env['CI'];
  return ci === 'true' || ci === '1';
}

function missingReason(missing: string[]): string {
  return `missing shared test data under ${sharedRoot()}: ${missing.join(', ')} (set LLAMA_CUDA_SHARED)`;
}

export function describeWithShared(files: readonly string[], name: string, fn: () => void): void {
  const missing = missingShared(files);
  if (missing.length === 0) {
    describe(name, fn);
  } else if (isCi()) {
    describe(name, () => {
      it('has its shared test data', () => {
        throw new Error(missingReason(missing));
      });
    });
  } else {
    console.warn(`skipping "${name}": ${missingReason(missing)}`);
    describe(name, () => {
      it.skip(`skipped: ${missingReason(missing)}`, () => {});
    });
  }
}

export function itWithShared(files: readonly string[], name: string, fn: () => void | Promise<void>): void {
  const missing = missingShared(files);
  if (missing.length === 0) {
    it(name, fn);
  } else if (isCi()) {
    it(name, () => {
      throw new Error(missingReason(missing));
    });
  } else {
    console.warn(`skipping "${name}": ${missingReason(missing)}`);
    it.skip(`${name} (skipped: ${missingReason(missing)})`, () => {});
  }
}
