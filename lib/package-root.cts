// The package root (the folder holding llama-cuda's package.json), found from this file's own
// folder. Written as CommonJS so `__dirname` exists in both the ESM and the CommonJS builds.
import * as fs from 'node:fs';
import * as path from 'node:path';

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        const name: unknown = JSON.parse(fs.readFileSync(manifest, 'utf8')).name;
        if (name === 'llama-cuda') return dir;
      } catch {
        // not ours (or unreadable): keep climbing
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`llama-cuda: cannot find the package root above ${start}`);
    dir = parent;
  }
}

export const packageRoot: string = findPackageRoot(__dirname);
