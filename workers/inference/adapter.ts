/**
 * M28 adapters in the inference worker (digest §9 "Apply": `setAdapter(scope, sessionId, bytes)`).
 * Node scope, `setAdapter(handle, bytes)`: rebuilds the loaded whole ONNX model with W + (α/r)·Aᵀ·Bᵀ
 * written into its adapted weights (engine/fedlearn onnx-merge) and swaps in a new onnxruntime session,
 * so the same handle now generates with the adapter for every caller; `null` restores the base bytes.
 * Session scope, `setAdapter(handle, bytes, sessionId)`: a second ORT session of base + adapter is kept
 * for that session id only (at most MAX_ADAPTED_SESSIONS per model, the oldest evicted: each is a full
 * copy of the weights); a generation that names the session id runs it (`llmFor`), everything else runs
 * the handle's own (base or node-applied) session; `null` drops it. WebLLM and split models cannot take
 * adapters (`base_model_mismatch`). Whether an adapter may be applied at all (consent, base SHA) is decided on
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
  /** session-scoped adapted models by session id, oldest first */
  sessions?: Map<string, { llm: OnnxLocalLlm; adapter: string }>;
}

/** Adapted sessions kept per loaded model (each holds a full copy of the weights). */
export const MAX_ADAPTED_SESSIONS = 2;

/** The model a generation runs: the session's adapted one if `sessionId` has one, else the handle's. */
export function llmFor(e: AdaptableEntry, sessionId?: string): LocalLlm {
  return (sessionId !== undefined && e.sessions?.get(sessionId)?.llm) || e.llm;
}

/** Closes every session-scoped model of an entry (on unload). */
export async function closeSessions(e: AdaptableEntry): Promise<void> {
  const all = [...(e.sessions?.values() ?? [])];
  e.sessions?.clear();
  for (const s of all) await s.llm.close();
}

export interface AdapterResult {
  handle: string;
  /** present for session scope */
  session_id?: string;
  adapter_sha: string | null;
  weights_sha256: string | null;
}

export function adapterApi(
  entry: (handle: string) => AdaptableEntry,
  engine: () => Promise<typeof import('../../engine/llm/local.js')>,
) {
  return {
    async setAdapter(handle: string, adapter: Uint8Array | null, sessionId?: string): Promise<AdapterResult> {
      const e = entry(handle);
      if (sessionId !== undefined && (typeof sessionId !== 'string' || !sessionId || sessionId.length > 128))
        throw new HnError('bad_request', 'session_id must be a string of 1..128 characters', {
          field: 'session_id',
        });
      if (!e.onnx || !e.whole)
        throw new HnError(
          'base_model_mismatch',
          'only a whole ONNX model can take an adapter (not WebLLM, not a split)',
        );
      const deltas = adapter ? weightDeltasOf(adapter) : null; // refused before anything changes
      if (sessionId !== undefined && !adapter) return setSession(e, handle, sessionId, null);
      const { OnnxLocalLlm } = await engine();
      const { src, opts } = e.whole;
      const base = await src.read('model.onnx');
      const bytes = deltas ? mergeIntoOnnx(base, deltas) : base;
      const patched: ModelSource = {
        read: (p) => (p === 'model.onnx' ? Promise.resolve(bytes) : src.read(p)),
        ...(src.exists ? { exists: (p: string) => src.exists!(p) } : {}),
      };
      const next = await OnnxLocalLlm.loadWhole(patched, opts);
      if (sessionId !== undefined) return setSession(e, handle, sessionId, { llm: next, adapter: adapter! });
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
 * Session scope: keeps `next` (the session's adapted model, already built) or, with `null`, drops the
 * session's one; the handle's own model stays as it is.
 */
async function setSession(
  e: AdaptableEntry,
  handle: string,
  sessionId: string,
  next: { llm: OnnxLocalLlm; adapter: Uint8Array } | null,
): Promise<AdapterResult> {
  const sessions = (e.sessions ??= new Map());
  const old = sessions.get(sessionId);
  sessions.delete(sessionId);
  const closing = old ? [old.llm] : [];
  const sha = next ? `sha256:${sha256Hex(next.adapter)}` : null;
  if (next && sha) {
    sessions.set(sessionId, { llm: next.llm, adapter: sha });
    for (const [id, s] of sessions) {
      if (sessions.size <= MAX_ADAPTED_SESSIONS) break;
      sessions.delete(id); // oldest first (Map order)
      closing.push(s.llm);
    }
  }
  for (const l of closing) await l.close();
  return {
    handle,
    session_id: sessionId,
    adapter_sha: sha,
    weights_sha256: (next?.llm ?? e.onnx)?.info().weights_sha256 ?? null,
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
