/**
 * onnxruntime-web session creation. Same code in a tab, a worker and Node: in Node the package's
 * `node` export (dist/ort.node.min.mjs) loads its WASM binary from its own dist folder, so no path
 * needs configuring; in the browser the bundler serves the .wasm next to the module.
 * Execution providers: WebGPU when the environment has an adapter, WASM always as fallback.
 */
import * as ort from 'onnxruntime-web';

export { ort };

export type ExecutionProvider = 'webgpu' | 'wasm';

export interface RuntimeOptions {
  /** Execution providers in order of preference; default: auto (webgpu if an adapter exists, then wasm). */
  executionProviders?: ExecutionProvider[];
  /** WASM threads (1 in tests; threaded WASM in the browser needs COOP/COEP). */
  numThreads?: number;
  /**
   * WebGPU only: keep `present.*` KV outputs in GPU buffers (fed back as the next step's past
   * without a round trip through the CPU). Default true; other outputs always come back to the CPU.
   */
  kvOnGpu?: boolean;
}

/** Upper bound of layer indices for which KV output names are listed (names not in a graph are ignored). */
const MAX_KV_LAYERS = 256;
let kvLocations: Record<string, 'gpu-buffer'> | null = null;
function gpuKvLocations(): Record<string, 'gpu-buffer'> {
  if (!kvLocations) {
    kvLocations = {};
    for (let i = 0; i < MAX_KV_LAYERS; i++) {
      kvLocations[`present.${i}.key`] = 'gpu-buffer';
      kvLocations[`present.${i}.value`] = 'gpu-buffer';
    }
  }
  return kvLocations;
}

/**
 * Where the browser build finds its runtime files (.wasm, and the .mjs glue for the non-bundled
 * builds): URLs served by this origin (bundled as assets), never a CDN. Call before the first session.
 */
export function setWasmPaths(paths: { wasm?: string; mjs?: string } | string): void {
  ort.env.wasm.wasmPaths = paths as typeof ort.env.wasm.wasmPaths;
}

export interface ExternalDataFile {
  /** Path exactly as written in the model's external_data `location` entries. */
  path: string;
  data: Uint8Array;
}

let threadsConfigured = false;

/** Sets process-wide ORT options once (ORT reads env at the first session creation). */
export function configureOrt(opts: RuntimeOptions = {}): void {
  if (threadsConfigured) return;
  ort.env.wasm.numThreads = opts.numThreads ?? 1;
  ort.env.logLevel = 'error';
  threadsConfigured = true;
}

interface GpuLike {
  requestAdapter(): Promise<unknown>;
}

/** ['webgpu', 'wasm'] when `navigator.gpu` yields an adapter, else ['wasm']. */
export async function detectExecutionProviders(): Promise<ExecutionProvider[]> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu) {
    try {
      if (await nav.gpu.requestAdapter()) return ['webgpu', 'wasm'];
    } catch {
      // no usable adapter: fall through to WASM
    }
  }
  return ['wasm'];
}

export interface CreatedSession {
  session: ort.InferenceSession;
  executionProviders: ExecutionProvider[];
}

export async function createSession(
  model: Uint8Array,
  opts: RuntimeOptions & { externalData?: ExternalDataFile[] } = {},
): Promise<CreatedSession> {
  configureOrt(opts);
  const eps = opts.executionProviders ?? (await detectExecutionProviders());
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: eps,
    graphOptimizationLevel: 'all',
  };
  if (eps[0] === 'webgpu' && opts.kvOnGpu !== false) so.preferredOutputLocation = gpuKvLocations();
  if (opts.externalData?.length)
    so.externalData = opts.externalData.map((f) => ({ path: f.path, data: f.data }));
  const session = await ort.InferenceSession.create(model, so);
  return { session, executionProviders: eps };
}
