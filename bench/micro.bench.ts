/**
 * `npm run bench`: the microbenchmark suite (lib/bench/, the same code as `llama-cuda bench`):
 * every op at Llama 2 7B/13B/70B and TinyLlama shapes on every backend present, each against
 * the memory bandwidth and matrix rate measured on the spot. Prints the table and writes the
 * §5 rows and the roofline SVG (default `.bench/micro.json` + `.bench/micro.svg`).
 *
 *   npm run bench [-- --json F] [-- --quick] [-- --shapes 7b --ops matmul --dtypes int4,q8_0] ...
 *   (all options: npm run bench -- --help)
 */
import { mkdirSync } from 'node:fs';

import { runBench } from '../lib/cli/bench.js';

const args = process.argv.slice(2);
if (!args.includes('--json') && !args.some((a) => a.startsWith('--json=')) && !args.includes('--help')) {
  mkdirSync('.bench', { recursive: true });
  args.push('--json', '.bench/micro.json');
}
const t0 = performance.now();
const code = await runBench(args);
process.stderr.write(`npm run bench: ${((performance.now() - t0) / 1000).toFixed(1)} s wall\n`);
process.exitCode = code;
