/**
 * ORT-backed seams of M26 from a split manifest (`hn-model-manifest/1`): a host's `InstalledShardModel` (any
 * contiguous union of the manifest's shards, chained in one KV context) and the orchestrator's head/tail model.
 * Every file is verified against the manifest SHA-256 before it is loaded (weights_mismatch otherwise).
 */
import { sha256Hex } from '../core/hash.js';
import { utf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { OnnxLocalLlm, type LoadOptions, type ModelSource } from '../llm/local.js';
import type { ModelManifest } from '../llm/manifest.js';
import { lastPosition, type ShardRunner, type ShardSession } from '../llm/runtime.js';
import type { InstalledShardModel, OrchestratorModel, RangeBackend, RangeSession } from './types.js';

function atomsIn(m: ModelManifest, lo: number, hi: number) {
  const atoms = m.shards.filter((s) => s.layer_range[0] >= lo && s.layer_range[1] <= hi);
  let cursor = lo;
  for (const a of atoms) {
    if (a.layer_range[0] !== cursor) break;
    cursor = a.layer_range[1] + 1;
  }
  if (cursor !== hi + 1)
    throw new HnError('bad_request', `layers ${lo}-${hi} are not a union of this split's shards`, {
      details: { shards: m.shards.map((s) => s.layer_range.join('-')) },
    });
  return atoms;
}

class ChainSession implements RangeSession {
  constructor(private readonly parts: ShardSession[]) {}
  get pastLength(): number {
    return this.parts[0]!.pastLength;
  }
  async forward(h: Parameters<RangeSession['forward']>[0]) {
    let x = h;
    for (const p of this.parts) x = await p.forward(x);
    return x;
  }
  close(): void {
    for (const p of this.parts) p.close();
  }
}

/** A host's installed split: serves any contiguous union of its shards. */
export function installedFromManifest(
  src: ModelSource,
  m: ModelManifest,
  opts: LoadOptions = {},
): InstalledShardModel {
  const bytesOf = (lo: number, hi: number) =>
    atomsIn(m, lo, hi).reduce(
      (n, a) => n + a.bytes + (a.external_data ?? []).reduce((k, e) => k + e.bytes, 0),
      0,
    );
  return {
    model_id: m.model_id,
    weights_sha256: m.weights_sha256,
    tier: m.tier,
    total_layers: m.dims.total_layers,
    hidden_size: m.dims.hidden_size,
    num_kv_heads: m.dims.num_kv_heads,
    head_dim: m.dims.head_dim,
    max_seq_len: opts.maxSeqLen ?? m.dims.max_seq_len,
    compute_dtype: m.compute_dtype,
    ranges: m.shards.map((s) => [...s.layer_range] as [number, number]),
    rangeBytes: bytesOf,
    async load(lo, hi): Promise<RangeBackend> {
      const atoms = atomsIn(m, lo, hi);
      const llm = await OnnxLocalLlm.fromManifest(src, m, { ...opts, parts: atoms.map((a) => a.shard_id) });
      const runners: ShardRunner[] = llm.splitParts!.shards;
      return {
        layer_range: [lo, hi],
        compute_dtype: m.compute_dtype,
        shard_sha256:
          atoms.length === 1 ? atoms[0]!.sha256 : sha256Hex(utf8(atoms.map((a) => a.sha256).join(','))),
        weight_bytes: bytesOf(lo, hi),
        openSession: () => new ChainSession(runners.map((r) => r.openSession())),
        release: () => llm.close(),
      };
    },
  };
}

/** The orchestrator's head + tail + tokenizer of a split. */
export async function orchestratorFromManifest(
  src: ModelSource,
  m: ModelManifest,
  opts: LoadOptions = {},
): Promise<OrchestratorModel & { close(): Promise<void> }> {
  const llm = await OnnxLocalLlm.fromManifest(src, m, { ...opts, parts: ['head', 'tail'] });
  const { head, tail } = llm.splitParts!;
  if (!head || !tail) throw new HnError('internal_error', 'head or tail missing');
  const tk = llm.tokenizer;
  return {
    model_id: m.model_id,
    weights_sha256: m.weights_sha256,
    tier: m.tier,
    total_layers: m.dims.total_layers,
    hidden_size: m.dims.hidden_size,
    vocab_size: m.dims.vocab_size,
    max_seq_len: llm.info().max_seq_len,
    cut_stats: m.cut_stats,
    embed: (ids) => head.embed(ids),
    logits: (h) => tail.logits(lastPosition(h)),
    encode: (t) => tk.encode(t),
    formatChat: (msgs) => tk.formatChat(msgs),
    decode: (ids) => tk.decode(ids, true),
    eosIds: tk.eosIds,
    close: () => llm.close(),
  };
}
