/**
 * M28 adapters in the inference worker (digest §9 "Apply"): `setAdapter(handle, bytes)` rebuilds the
 * loaded whole ONNX model with W + (α/r)·Aᵀ·Bᵀ written into its adapted weights (engine/fedlearn
 * onnx-merge) and swaps in a new onnxruntime session, so the same handle now generates with the
 * adapter; `null` restores the base model's bytes. WebLLM and split models cannot take adapters
 * (`base_model_mismatch`). Whether an adapter may be applied at all (consent, base SHA) is decided on
 * the page by the fedlearn service before this is called.
 */
import { HnError } from '../../engine/core/errors.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { weightDeltasOf } from '../../engine/fedlearn/adapters.js';
import { mergeIntoOnnx } from '../../engine/fedlearn/onnx-merge.js';
import type { LoadOptions, LocalLlm, ModelSource, OnnxLocalLlm } from '../../engine/llm/local.js';

/** What a whole ONNX load keeps so the model can be rebuilt with an adapter. */
export interface WholeSource {
  src: ModelSource;
  opts: LoadOptions;
}

export interface AdaptableEntry {
  llm: LocalLlm;
  onnx?: OnnxLocalLlm;
  whole?: WholeSource;
  /** SHA-256 (`sha256:`) of the adapter file in use, if any */
  adapter?: string;
}

export interface AdapterResult {
  handle: string;
  adapter_sha: string | null;
  weights_sha256: string | null;
}

export function adapterApi(
  entry: (handle: string) => AdaptableEntry,
  engine: () => Promise<typeof import('../../engine/llm/local.js')>,
) {
  return {
    async setAdapter(handle: string, adapter: Uint8Array | null): Promise<AdapterResult> {
      const e = entry(handle);
      if (!e.onnx || !e.whole)
        throw new HnError(
          'base_model_mismatch',
          'only a whole ONNX model can take an adapter (not WebLLM, not a split)',
        );
      const deltas = adapter ? weightDeltasOf(adapter) : null; // refused before anything changes
      const { OnnxLocalLlm } = await engine();
      const { src, opts } = e.whole;
      const base = await src.read('model.onnx');
      const bytes = deltas ? mergeIntoOnnx(base, deltas) : base;
      const patched: ModelSource = {
        read: (p) => (p === 'model.onnx' ? Promise.resolve(bytes) : src.read(p)),
        ...(src.exists ? { exists: (p: string) => src.exists!(p) } : {}),
      };
      const next = await OnnxLocalLlm.loadWhole(patched, opts);
      const old = e.onnx;
      e.llm = e.onnx = next;
      if (adapter) e.adapter = `sha256:${sha256Hex(adapter)}`;
      else delete e.adapter;
      await old.close();
      return { handle, adapter_sha: e.adapter ?? null, weights_sha256: next.info().weights_sha256 ?? null };
    },
  };
}

/**
 * Errors cross the worker boundary as plain `{ code, message, details }` objects: comlink would reduce
 * an HnError to name + message and lose the code the UI and callers branch on.
 */
export function plainErrors<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(o))
    out[k] = async (...args: unknown[]) => {
      try {
        return await (f as (...a: unknown[]) => unknown)(...args);
      } catch (e) {
        if (e instanceof HnError)
          throw { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
        throw { code: 'internal_error', message: e instanceof Error ? e.message : String(e) };
      }
    };
  return out as T;
}
