/**
 * M27 (digest §8): the `OrtEmbedder` run inside the inference worker, behind the engine's `Embedder`
 * interface. The worker side (`embedApi`) keeps loaded encoders by handle and returns their vectors;
 * the page side (`WorkerEmbedder`) is an `Embedder` over the worker's comlink remote. The encoder code is
 * the same `OrtEmbedder`, so the worker path gives the same (bit-identical) vectors. Texts are never logged.
 */
import { HnError } from '../../engine/core/errors.js';
import type { Embedder } from '../../engine/moe/embedder.js';
import type { OrtEmbedder, OrtEmbedderOptions } from '../../engine/moe/ort_embedder.js';

export interface LoadedEmbedder {
  handle: string;
  id: string;
  dim: number;
  threshold: number;
}

/** The embedding part of the inference worker's API. */
export interface EmbedApi {
  embedLoad(
    model: Uint8Array,
    tokenizerJson: object,
    tokenizerConfig?: object,
    opts?: OrtEmbedderOptions,
  ): Promise<LoadedEmbedder>;
  embed(handle: string, texts: string[]): Promise<Float64Array[]>;
  embedClose(handle: string): Promise<void>;
}

/** Worker side. `ready` configures onnxruntime-web first (the worker's bundled .wasm path). */
export function embedApi(ready: () => Promise<unknown> = async () => undefined): EmbedApi {
  const loaded = new Map<string, OrtEmbedder>();
  let seq = 0;
  const get = (h: string) => {
    const e = loaded.get(h);
    if (!e) throw new HnError('not_found', `no loaded embedder ${h}`);
    return e;
  };
  return {
    async embedLoad(model, tokenizerJson, tokenizerConfig = {}, opts = {}) {
      await ready();
      const { OrtEmbedder } = await import('../../engine/moe/ort_embedder.js');
      const e = await OrtEmbedder.load(model, tokenizerJson, tokenizerConfig, opts);
      const handle = `emb-${++seq}`;
      loaded.set(handle, e);
      return { handle, id: e.id, dim: e.dim, threshold: e.threshold };
    },
    async embed(handle, texts) {
      if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string'))
        throw new HnError('bad_request', 'texts must be an array of strings');
      return get(handle).embed(texts);
    },
    async embedClose(handle) {
      const e = get(handle);
      loaded.delete(handle);
      await e.close();
    },
  };
}

/** Page side: an `Embedder` whose vectors come from an encoder loaded in the inference worker. */
export class WorkerEmbedder implements Embedder {
  private constructor(
    private readonly api: EmbedApi,
    private readonly info: LoadedEmbedder,
  ) {}
  get id() {
    return this.info.id;
  }
  get dim() {
    return this.info.dim;
  }
  get threshold() {
    return this.info.threshold;
  }

  static async load(
    api: EmbedApi,
    model: Uint8Array,
    tokenizerJson: object,
    tokenizerConfig: object = {},
    opts: OrtEmbedderOptions = {},
  ): Promise<WorkerEmbedder> {
    return new WorkerEmbedder(api, await api.embedLoad(model, tokenizerJson, tokenizerConfig, opts));
  }

  embed(texts: readonly string[]): Promise<Float64Array[]> {
    return this.api.embed(this.info.handle, [...texts]);
  }

  close(): Promise<void> {
    return this.api.embedClose(this.info.handle);
  }
}
