/**
 * `npm run bench:e2e`: end-to-end speed, llama-bench style (lib/bench/e2e.ts, the same code as
 * `llama-cuda bench --e2e`): pp128 and pp512 prompt processing and tg128 generation at depths
 * 0, 512 and 1024, median of 3 repeats after a warm-up, for stories260K and synthetic models
 * of real shapes (written once into .bench/models/ by `synth`), or for `--model F` files.
 * Decode is held against the read bandwidth over the weight bytes read per token.
 *
 *   npm run bench:e2e [-- --json out.json] [-- --models tinyllama-1.1b.q4_0,...] [-- --model F]...
 *                     [-- --prompts 128,512] [-- --depths 0,512,1024] [-- --repeats 3]
 */
import { runBench } from '../../lib/cli/bench.js';

process.exitCode = await runBench(['--e2e', ...process.argv.slice(2)]);
