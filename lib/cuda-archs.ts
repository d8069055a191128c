/**
 * Which native build suits which GPU: the CUDA build families the package ships (one per GPU
 * architecture family, scripts/prebuild.mjs) and the pure choice of candidates from what the
 * driver probe saw and which builds are present. lib/native.ts loads the candidates in order;
 * tests feed this module fake probes and build lists.
 *
 * Compatibility rules (CUDA's): SASS built for sm_XY runs on compute capability X.Z with Z >= Y
 * (same major); sm_90a (Hopper-only instructions) runs on 9.0 only; PTX for compute_90 is
 * JIT-compiled by the driver for any compute capability >= 9.0, never for 8.x.
 */

export type CudaFamily = 'sm80' | 'sm86' | 'sm89' | 'sm90a' | 'ptx';

export interface CudaFamilyInfo {
  readonly family: CudaFamily;
  /** The CMAKE_CUDA_ARCHITECTURES entry it is built with. */
  readonly cmakeArchitectures: string;
  /** How backendInfo().cuda.architectures names the compiled target. */
  readonly target: string;
  readonly gpus: string;
}

export const CUDA_FAMILIES: readonly CudaFamilyInfo[] = [
  { family: 'sm80', cmakeArchitectures: '80-real', target: 'sm_80', gpus: 'A100, A30 (compute capability 8.0)' },
  { family: 'sm86', cmakeArchitectures: '86-real', target: 'sm_86', gpus: 'RTX 30xx, A10, A40, RTX A-series (8.6; also runs on 8.7)' },
  { family: 'sm89', cmakeArchitectures: '89-real', target: 'sm_89', gpus: 'RTX 40xx, L4, L40S (8.9)' },
  { family: 'sm90a', cmakeArchitectures: '90a-real', target: 'sm_90a', gpus: 'H100, H200, GH200 (9.0), with the Hopper-only paths' },
  { family: 'ptx', cmakeArchitectures: '90-virtual', target: 'compute_90', gpus: 'newer GPUs (Blackwell 10.x, 12.x): PTX the driver compiles at first load' },
];

/** The CUDA version the CUDA builds are compiled with needs this driver (CUDA 13.0: r580+). */
export const REQUIRED_DRIVER_VERSION = 13000;

/** What the NVIDIA driver reports (the addon's cudaDriverProbe()). */
export interface DriverProbeResult {
  readonly available: boolean;
  /** 1000 * major + 10 * minor of the newest CUDA the driver supports; 0 when unknown. */
  readonly driverVersion: number;
  readonly devices: readonly { readonly name: string; readonly computeCapability: string; readonly totalMemory: number }[];
  readonly library?: string;
  readonly error?: string;
}

/** A native build found in the package. */
export interface BuildPresent {
  readonly kind: 'cpu' | 'cuda';
  /** CUDA builds: the family, or 'dev' for the all-architecture developer build (npm run build:cuda). */
  readonly family?: CudaFamily | 'dev';
  readonly path: string;
}

export interface BuildCandidate {
  readonly build: BuildPresent;
  /** The compiled target the loaded build must report ('sm_89', 'compute_90'); none for 'dev'. */
  readonly expectTarget?: string;
  /** Why this build fits this GPU. */
  readonly why: string;
}

export interface BuildPlan {
  /** CUDA builds to try, best first (empty when CUDA cannot or should not be used). */
  readonly cuda: readonly BuildCandidate[];
  /** Why CUDA builds were passed over (a GPU too old, a family missing, the driver too old...). */
  readonly notes: readonly string[];
  /** The GPU the plan is for (device 0), when the driver saw one. */
  readonly gpu?: { readonly name: string; readonly computeCapability: string };
}

export function formatDriverVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

function parseCc(cc: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(cc);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The families whose code runs on compute capability major.minor, best first. */
export function compatibleFamilies(major: number, minor: number): { family: CudaFamily; why: string }[] {
  const out: { family: CudaFamily; why: string }[] = [];
  const cc = `${major}.${minor}`;
  if (major === 9 && minor === 0) out.push({ family: 'sm90a', why: `sm_90a SASS, built for compute capability 9.0` });
  if (major === 8) {
    // SASS of the same major and a lower or equal minor, the closest first
    for (const [fam, m] of [['sm89', 9], ['sm86', 6], ['sm80', 0]] as const) {
      if (m <= minor) out.push({ family: fam, why: m === minor ? `sm_8${m} SASS, built for compute capability ${cc}` : `sm_8${m} SASS, which runs on compute capability ${cc} (same major, lower minor)` });
    }
  }
  if (major >= 9) out.push({ family: 'ptx', why: `compute_90 PTX, JIT-compiled by the driver for compute capability ${cc}` });
  return out;
}

/**
 * The CUDA builds to try for this GPU, in order. `probe` undefined means no loaded build could
 * ask the driver (builds older than the probe): then every CUDA build present is a candidate and
 * loading it decides. The developer build (cuda/build/Release) comes first when present: a local
 * build wins over prebuilds, as with node-gyp-build.
 */
export function planCudaBuilds(probe: DriverProbeResult | undefined, builds: readonly BuildPresent[]): BuildPlan {
  const cudaBuilds = builds.filter((b) => b.kind === 'cuda');
  const dev = cudaBuilds.filter((b) => b.family === 'dev');
  const devCandidates: BuildCandidate[] = dev.map((b) => ({ build: b, why: 'the developer build (npm run build:cuda, every architecture)' }));
  if (probe === undefined) {
    const rest = CUDA_FAMILIES.flatMap((f) => cudaBuilds.filter((b) => b.family === f.family).map((b) => ({ build: b, expectTarget: f.target, why: `${f.family} build (the driver could not be probed first)` })));
    return { cuda: [...devCandidates, ...rest.reverse()], notes: ['no loaded build could probe the driver: trying each CUDA build'] };
  }
  if (!probe.available) {
    return { cuda: [], notes: [`no usable NVIDIA GPU (${probe.error ?? 'the driver reports none'})`] };
  }
  const gpu = probe.devices[0]!;
  const plan = { name: gpu.name, computeCapability: gpu.computeCapability };
  if (probe.driverVersion > 0 && probe.driverVersion < REQUIRED_DRIVER_VERSION) {
    return {
      cuda: [],
      gpu: plan,
      notes: [`the NVIDIA driver supports CUDA ${formatDriverVersion(probe.driverVersion)}, but the CUDA builds need CUDA ${formatDriverVersion(REQUIRED_DRIVER_VERSION)} (driver r580 or newer)`],
    };
  }
  const cc = parseCc(gpu.computeCapability);
  if (cc === undefined) return { cuda: [], gpu: plan, notes: [`${gpu.name} reports an unreadable compute capability "${gpu.computeCapability}"`] };
  const [major, minor] = cc;
  if (major < 8) {
    return { cuda: [], gpu: plan, notes: [`${gpu.name} has compute capability ${gpu.computeCapability}; the CUDA builds need 8.0 or newer (Ampere, Ada, Hopper, Blackwell)`] };
  }
  const notes: string[] = [];
  const candidates: BuildCandidate[] = [...devCandidates];
  for (const { family, why } of compatibleFamilies(major, minor)) {
    const info = CUDA_FAMILIES.find((f) => f.family === family)!;
    const found = cudaBuilds.filter((b) => b.family === family);
    if (found.length === 0) notes.push(`no ${family} build in this package`);
    for (const b of found) candidates.push({ build: b, expectTarget: info.target, why });
  }
  if (candidates.length === 0) notes.push(`no CUDA build in this package runs on ${gpu.name} (compute capability ${gpu.computeCapability})`);
  return { cuda: candidates, gpu: plan, notes };
}
