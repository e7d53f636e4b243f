/**
 * The page's side of the inference worker (comlink `wrap`). Loaded lazily (see ./lazy.ts): importing
 * this module starts nothing; the worker is created on the first `inference()` call. Tensors sent to
 * the worker travel as Transferable ArrayBuffers (`sendHidden`).
 */
import * as Comlink from 'comlink';
import type { Hidden } from '../../../engine/llm/runtime.js';
import type { InferenceApi } from '../../../workers/inference/api.js';

export type * from '../../../workers/inference/api.js';
export type { BackendDecision } from '../../../engine/llm/backend.js';

let worker: Worker | null = null;
let remote: Comlink.Remote<InferenceApi> | null = null;

/** The inference worker (one per page), started on first use. */
export function inference(): Comlink.Remote<InferenceApi> {
  if (!remote) {
    worker = new Worker(new URL('../../../workers/inference/worker.ts', import.meta.url), {
      type: 'module',
      name: 'hearthnet-inference',
    });
    remote = Comlink.wrap<InferenceApi>(worker);
  }
  return remote;
}

/** Stops the worker (every model, session and KV cache in it goes with it). */
export function terminateInference(): void {
  worker?.terminate();
  worker = null;
  remote = null;
}

/** A callback the worker may call back (progress, streamed tokens). */
export const callback = <F extends (...a: never[]) => unknown>(f: F): F & Comlink.ProxyMarked =>
  Comlink.proxy(f);

/** Hands a hidden-state tensor to the worker without copying (the caller's buffer is detached). */
export function sendHidden(h: Hidden): Hidden {
  const own =
    h.data.byteOffset === 0 && h.data.byteLength === h.data.buffer.byteLength ? h.data : h.data.slice();
  return Comlink.transfer({ dtype: h.dtype, dims: h.dims, data: own }, [own.buffer as ArrayBuffer]);
}

export { listInstalled, deleteInstalled, type InstalledModel } from '../../../workers/inference/store.js';
