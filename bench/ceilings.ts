/**
 * The denominators of every benchmark here, measured on the spot: lib/bench/ceilings.ts (shipped
 * with the CLI). Re-exported for scripts under bench/.
 */
export { type Ceilings, measureBandwidth, measureCpuCeilings, measureCudaCeilings } from '../lib/bench/ceilings.js';
