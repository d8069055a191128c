import { packageRoot } from './package-root.cjs';
export function root(): string { return packageRoot; }
