/**
 * llama-cuda doctor [--json]
 *
 * Prints what the loader sees and decides (lib/doctor.ts): platform, Node and Node-API, glibc, CPU
 * and SIMD tier, the NVIDIA driver and GPUs (compute capability, memory), the native builds in
 * the package and whether each loads, the one chosen and why, and what to do when something is
 * wrong. --json prints one object with stable snake_case keys.
 */
import { type DoctorReport, GLIBC_FLOOR, doctorReport } from '../doctor.js';
import { type OptionSpecs, UsageError, helpText, optBool, parseArgs } from './args.js';

export const doctorOptions: OptionSpecs = {
  json: { type: 'boolean', description: 'print one JSON object' },
  help: { type: 'boolean', description: 'show this help' },
};

export const doctorUsage = 'usage: llama-cuda doctor [--json]';

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** The --json object (keys are part of the CLI's interface: add, never rename). */
export function doctorJson(r: DoctorReport): unknown {
  return {
    platform: { ...r.platform, glibc_floor: GLIBC_FLOOR },
    package: r.package,
    cpu: r.cpu && { model: r.cpu.model, simd_tier: r.cpu.simdTier, features: r.cpu.features, online_cpus: r.cpu.onlineCpus },
    driver: {
      available: r.driver.available,
      cuda_version: r.driver.cudaVersion,
      meets_requirement: r.driver.meetsRequirement,
      library: r.driver.library,
      error: r.driver.error,
      probed_with: r.driver.probedWith,
    },
    gpus: r.gpus.map((g) => ({ index: g.index, name: g.name, compute_capability: g.computeCapability, memory_bytes: g.memoryBytes, build_family: g.buildFamily })),
    builds: r.builds.map((b) => ({ path: b.path, kind: b.kind, family: b.family, loads: b.loads, error: b.error, architectures: b.architectures, chosen: b.chosen })),
    chosen: r.chosen,
    choose_error: r.chooseError,
    attempts: r.attempts,
    advice: r.advice,
  };
}

export function doctorText(r: DoctorReport): string {
  const lines: string[] = [];
  const p = r.platform;
  lines.push(`llama-cuda ${r.package.version} (${r.package.root})`);
  lines.push(`platform:  ${p.os}-${p.arch}, kernel ${p.release}, glibc ${p.glibc ?? 'none (not glibc)'} (prebuilds need >= ${GLIBC_FLOOR})`);
  lines.push(`node:      ${p.node}, Node-API ${p.napi}`);
  lines.push(r.cpu ? `cpu:       ${r.cpu.model}, ${r.cpu.onlineCpus} CPUs, SIMD tier ${r.cpu.simdTier} (${r.cpu.features.join(' ') || 'no SIMD extensions'})` : 'cpu:       unknown (no build loads)');
  const d = r.driver;
  if (d.available) {
    lines.push(`driver:    NVIDIA driver, CUDA ${d.cudaVersion ?? '?'}${d.meetsRequirement === false ? ' (too old: CUDA 13.0, driver r580+, is needed)' : ''}`);
  } else {
    lines.push(`driver:    ${d.library ? `${d.library} found but unusable${d.cudaVersion ? ` (CUDA ${d.cudaVersion})` : ''}: ` : ''}${d.error ?? 'no NVIDIA driver'}`);
  }
  if (r.gpus.length === 0) lines.push('gpus:      none');
  for (const g of r.gpus) {
    lines.push(`gpu ${g.index}:     ${g.name}, compute capability ${g.computeCapability}, ${gib(g.memoryBytes)}, build family ${g.buildFamily ?? 'none (needs 8.0+)'}`);
  }
  lines.push('builds:');
  if (r.builds.length === 0) lines.push('  none found');
  for (const b of r.builds) {
    const what = b.kind === 'cpu' ? 'cpu' : `cuda ${b.family}`;
    const archs = b.architectures.length > 0 ? ` [${b.architectures.join(' ')}]` : '';
    const state = b.loads ? 'loads' : `does not load: ${b.error}`;
    lines.push(`  ${b.chosen ? '*' : ' '} ${what.padEnd(10)} ${b.path}${archs}: ${state}`);
  }
  if (r.chosen) {
    lines.push(`chosen:    ${r.chosen.path} (${r.chosen.variant} build, runs on ${r.chosen.device})`);
    lines.push(`why:       ${r.chosen.reason}`);
  } else {
    lines.push(`chosen:    nothing: ${r.chooseError ?? ''}`);
  }
  if (r.attempts.length > 0) {
    lines.push('attempts:');
    for (const a of r.attempts) lines.push(`  ${a.ok ? 'ok  ' : 'no  '} ${a.variant}${a.path ? ` ${a.path}` : ''}: ${a.reason}`);
  }
  if (r.advice.length > 0) {
    lines.push('advice:');
    for (const a of r.advice) lines.push(`  - ${a}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runDoctor(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, doctorOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(doctorUsage, doctorOptions));
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`doctor takes no arguments (got ${p.positionals.join(' ')})`);
  const report = doctorReport();
  process.stdout.write(optBool(p, 'json') ? `${JSON.stringify(doctorJson(report), null, 2)}\n` : doctorText(report));
  return report.chosen === null ? 1 : 0;
}
