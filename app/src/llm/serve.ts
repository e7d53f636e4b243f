/**
 * The tab serves the model it has loaded on the bus: a `LocalLlm` backed by the inference worker is
 * handed to `node.serveModel`, so `llm.chat@1.0` / `llm.models.list@1.0` answer this tab's Local chat
 * panel and any peer with the capability's trust level. The loaded model lives here (not in a
 * component), so it stays served while the user moves between views.
 */
import { writable, get } from 'svelte/store';
import type { HearthNode } from '../../../engine/index.js';
import { HnError } from '../../../engine/core/errors.js';
import { FEDLEARN_INFERENCE } from '../../../engine/fedlearn/index.js';
import type { GenerateOptions, GeneratedToken, GenerationSummary } from '../../../engine/llm/generate.js';
import type { LocalLlm } from '../../../engine/llm/local.js';
import type { ChatMessage } from '../../../engine/llm/tokenizer.js';
import type {
  LoadedModel,
  LoadProgress,
  LoadRequest,
  StreamedToken,
} from '../../../workers/inference/api.js';
import { loadInferenceClient, type InferenceClient } from './lazy.js';

export interface ServedModel {
  /** the id peers and the panel pass as `params.model` */
  id: string;
  loaded: LoadedModel;
}

/** The model this tab serves on the bus (null: none). */
export const servedModel = writable<ServedModel | null>(null);
let withdraw: (() => void) | null = null;
let genCounter = 0;

/** A LocalLlm whose tokens come from the inference worker (comlink); `signal` stops the worker's generation. */
export function workerLlm(c: InferenceClient, m: LoadedModel): LocalLlm {
  const api = c.inference();
  return {
    info: () => m.info,
    close: () => api.unload(m.handle),
    async *generate(
      input: string | ChatMessage[],
      opts: GenerateOptions = {},
    ): AsyncGenerator<GeneratedToken, GenerationSummary> {
      const { signal, ...gen } = opts;
      if (signal?.aborted) throw new HnError('pipeline_cancelled', 'generation cancelled');
      const id = `bus-${++genCounter}-${Date.now().toString(36)}`;
      const queue: GeneratedToken[] = [];
      let settled = false;
      let wake: (() => void) | null = null;
      const poke = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      const stop = () => {
        api.stop(id).then(
          () => undefined,
          (e: unknown) => console.warn('hearthnet: the inference worker did not stop a generation', e),
        );
      };
      signal?.addEventListener('abort', stop, { once: true });
      const done = api.generate(
        m.handle,
        input,
        { ...gen, id },
        c.callback((t: StreamedToken) => {
          queue.push({ token_id: t.token_id, text: t.text, index: t.index, logprob: t.logprob });
          poke();
        }),
      );
      // settling only wakes the loop; the outcome (value or error) is read by `await done` below
      done.then(
        () => ((settled = true), poke()),
        () => ((settled = true), poke()),
      );
      try {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (settled) break;
          await new Promise<void>((r) => (wake = r));
        }
        const r = await done;
        while (queue.length) yield queue.shift()!;
        if (r.stop_reason === 'cancelled') throw new HnError('pipeline_cancelled', 'generation cancelled');
        return {
          tokens_out: r.tokens_out,
          stop_reason: r.stop_reason,
          ms: r.ms,
          first_token_ms: r.first_token_ms,
          tokens_per_s: r.tokens_per_s,
        };
      } finally {
        signal?.removeEventListener('abort', stop);
        if (!settled) stop(); // the consumer left early: the worker stops too
      }
    },
  };
}

/** Loads a model in the worker (replacing the one served) and serves it on the node's bus. */
export async function loadAndServe(
  node: HearthNode,
  req: LoadRequest,
  onProgress: (p: LoadProgress) => void,
): Promise<ServedModel> {
  const c = await loadInferenceClient();
  await unloadServed();
  const loaded = await c.inference().load(req, c.callback(onProgress));
  const llm = workerLlm(c, loaded);
  const id = loaded.info.model_id;
  try {
    withdraw = node.serveModel(llm, id);
  } catch (e) {
    await c.inference().unload(loaded.handle);
    throw e;
  }
  const served = { id, loaded };
  servedModel.set(served);
  // M28: the fedlearn view may run this model with an adapter (after the user confirms)
  FEDLEARN_INFERENCE.target = {
    model_id: id,
    setAdapter: (a, sessionId) => c.inference().setAdapter(loaded.handle, a, sessionId),
  };
  return served;
}

/** Withdraws the served model from the bus and unloads it from the worker. */
export async function unloadServed(): Promise<void> {
  const cur = get(servedModel);
  withdraw?.();
  withdraw = null;
  servedModel.set(null);
  FEDLEARN_INFERENCE.target = null;
  if (cur) await (await loadInferenceClient()).inference().unload(cur.loaded.handle);
}
