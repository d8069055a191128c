/**
 * backendInfo(): what this machine and this install offer, and what loadModel would choose.
 */
import type { NativeBackendInfo, NativeVariant } from './addon-types.js';
import { type DeviceRequest, type LoadAttempt, loadAddon } from './native.js';

export interface BackendInfo {
  /** The native build that would be used for this device request. */
  readonly variant: NativeVariant;
  readonly device: 'cpu' | 'cuda';
  readonly path: string;
  readonly reason: string;
  readonly attempts: readonly LoadAttempt[];
  readonly native: NativeBackendInfo;
}

export function backendInfo(device?: DeviceRequest): BackendInfo {
  const c = loadAddon(device);
  return { variant: c.variant, device: c.device, path: c.path, reason: c.reason, attempts: c.attempts, native: c.info };
}
