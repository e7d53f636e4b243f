/**
 * HearthnetConfig (seed §8, core digest §10): one section per module, snake_case keys identical
 * in TS and TOML. Every Phase-3 module's `enabled` defaults to false, `protocol.enabled` to true.
 * Validation is declarative: each field has a type, default and limits; a bad value is an
 * `invalid_field` error naming the field path, never a silent default. Unknown sections and keys
 * are reported as warnings and ignored (forward compatible).
 */
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import * as C from './constants.js';
import { HnError } from './errors.js';

type Field =
  | { t: 'bool'; d: boolean }
  | { t: 'int'; d: number; min?: number | undefined; max?: number | undefined }
  | { t: 'num'; d: number; min?: number | undefined; max?: number | undefined; minOpen?: boolean }
  | { t: 'str'; d: string; max?: number; re?: RegExp }
  | { t: 'enum'; d: string; of: readonly string[] }
  | { t: 'nullable_str'; d: string | null; re?: RegExp }
  | { t: 'str_list'; d: string[]; re?: RegExp; max?: number }
  | { t: 'any_list'; d: unknown[]; item: (v: unknown, path: string) => void };

const bool = (d: boolean) => ({ t: 'bool' as const, d });
const int = (d: number, min?: number, max?: number) => ({ t: 'int' as const, d, min, max });
const num = (d: number, min?: number, max?: number, minOpen = false) => ({
  t: 'num' as const,
  d,
  min,
  max,
  minOpen,
});
const str = (d: string, max = 256) => ({ t: 'str' as const, d, max });
const oneOf = (d: string, of: readonly string[]) => ({ t: 'enum' as const, d, of });
const nullableStr = (re: RegExp) => ({ t: 'nullable_str' as const, d: null as string | null, re });
const strList = (d: string[], re: RegExp) => ({ t: 'str_list' as const, d, re });
const anyList = (item: (v: unknown, path: string) => void) => ({
  t: 'any_list' as const,
  d: [] as unknown[],
  item,
});

const NODE_ID = /^ed25519:[A-Za-z0-9_-]{43}$/;

function iceServer(v: unknown, path: string) {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw fieldError(path, 'must be a table {urls, username?, credential?}');
  const o = v as Record<string, unknown>;
  const urls = Array.isArray(o.urls) ? o.urls : [o.urls];
  if (urls.length === 0 || !urls.every((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u)))
    throw fieldError(`${path}.urls`, 'must be stun:/turn: URLs');
  for (const k of ['username', 'credential'])
    if (o[k] !== undefined && typeof o[k] !== 'string') throw fieldError(`${path}.${k}`, 'must be a string');
}
function llmBackend(v: unknown, path: string) {
  if (!v || typeof v !== 'object') throw fieldError(path, 'must be a table {name, model, url?}');
  const o = v as Record<string, unknown>;
  if (!['onnx', 'webllm', 'echo'].includes(o.name as string))
    throw fieldError(`${path}.name`, 'must be onnx, webllm or echo');
  if (typeof o.model !== 'string' || !o.model)
    throw fieldError(`${path}.model`, 'must be a non-empty string');
}
function shardSpec(v: unknown, path: string) {
  if (!v || typeof v !== 'object') throw fieldError(path, 'must be a table {model_id, layer_range, tier?}');
  const o = v as Record<string, unknown>;
  if (typeof o.model_id !== 'string' || !o.model_id)
    throw fieldError(`${path}.model_id`, 'must be a non-empty string');
  if (typeof o.layer_range !== 'string' || !/^\d+-\d+$/.test(o.layer_range))
    throw fieldError(`${path}.layer_range`, 'must look like 0-3');
}

/** The declarative shape of the whole config: section → field → spec. */
export const CONFIG_SPEC = {
  identity: {
    auto_generate: bool(true),
    display_name: str('', 64),
    profile: oneOf('spark', ['anchor', 'hearth', 'spark']),
  },
  community: { community_id: nullableStr(NODE_ID), admission: oneOf('open', ['open', 'invite']) },
  transport: {
    mode: oneOf('auto', ['auto', 'direct_only', 'relay_only']),
    ice_servers: anyList(iceServer),
    webrtc_connect_timeout_seconds: int(10, 1, 120),
    max_links: int(16, 1, 64),
  },
  relay: { enabled: bool(true), urls: strList([], /^(wss?|https?):\/\/\S+$/) },
  discovery: { broadcast_channel_enabled: bool(true) },
  bus: { prefer_local: bool(true), local_load_threshold: num(0.8, 0, 1, true) },
  events: { sync_interval_seconds: int(300, 1, 86400), push_on_append: bool(true) },
  auth: {
    enabled: bool(true),
    token_default_ttl_seconds: int(C.TOKEN_DEFAULT_TTL_SECONDS, 1, C.TOKEN_MAX_TTL_SECONDS),
    token_max_ttl_seconds: int(C.TOKEN_MAX_TTL_SECONDS, 1, C.TOKEN_MAX_TTL_SECONDS),
    allow_bearer_tokens: bool(false),
  },
  llm: { backends: anyList(llmBackend) },
  observability: {
    log_level: oneOf('info', ['debug', 'info', 'warning', 'error']),
    metrics_enabled: bool(true),
    persist_logs: bool(false),
  },
  // --- Phase 3 (field lists owned by the module digests) ---
  distributed_llm: {
    enabled: bool(false),
    max_shards_per_pipeline: int(
      C.DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE,
      1,
      C.DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE,
    ),
    shard_heartbeat_seconds: int(C.DISTRIBUTED_LLM_SHARD_HEARTBEAT_SECONDS, 1, 600),
    failover_timeout_seconds: int(C.DISTRIBUTED_LLM_FAILOVER_TIMEOUT_SECONDS, 1, 600),
    min_tokens_per_s: num(C.DISTRIBUTED_LLM_MAX_PIPELINE_LATENCY_TOKENS_PER_S, 0, 1000),
    default_dtype: oneOf(C.DISTRIBUTED_LLM_DEFAULT_DTYPE, ['fp32', 'fp16', 'bf16', 'int8']),
    fallback_to_local: bool(true),
    max_failovers_per_run: int(2, 0, 16),
    allow_self_as_shard: bool(false),
    max_concurrent_pipelines: int(4, 1, 64),
    prefill_chunk_tokens: int(64, 1, 4096),
    serve_shards: bool(false),
    shards: anyList(shardSpec),
    eviction_idle_seconds: int(600, 1, 86400),
    max_vram_mb: int(0, 0, 1 << 20),
  },
  moe: {
    enabled: bool(false),
    top_k_default: int(C.MOE_TOP_K_DEFAULT, 1, 64),
    scorer: oneOf('auto', ['auto', 'rule_based', 'learned']),
    learned_min_samples: int(C.MOE_LEARNED_SCORER_MIN_FEEDBACK_SAMPLES, 1, 1_000_000),
    retrain_every_hours: int(24, 1, 24 * 365),
    auto_route_threshold: num(0.85, 0, 1),
    requests_per_user_per_hour: int(60, 1, 100_000),
    publish_route_events: bool(false),
    handoff_enabled: bool(true),
    handoff_default_timeout_hours: int(C.MOE_HUMAN_HANDOFF_DEFAULT_TIMEOUT_HOURS, 1, 24 * 30),
    handoff_cooldown_hours: int(C.MOE_HUMAN_HANDOFF_COOLDOWN_HOURS, 0, 24 * 30),
    handoff_max_per_day: int(C.MOE_HUMAN_RATE_LIMIT_PER_DAY, 0, 1000),
    allow_external: bool(false),
    share_feedback: bool(true),
  },
  fedlearn: {
    enabled: bool(false),
    max_lora_rank: int(C.FEDLEARN_MAX_LORA_RANK, 1, C.FEDLEARN_MAX_LORA_RANK),
    max_lora_target_modules: int(C.FEDLEARN_MAX_LORA_TARGET_MODULES, 1, C.FEDLEARN_MAX_LORA_TARGET_MODULES),
    max_train_steps: int(C.FEDLEARN_MAX_TRAIN_STEPS, 1, C.FEDLEARN_MAX_TRAIN_STEPS),
    min_participants: int(
      C.FEDLEARN_MIN_PARTICIPANTS,
      C.FEDLEARN_MIN_PARTICIPANTS,
      C.FEDLEARN_MAX_PARTICIPANTS,
    ),
    max_participants: int(
      C.FEDLEARN_MAX_PARTICIPANTS,
      C.FEDLEARN_MIN_PARTICIPANTS,
      C.FEDLEARN_MAX_PARTICIPANTS,
    ),
    dp_noise_scale: num(C.FEDLEARN_DP_NOISE_SCALE_DEFAULT, 0, 100),
    clip_norm: num(C.FEDLEARN_CLIP_NORM_DEFAULT, 0, 1e6),
    submission_max_bytes: int(C.FEDLEARN_SUBMISSION_MAX_BYTES, 1, C.FEDLEARN_SUBMISSION_MAX_BYTES),
    require_secure_aggregation: bool(false),
    auto_apply_aggregated: bool(false),
    training_vram_budget_mb: int(8192, 0, 1 << 20),
    training_disk_budget_mb: int(4096, 0, 1 << 24),
    max_round_minutes: int(120, 1, 7 * 24 * 60),
    takeover_grace_seconds: int(600, 1, 86400),
    announce_min_level: oneOf('anchor', ['member', 'trusted', 'anchor']),
    submission_retention_hours: int(24, 1, 24 * 365),
  },
  lora: {
    enabled: bool(false),
    serial_baud: int(115200, 1200, 4_000_000),
    adapter: oneOf('meshtastic', ['meshtastic', 'rfm95w', 'sx126x']),
    region: oneOf('EU868', ['EU868', 'US915', 'AS923']),
    spreading_factor: int(9, 7, 12),
    bandwidth_khz: int(125, 125, 500),
    coding_rate_denom: int(5, 5, 8),
    tx_power_dbm: int(14, -10, 30),
    beacon_period_seconds: int(C.LORA_BEACON_PERIOD_SECONDS_DEFAULT, 10, 86400),
    panic_burst_count: int(C.LORA_PANIC_BURST_COUNT, 1, 10),
  },
  evidence: {
    enabled: bool(false),
    claim_ttl_days: int(C.EVIDENCE_CLAIM_TTL_DAYS_DEFAULT, 1, 36500),
    dispute_min_trust: num(C.EVIDENCE_DISPUTE_MIN_TRUST, 0, 1),
    max_provenance_depth: int(C.EVIDENCE_MAX_PROVENANCE_DEPTH, 1, C.EVIDENCE_MAX_PROVENANCE_DEPTH),
    attestations_required: int(1, 1, 100),
    ebkh_endpoint: nullableStr(/^https?:\/\/\S+$/),
  },
  civdef: {
    enabled: bool(false),
    region: oneOf('NRW', ['NRW']),
    audit_retention_years: int(C.CIVDEF_AUDIT_RETENTION_YEARS, 1, 100),
    ack_max_per_minute_per_node: int(C.CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE, 1, 1000),
    trust_roots_extra: strList([], NODE_ID),
    require_cosign: bool(false),
  },
  tensor_transport: {
    enabled: bool(false),
    default_dtype: oneOf('fp16', ['fp32', 'fp16', 'bf16', 'int8']),
    chunk_bytes: int(262144, 1024, C.TENSOR_CHUNK_BYTES),
    flow_control_window: int(C.TENSOR_FLOW_CONTROL_WINDOW, 1, 1024),
    compression_threshold_bytes: int(C.TENSOR_COMPRESSION_THRESHOLD_BYTES, 0, 1 << 30),
    compression_level: int(3, 1, 19),
    keepalive_seconds: int(C.TENSOR_KEEPALIVE_SECONDS, 1, 3600),
    max_session_lifetime_seconds: int(
      C.TENSOR_MAX_SESSION_LIFETIME_SECONDS,
      1,
      C.TENSOR_MAX_SESSION_LIFETIME_SECONDS,
    ),
    max_concurrent_sessions: int(64, 1, 4096),
    rx_buffer_bytes_max: int(64 * 1024 * 1024, 1024, 2 ** 31),
    allow_relayed: bool(false),
  },
  protocol: {
    enabled: bool(true),
    supported_versions: strList(['3.0.0'], /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/),
    default_announce_version: str('3.0.0', 64),
    announce_to_peers: bool(true),
    conformance_auto_run_on_startup: bool(false),
    registry_max_entries: int(4096, 1, 1_000_000),
  },
} satisfies Record<string, Record<string, Field>>;

type Spec = typeof CONFIG_SPEC;
type ValueOf<F> = F extends { t: 'bool' }
  ? boolean
  : F extends { t: 'int' | 'num' }
    ? number
    : F extends { t: 'nullable_str' }
      ? string | null
      : F extends { t: 'str_list' }
        ? string[]
        : F extends { t: 'any_list' }
          ? any[]
          : string;
export type HearthnetConfig = { schema_version: 1 } & {
  readonly [S in keyof Spec]: { readonly [K in keyof Spec[S]]: ValueOf<Spec[S][K]> };
};
export type SectionName = keyof Spec;
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends any[] ? T[K] : DeepPartial<T[K]>) : T[K];
};
export type ConfigPatch = DeepPartial<Omit<HearthnetConfig, 'schema_version'>>;

/** The module sections a feature flag can switch (every section that has `enabled`). */
export const MODULE_SECTIONS = [
  'distributed_llm',
  'moe',
  'fedlearn',
  'lora',
  'evidence',
  'civdef',
  'tensor_transport',
  'protocol',
] as const;
export type ModuleName = (typeof MODULE_SECTIONS)[number];

function fieldError(path: string, why: string): HnError {
  return new HnError('invalid_field', `config field ${path} ${why}`, { field: path });
}

export function defaultConfig(): HearthnetConfig {
  const out: Record<string, unknown> = { schema_version: 1 };
  for (const [s, fields] of Object.entries(CONFIG_SPEC)) {
    const sec: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(fields as Record<string, Field>)) sec[k] = structuredClone(f.d);
    out[s] = sec;
  }
  return out as HearthnetConfig;
}

function checkField(f: Field, v: unknown, path: string): unknown {
  switch (f.t) {
    case 'bool':
      if (typeof v !== 'boolean') throw fieldError(path, 'must be true or false');
      return v;
    case 'int':
    case 'num': {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw fieldError(path, 'must be a number');
      if (f.t === 'int' && !Number.isInteger(v)) throw fieldError(path, 'must be an integer');
      if (f.min !== undefined && (v < f.min || (f.t === 'num' && f.minOpen && v === f.min)))
        throw fieldError(path, `must be ${f.t === 'num' && f.minOpen ? '>' : '>='} ${f.min}`);
      if (f.max !== undefined && v > f.max) throw fieldError(path, `must be <= ${f.max}`);
      return v;
    }
    case 'str':
      if (typeof v !== 'string') throw fieldError(path, 'must be a string');
      if (f.max !== undefined && v.length > f.max)
        throw fieldError(path, `must be at most ${f.max} characters`);
      if (f.re && !f.re.test(v)) throw fieldError(path, 'has an invalid format');
      return v;
    case 'enum':
      if (typeof v !== 'string' || !f.of.includes(v))
        throw fieldError(path, `must be one of ${f.of.join(', ')}`);
      return v;
    case 'nullable_str':
      if (v === null) return null;
      if (typeof v !== 'string' || (f.re && !f.re.test(v))) throw fieldError(path, 'has an invalid format');
      return v;
    case 'str_list':
      if (!Array.isArray(v)) throw fieldError(path, 'must be a list');
      v.forEach((x, i) => {
        if (typeof x !== 'string' || (f.re && !f.re.test(x)))
          throw fieldError(`${path}[${i}]`, 'has an invalid format');
      });
      return [...v];
    case 'any_list':
      if (!Array.isArray(v)) throw fieldError(path, 'must be a list');
      v.forEach((x, i) => f.item(x, `${path}[${i}]`));
      return structuredClone(v);
  }
}

export interface LoadResult {
  config: HearthnetConfig;
  warnings: string[];
}

/** defaults ⊕ patch → validate → deep-freeze. Throws `invalid_field` naming the path. */
export function resolveConfig(patch: unknown, base: HearthnetConfig = defaultConfig()): LoadResult {
  const warnings: string[] = [];
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  if (patch !== undefined && patch !== null) {
    if (typeof patch !== 'object' || Array.isArray(patch)) throw fieldError('$', 'must be a table');
    for (const [s, secPatch] of Object.entries(patch as Record<string, unknown>)) {
      if (s === 'schema_version') {
        if (secPatch !== 1) throw fieldError('schema_version', 'must be 1');
        continue;
      }
      const spec = (CONFIG_SPEC as Record<string, Record<string, Field>>)[s];
      if (!spec) {
        warnings.push(`unknown section [${s}] ignored`);
        continue;
      }
      if (!secPatch || typeof secPatch !== 'object' || Array.isArray(secPatch))
        throw fieldError(s, 'must be a table');
      for (const [k, v] of Object.entries(secPatch as Record<string, unknown>)) {
        const f = spec[k];
        if (!f) {
          warnings.push(`unknown key ${s}.${k} ignored`);
          continue;
        }
        if (v === undefined) continue;
        out[s]![k] = checkField(f, v, `${s}.${k}`);
      }
    }
  }
  const cfg = out as unknown as HearthnetConfig;
  if (cfg.distributed_llm.enabled && !cfg.tensor_transport.enabled)
    throw fieldError('distributed_llm.enabled', 'requires tensor_transport.enabled = true');
  if (cfg.fedlearn.min_participants > cfg.fedlearn.max_participants)
    throw fieldError('fedlearn.min_participants', 'must not exceed fedlearn.max_participants');
  if (cfg.auth.token_default_ttl_seconds > cfg.auth.token_max_ttl_seconds)
    throw fieldError('auth.token_default_ttl_seconds', 'must not exceed auth.token_max_ttl_seconds');
  return { config: deepFreeze(cfg), warnings };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The full effective config as TOML (defaults included); null values are left out (TOML has no null). */
export function configToToml(cfg: HearthnetConfig): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, x]) => x !== null)
          .map(([k, x]) => [k, strip(x)]),
      );
    return v;
  };
  return `# HearthNet node configuration (hearthnet-config.toml)\n${stringifyToml(strip(cfg) as Record<string, unknown>)}\n`;
}

/** Parse and validate a TOML config file. Invalid TOML → `invalid_toml`; bad values → `invalid_field`. */
export function configFromToml(text: string, base?: HearthnetConfig): LoadResult {
  let parsed: unknown;
  try {
    parsed = parseToml(text);
  } catch (e) {
    const line = (e as { line?: number }).line;
    throw new HnError('invalid_toml', `config file is not valid TOML${line ? ` (line ${line})` : ''}`);
  }
  return resolveConfig(parsed, base);
}

/** Field-level difference between two configs, for showing an import before saving it. */
export function diffConfig(
  a: HearthnetConfig,
  b: HearthnetConfig,
): { field: string; from: unknown; to: unknown }[] {
  const out: { field: string; from: unknown; to: unknown }[] = [];
  for (const s of Object.keys(CONFIG_SPEC) as SectionName[]) {
    for (const k of Object.keys(CONFIG_SPEC[s])) {
      const x = (a[s] as Record<string, unknown>)[k];
      const y = (b[s] as Record<string, unknown>)[k];
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ field: `${s}.${k}`, from: x, to: y });
    }
  }
  return out;
}
