#!/usr/bin/env node
// The llama-cuda command line (lib/cli/main.ts, built into dist/).
import { main } from '../dist/esm/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`llama-cuda: unexpected error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
