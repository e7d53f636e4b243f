/**
 * M26 in the tab: the split demo model (`/models/demo/split/`, served by the relay) as the distributed_llm
 * module's model provider. Nothing loads until the Distributed LLM view asks (`prepare`): then the manifest and
 * tokenizer are fetched here (hash-checked) and every ONNX part runs in the inference worker — a served range as
 * shard sessions with their own KV cache (one per X08 session), the orchestrator's head and tail. Activations
 * cross to the worker as Transferable buffers and are never logged or stored.
 */
import type { HearthNode } from '../../../engine/index.js';
import { sha256Hex } from '../../../engine/core/hash.js';
import { HnError } from '../../../engine/core/errors.js';
import {
  provideDistributedModels,
  type DistributedModels,
  type PrepareProgress,
} from '../../../engine/distributed_inference/index.js';
import type {
  InstalledShardModel,
  OrchestratorModel,
  RangeBackend,
  RangeSession,
} from '../../../engine/distributed_inference/types.js';
import { parseManifest, type ModelManifest } from '../../../engine/llm/manifest.js';
import type { Hidden } from '../../../engine/llm/runtime.js';
import { LlmTokenizer } from '../../../engine/llm/tokenizer.js';
import type { LoadProgress } from '../../../workers/inference/api.js';
import { loadInferenceClient, type InferenceClient } from './lazy.js';

export const DEMO_SPLIT_URL = '/models/demo/split/';

async function fetchBytes(base: string, file: string, sha?: string): Promise<Uint8Array> {
  const r = await fetch(new URL(file, new URL(base, location.href)));
  if (!r.ok) throw new HnError('not_found', `${file}: HTTP ${r.status}`);
  const b = new Uint8Array(await r.arrayBuffer());
  if (sha && sha256Hex(b) !== sha)
    throw new HnError('shard_unavailable', `weights_mismatch: ${file} does not match the manifest`);
  return b;
}
const json = (b: Uint8Array): object => JSON.parse(new TextDecoder().decode(b)) as object;

/** The last position of [1,S,E] as [1,1,E] (the tail's input). */
function lastPosition(h: Hidden): Hidden {
  const E = h.dims[2]!;
  const S = h.dims[1]!;
  return { dtype: h.dtype, dims: [1, 1, E], data: h.data.slice((S - 1) * E, S * E) };
}

/** One KV context over a chain of the worker's shard sessions (opened on the first forward). */
class WorkerRangeSession implements RangeSession {
  private ids: Promise<string[]> | null = null;
  private past = 0;
  private closed = false;
  constructor(
    private readonly c: InferenceClient,
    private readonly handle: string,
    private readonly shardIds: string[],
  ) {}
  get pastLength(): number {
    return this.past;
  }
  async forward(h: Hidden): Promise<Hidden> {
    const api = this.c.inference();
    this.ids ??= Promise.all(this.shardIds.map((s) => api.openShardSession(this.handle, s)));
    const ids = await this.ids;
    let x = h;
    for (const id of ids) x = await api.shardForward(id, this.c.sendHidden(x));
    this.past += h.dims[1]!;
    return x;
  }
  close(): void {
    if (this.closed || !this.ids) return;
    this.closed = true;
    const api = this.c.inference();
    void this.ids.then((ids) =>
      Promise.all(ids.map((id) => api.closeShardSession(id))).catch((e: unknown) =>
        console.warn('hearthnet: a shard session did not close in the worker', e),
      ),
    );
  }
}

interface Prepared {
  manifest: ModelManifest;
  tokenizer: LlmTokenizer;
  installed: InstalledShardModel;
}

/** The provider for the split demo model; `prepare` fetches and checks the manifest and tokenizer. */
export function demoDistributedModels(base = DEMO_SPLIT_URL): DistributedModels {
  let ready: Prepared | null = null;
  let preparing: Promise<Prepared> | null = null;
  let orch: Promise<OrchestratorModel> | null = null;

  const prepare = async (onProgress?: (p: PrepareProgress) => void): Promise<Prepared> => {
    onProgress?.({ phase: 'manifest', loaded: 0, total: 0 });
    const manifest = parseManifest(json(await fetchBytes(base, 'manifest.json')));
    const tk = await fetchBytes(
      base,
      manifest.tokenizer?.file ?? 'tokenizer.json',
      manifest.tokenizer?.sha256,
    );
    const tkc = manifest.tokenizer_config
      ? json(await fetchBytes(base, manifest.tokenizer_config.file, manifest.tokenizer_config.sha256))
      : {};
    const tokenizer = new LlmTokenizer(json(tk), tkc);
    const c = await loadInferenceClient();
    const atoms = (lo: number, hi: number) =>
      manifest.shards.filter((s) => s.layer_range[0] >= lo && s.layer_range[1] <= hi);
    const bytesOf = (lo: number, hi: number) => atoms(lo, hi).reduce((n, a) => n + a.bytes, 0);
    const installed: InstalledShardModel = {
      model_id: manifest.model_id,
      weights_sha256: manifest.weights_sha256,
      tier: manifest.tier,
      total_layers: manifest.dims.total_layers,
      hidden_size: manifest.dims.hidden_size,
      num_kv_heads: manifest.dims.num_kv_heads,
      head_dim: manifest.dims.head_dim,
      max_seq_len: manifest.dims.max_seq_len,
      compute_dtype: manifest.compute_dtype,
      ranges: manifest.shards.map((s) => [...s.layer_range] as [number, number]),
      rangeBytes: bytesOf,
      async load(lo, hi): Promise<RangeBackend> {
        const parts = atoms(lo, hi);
        const covered = parts.reduce((n, a) => n + a.layer_range[1] - a.layer_range[0] + 1, 0);
        if (covered !== hi - lo + 1)
          throw new HnError('bad_request', `layers ${lo}-${hi} are not a union of this split's shards`);
        const loaded = await c.inference().load(
          {
            location: { kind: 'url', url: new URL(base, location.href).href },
            mode: 'split',
            parts: parts.map((p) => p.shard_id),
          },
          // the callback returns nothing: its result crosses back to the worker (structured clone)
          c.callback((p: LoadProgress) => {
            onProgressFor?.({ phase: `layers ${lo}-${hi}`, loaded: p.loaded, total: p.total });
          }),
        );
        const shardIds = parts.map((p) => p.shard_id);
        return {
          layer_range: [lo, hi],
          compute_dtype: manifest.compute_dtype,
          shard_sha256:
            parts.length === 1
              ? parts[0]!.sha256
              : sha256Hex(new TextEncoder().encode(parts.map((p) => p.sha256).join(','))),
          weight_bytes: bytesOf(lo, hi),
          openSession: () => new WorkerRangeSession(c, loaded.handle, shardIds),
          release: () => c.inference().unload(loaded.handle),
        };
      },
    };
    onProgress?.({ phase: 'ready', loaded: 1, total: 1 });
    return { manifest, tokenizer, installed };
  };
  let onProgressFor: ((p: PrepareProgress) => void) | undefined;

  const orchestratorModel = async (p: Prepared): Promise<OrchestratorModel> => {
    const c = await loadInferenceClient();
    const loaded = await c.inference().load(
      {
        location: { kind: 'url', url: new URL(base, location.href).href },
        mode: 'split',
        parts: ['head', 'tail'],
      },
      c.callback((x: LoadProgress) => {
        onProgressFor?.({ phase: 'head and tail', loaded: x.loaded, total: x.total });
      }),
    );
    onProgressFor?.({ phase: 'ready', loaded: 1, total: 1 });
    const api = c.inference();
    const m = p.manifest;
    return {
      model_id: m.model_id,
      weights_sha256: m.weights_sha256,
      tier: m.tier,
      total_layers: m.dims.total_layers,
      hidden_size: m.dims.hidden_size,
      vocab_size: m.dims.vocab_size,
      max_seq_len: m.dims.max_seq_len,
      cut_stats: m.cut_stats,
      embed: (ids) => api.headEmbed(loaded.handle, ids),
      logits: (h) => api.tailLogits(loaded.handle, c.sendHidden(lastPosition(h))),
      encode: (t) => p.tokenizer.encode(t),
      formatChat: (msgs) => p.tokenizer.formatChat(msgs),
      decode: (ids) => p.tokenizer.decode(ids, true),
      eosIds: p.tokenizer.eosIds,
    };
  };

  return {
    installed: () => (ready ? [ready.installed] : []),
    async orchestrator(model_id, weights) {
      if (!ready || ready.manifest.model_id !== model_id || ready.manifest.weights_sha256 !== weights)
        return undefined;
      orch ??= orchestratorModel(ready);
      return orch;
    },
    async prepare(onProgress) {
      onProgressFor = onProgress;
      preparing ??= prepare(onProgress).then((p) => (ready = p));
      try {
        const p = await preparing;
        return [{ model_id: p.manifest.model_id, weights_sha256: p.manifest.weights_sha256 }];
      } catch (e) {
        preparing = null;
        throw e;
      }
    },
  };
}

/** The app registers the demo provider for its node (nothing is fetched until the view prepares it). */
export function provideDemoModels(node: HearthNode): void {
  provideDistributedModels(node.id, demoDistributedModels());
}
