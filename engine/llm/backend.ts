/**
 * Execution-provider choice for the browser: WebGPU when `navigator.gpu` hands out an adapter (and the
 * model's compute dtype is one the adapter can run), WASM otherwise. The decision carries its reason so
 * the UI and stats can show why a model runs where it runs. No `node:` imports: tabs, workers and Node.
 */
import type { ExecutionProvider } from './ort.js';

export type BackendPreference = 'auto' | ExecutionProvider;

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  shader_f16: boolean;
  is_fallback: boolean;
}

export interface BackendDecision {
  backend: ExecutionProvider;
  /** Why this backend (a fallback names what was missing or what failed). */
  reason: string;
  /** True when WebGPU was wanted (auto or asked for) but WASM is used. */
  fallback: boolean;
  /** Compute dtype the session runs in. */
  compute_dtype: 'float32' | 'float16';
  adapter?: AdapterSummary;
}

interface GpuAdapterLike {
  features: { has(f: string): boolean };
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
}
interface GpuLike {
  requestAdapter(o?: object): Promise<GpuAdapterLike | null>;
}

/** The WebGPU adapter as the environment offers it, or why there is none. */
export async function probeWebGpu(): Promise<{ adapter?: AdapterSummary; missing?: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (!nav) return { missing: 'no navigator (not a browser)' };
  if (!nav.gpu)
    return {
      missing:
        (globalThis as { isSecureContext?: boolean }).isSecureContext === false
          ? 'WebGPU needs a secure context (https or localhost)'
          : 'this browser exposes no WebGPU (navigator.gpu is missing)',
    };
  let a: GpuAdapterLike | null;
  try {
    a = await nav.gpu.requestAdapter();
  } catch (e) {
    return { missing: `requestAdapter failed: ${(e as Error).message}` };
  }
  if (!a) return { missing: 'navigator.gpu.requestAdapter() returned no adapter' };
  return {
    adapter: {
      vendor: a.info?.vendor ?? '',
      architecture: a.info?.architecture ?? '',
      description: a.info?.description ?? '',
      shader_f16: a.features.has('shader-f16'),
      is_fallback: a.info?.isFallbackAdapter ?? false,
    },
  };
}

/**
 * Picks the backend for a model whose weights compute in `modelDtype`. A float16 model on an adapter
 * without shader-f16 cannot run its fp16 kernels on the GPU: it goes to WASM (fp32 compute there).
 */
export async function decideBackend(
  pref: BackendPreference = 'auto',
  modelDtype: 'float32' | 'float16' = 'float32',
): Promise<BackendDecision> {
  if (pref === 'wasm')
    return { backend: 'wasm', reason: 'WASM was asked for', fallback: false, compute_dtype: 'float32' };
  const probe = await probeWebGpu();
  if (!probe.adapter)
    return {
      backend: 'wasm',
      reason: `WebGPU unavailable: ${probe.missing}; running on WASM`,
      fallback: true,
      compute_dtype: 'float32',
    };
  const adapter = probe.adapter;
  if (modelDtype === 'float16' && !adapter.shader_f16)
    return {
      backend: 'wasm',
      reason: 'the WebGPU adapter lacks shader-f16 and this model is fp16; running on WASM (fp32 compute)',
      fallback: true,
      compute_dtype: 'float32',
      adapter,
    };
  const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  return {
    backend: 'webgpu',
    reason: `WebGPU adapter ${name}${adapter.is_fallback ? ' (software fallback adapter)' : ''}${
      adapter.shader_f16 ? ', shader-f16' : ', no shader-f16: fp32 compute'
    }`,
    fallback: false,
    compute_dtype: adapter.shader_f16 ? modelDtype : 'float32',
    adapter,
  };
}

/** The decision after a WebGPU session failed to load or run: WASM, with the failure as the reason. */
export function fallbackAfterFailure(prev: BackendDecision, err: unknown): BackendDecision {
  const msg = err instanceof Error ? err.message : String(err);
  return {
    backend: 'wasm',
    reason: `WebGPU failed (${msg.slice(0, 300)}); fell back to WASM`,
    fallback: true,
    compute_dtype: 'float32',
    ...(prev.adapter ? { adapter: prev.adapter } : {}),
  };
}
