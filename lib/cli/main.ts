/**
 * The `llama-cuda` command: dispatches to one subcommand and turns errors into a message and
 * an exit code (2: bad usage, 1: any other failure).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { packageRoot } from '../package-root.cjs';
import { UsageError } from './args.js';
import { benchUsage, runBench } from './bench.js';
import { buildUsage, runBuild } from './build.js';
import { chatUsage, runChat } from './chat.js';
import { doctorUsage, runDoctor } from './doctor.js';
import { convertGqaUsage, runConvertGqa } from './convert-gqa.js';
import { embedUsage, runEmbed } from './embed.js';
import { generateUsage, runGenerate } from './generate.js';
import { inspectUsage, runInspect } from './inspect.js';
import { perplexityUsage, runPerplexity } from './perplexity.js';
import { quantizeUsage, runQuantize } from './quantize.js';
import { runSynth, synthUsage } from './synth.js';
import { runTokenize, tokenizeUsage } from './tokenize.js';

const COMMANDS: Readonly<Record<string, { run: (argv: readonly string[]) => Promise<number>; summary: string; usage: string }>> = {
  generate: { run: runGenerate, summary: 'generate text from a prompt', usage: generateUsage },
  chat: { run: runChat, summary: 'chat with a Llama 2 chat model (one user turn per line of stdin)', usage: chatUsage },
  inspect: { run: runInspect, summary: 'describe a model file and the memory it needs, without loading it', usage: inspectUsage },
  tokenize: { run: runTokenize, summary: 'print the token ids of a text', usage: tokenizeUsage },
  quantize: { run: runQuantize, summary: 'write a Q4_0 or Q8_0 GGUF from any model file this library reads', usage: quantizeUsage },
  synth: { run: runSynth, summary: 'write a GGUF with random weights in a real model shape (for benchmarks)', usage: synthUsage },
  bench: { run: runBench, summary: 'microbenchmarks of every op against measured ceilings (--e2e: whole-model tokens/s)', usage: benchUsage },
  doctor: { run: runDoctor, summary: 'show the platform, NVIDIA driver, GPUs and native builds, and which build is used and why', usage: doctorUsage },
  build: { run: runBuild, summary: 'build the native addon from source (CPU, and CUDA for this GPU when nvcc is found)', usage: buildUsage },
  perplexity: { run: runPerplexity, summary: 'perplexity of a text file, in windows as llama.cpp computes it', usage: perplexityUsage },
  'convert-gqa': { run: runConvertGqa, summary: 'mean-pool key/value heads into fewer (MHA/GQA -> GQA/MQA), write a GGUF', usage: convertGqaUsage },
  embed: { run: runEmbed, summary: 'print the normalized embedding of a text (mean or last-token pooling)', usage: embedUsage },
};

function mainHelp(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `llama-cuda: Llama 2 inference for Node.js\n\nusage: llama-cuda <command> [options]   (llama-cuda <command> --help for its options)\n\nCommands:\n${rows.join('\n')}\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(mainHelp());
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const cmd = COMMANDS[command];
  if (cmd === undefined) {
    process.stderr.write(`llama-cuda: unknown command "${command}"\n\n${mainHelp()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`llama-cuda ${command}: ${err.message}\n${cmd.usage}\n`);
      return 2;
    }
    if (err instanceof LlamaCudaError) {
      process.stderr.write(`llama-cuda ${command}: error [${err.code}]: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
