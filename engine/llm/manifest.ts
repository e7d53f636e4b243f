/**
 * Split-model manifest (`manifest.json`, format `hn-model-manifest/1`) and hash verification.
 * `weights_sha256` is the model identity (`weightsIdentity`): the SHA-256 of the monolithic model
 * file the parts were cut from, or — when its weights sit in external data files — a SHA-256 over
 * the graph file's and every data file's hashes, so it covers every weight byte; every part
 * carries its own SHA-256. A part whose bytes do not hash to the manifest value is refused
 * (`shard_unavailable`, reason `weights_mismatch`) — never loaded silently.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { utf8 } from '../core/encoding.js';

export const MANIFEST_FORMAT = 'hn-model-manifest/1';
export const SHARD_GRAPH_FORMAT = 'hn-decoder-shard/1';

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: (number | string)[];
}

export interface ManifestFile {
  /** Path relative to the manifest. */
  file: string;
  sha256: string;
  bytes: number;
}

export interface ManifestPart extends ManifestFile {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** External weight files of this part (relative paths), hashed like the part itself. */
  external_data?: ManifestFile[];
  nodes: number;
  initializer_bytes: number;
}

export interface ManifestShard extends ManifestPart {
  shard_id: string;
  layer_range: [number, number];
}

export interface CutStat {
  /** Boundary b = residual stream entering layer b (b = total_layers: entering the final norm). */
  boundary: number;
  /** Tensor (or fused-node pair) the cut was taken at, in the source graph. */
  source: string;
  kind: 'tensor' | 'skip_norm_sum';
  rms_p01?: number;
  rms_p99?: number;
}

export interface ModelDims {
  total_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  num_kv_heads: number;
  head_dim: number;
  vocab_size: number;
  max_seq_len: number;
}

export interface ModelManifest {
  format: typeof MANIFEST_FORMAT;
  graph_format: typeof SHARD_GRAPH_FORMAT;
  model_id: string;
  weights_sha256: string;
  tier: string;
  compute_dtype: 'float32' | 'float16';
  dims: ModelDims;
  source: ManifestFile & { external_data?: ManifestFile[]; fused_ops: string[]; quantized_ops: string[] };
  head: ManifestPart;
  tail: ManifestPart;
  shards: ManifestShard[];
  cut_stats: CutStat[];
  tokenizer?: ManifestFile;
  tokenizer_config?: ManifestFile;
  config?: ManifestFile;
  local_equivalents: string[];
  validation?: { prompts: number; steps: number; max_rel_logit_diff: number; tolerance: number };
  created_by: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

function fail(msg: string): never {
  throw new HnError('bad_request', `manifest: ${msg}`);
}

function checkFile(f: unknown, what: string): asserts f is ManifestFile {
  if (!f || typeof f !== 'object') fail(`${what} missing`);
  const o = f as Record<string, unknown>;
  if (typeof o['file'] !== 'string' || o['file'].includes('..') || o['file'].startsWith('/'))
    fail(`${what}.file invalid`);
  if (typeof o['sha256'] !== 'string' || !HEX64.test(o['sha256']))
    fail(`${what}.sha256 is not 64 lower-case hex`);
  if (typeof o['bytes'] !== 'number' || !Number.isInteger(o['bytes']) || o['bytes'] < 0)
    fail(`${what}.bytes invalid`);
}

/** Structural validation of a parsed manifest: formats, hashes, and a contiguous layer cover. */
export function parseManifest(json: unknown): ModelManifest {
  if (!json || typeof json !== 'object') fail('not an object');
  const m = json as ModelManifest;
  if (m.format !== MANIFEST_FORMAT) fail(`format must be ${MANIFEST_FORMAT}`);
  if (m.graph_format !== SHARD_GRAPH_FORMAT) fail(`graph_format must be ${SHARD_GRAPH_FORMAT}`);
  if (typeof m.model_id !== 'string' || m.model_id.length === 0 || m.model_id.length > 128)
    fail('model_id invalid');
  if (typeof m.weights_sha256 !== 'string' || !HEX64.test(m.weights_sha256))
    fail('weights_sha256 is not 64 lower-case hex');
  if (!m.dims || !Number.isInteger(m.dims.total_layers) || m.dims.total_layers < 1)
    fail('dims.total_layers invalid');
  checkFile(m.source, 'source');
  for (const e of m.source.external_data ?? []) checkFile(e, 'source external data');
  if (m.weights_sha256 !== weightsIdentity(m.source, m.source.external_data ?? []))
    fail('weights_sha256 is not the identity of source (+ source.external_data)');
  checkFile(m.head, 'head');
  checkFile(m.tail, 'tail');
  for (const [p, what] of [
    [m.head, 'head'],
    [m.tail, 'tail'],
  ] as const)
    for (const e of p.external_data ?? []) checkFile(e, `${what} external data`);
  if (!Array.isArray(m.shards) || m.shards.length === 0) fail('no shards');
  let cursor = 0;
  for (const s of m.shards) {
    checkFile(s, `shard ${String(s?.shard_id)}`);
    const r = s.layer_range;
    if (!Array.isArray(r) || r.length !== 2 || r[0] !== cursor || !(r[1] >= r[0]))
      fail(`shard ${s.shard_id}: ranges must cover 0..${m.dims.total_layers - 1} contiguously`);
    if (s.shard_id !== shardId(m.model_id, r[0], r[1], m.tier))
      fail(`shard_id ${s.shard_id} does not match its range`);
    for (const e of s.external_data ?? []) checkFile(e, `${s.shard_id} external data`);
    cursor = r[1] + 1;
  }
  if (cursor !== m.dims.total_layers) fail(`shards cover layers 0..${cursor - 1} of ${m.dims.total_layers}`);
  for (const k of ['tokenizer', 'tokenizer_config', 'config'] as const)
    if (m[k] !== undefined) checkFile(m[k], k);
  return m;
}

/**
 * Model identity over every weight byte. A model without external data: the SHA-256 of its graph
 * file (unchanged from before, so existing identities stay valid). With external data: SHA-256 of
 * `hn-weights/1\n` followed by one line `<file name> <sha256> <bytes>\n` for the graph file, then
 * for each data file sorted by name — computable from per-file hashes, in the browser as in Node.
 */
export function weightsIdentity(model: ManifestFile, external: readonly ManifestFile[] = []): string {
  if (external.length === 0) return model.sha256;
  const base = (f: string): string => f.split('/').pop()!;
  const lines = [
    'hn-weights/1',
    `${base(model.file)} ${model.sha256} ${model.bytes}`,
    ...[...external]
      .sort((a, b) => (base(a.file) < base(b.file) ? -1 : base(a.file) > base(b.file) ? 1 : 0))
      .map((f) => `${base(f.file)} ${f.sha256} ${f.bytes}`),
  ];
  return sha256Hex(utf8(lines.join('\n') + '\n'));
}

/** `<model_id>:<lo>-<hi>[:<tier>]` (B4). */
export function shardId(modelId: string, lo: number, hi: number, tier?: string): string {
  return `${modelId}:${lo}-${hi}${tier ? `:${tier}` : ''}`;
}

/** Throws `shard_unavailable` {reason: weights_mismatch} unless sha256(bytes) equals the expected hex. */
export function verifyBytes(bytes: Uint8Array, expected: string, what: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== expected.toLowerCase())
    throw new HnError(
      'shard_unavailable',
      `${what}: SHA-256 mismatch (expected ${expected}, got ${actual}); refusing to load`,
      {
        details: { reason: 'weights_mismatch', part: what, expected, actual },
      },
    );
}
