/**
 * HearthnetConfig (seed §8, core digest §10): one section per module, snake_case keys identical
 * in TS and TOML. Every Phase-3 module's `enabled` defaults to false, `protocol.enabled` to true.
 * Validation is declarative: each field has a type, default and limits; a bad value is an
 * `invalid_field` error naming the field path, never a silent default. Unknown sections and keys
 * are reported as warnings and ignored (forward compatible).
 */
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { BUILTIN_MODULES, MODULE_SECTIONS, type BuiltinModule, type ModuleName } from '../modules/builtin.js';
import type { AnyModuleDefinition } from '../modules/module.js';
import {
  anyList,
  bool,
  checkField,
  fieldError,
  int,
  NODE_ID_RE,
  num,
  oneOf,
  nullableStr,
  sectionDefaults,
  str,
  strList,
  type ConfigSection,
  type Field,
  type SectionValue,
} from './config-fields.js';
import * as C from './constants.js';
import { HnError } from './errors.js';

export { MODULE_SECTIONS, type ModuleName };

const NODE_ID = NODE_ID_RE;

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
/** The core sections (not switchable modules): section → field → spec. */
export const CORE_SPEC = {
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
} satisfies Record<string, ConfigSection>;

type ModuleSpecs = { [D in BuiltinModule as D['name']]: D['config'] };

/** The declarative shape of the whole config: core sections, then one per built-in module. */
export const CONFIG_SPEC = specFor(BUILTIN_MODULES) as typeof CORE_SPEC & ModuleSpecs;

/** Core sections plus the sections of `modules` (a node with extra modules validates their sections too). */
export function specFor(modules: readonly AnyModuleDefinition[]): Record<string, ConfigSection> {
  const spec: Record<string, ConfigSection> = { ...CORE_SPEC };
  for (const m of modules) {
    if (!m.config || typeof m.config.enabled?.t !== 'string')
      throw new HnError('bad_request', `module ${m.name} has no config section with enabled`);
    spec[m.name] = m.config;
  }
  return spec;
}

type Spec = typeof CONFIG_SPEC;
export type HearthnetConfig = { schema_version: 1 } & {
  readonly [S in keyof Spec]: SectionValue<Spec[S]>;
};
export type SectionName = keyof Spec;
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends any[] ? T[K] : DeepPartial<T[K]>) : T[K];
};
export type ConfigPatch = DeepPartial<Omit<HearthnetConfig, 'schema_version'>>;

export function defaultConfig(spec: Record<string, ConfigSection> = CONFIG_SPEC): HearthnetConfig {
  const out: Record<string, unknown> = { schema_version: 1 };
  for (const [s, fields] of Object.entries(spec)) out[s] = sectionDefaults(fields);
  return out as HearthnetConfig;
}

export interface LoadResult {
  config: HearthnetConfig;
  warnings: string[];
}

/** defaults ⊕ patch → validate → deep-freeze. Throws `invalid_field` naming the path. */
export function resolveConfig(
  patch: unknown,
  base?: HearthnetConfig,
  modules: readonly AnyModuleDefinition[] = BUILTIN_MODULES,
): LoadResult {
  const spec =
    modules === BUILTIN_MODULES ? (CONFIG_SPEC as Record<string, ConfigSection>) : specFor(modules);
  base ??= defaultConfig(spec);
  const warnings: string[] = [];
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  if (patch !== undefined && patch !== null) {
    if (typeof patch !== 'object' || Array.isArray(patch)) throw fieldError('$', 'must be a table');
    for (const [s, secPatch] of Object.entries(patch as Record<string, unknown>)) {
      if (s === 'schema_version') {
        if (secPatch !== 1) throw fieldError('schema_version', 'must be 1');
        continue;
      }
      const sec = spec[s];
      if (!sec) {
        warnings.push(`unknown section [${s}] ignored`);
        continue;
      }
      if (!secPatch || typeof secPatch !== 'object' || Array.isArray(secPatch))
        throw fieldError(s, 'must be a table');
      for (const [k, v] of Object.entries(secPatch as Record<string, unknown>)) {
        const f: Field | undefined = sec[k];
        if (!f) {
          warnings.push(`unknown key ${s}.${k} ignored`);
          continue;
        }
        if (v === undefined) continue;
        out[s]![k] = checkField(f, v, `${s}.${k}`);
      }
    }
  }
  // a section the base lacks (a module added since it was saved) gets its defaults
  for (const [s, fields] of Object.entries(spec)) out[s] ??= sectionDefaults(fields);
  for (const m of modules) {
    const sec = out[m.name] as { enabled: boolean };
    for (const r of m.requires ?? [])
      if (sec.enabled && !(out[r] as { enabled?: boolean } | undefined)?.enabled)
        throw fieldError(`${m.name}.enabled`, `requires ${r}.enabled = true`);
    m.checkConfig?.(sec as never);
  }
  const cfg = out as unknown as HearthnetConfig;
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
export function configFromToml(
  text: string,
  base?: HearthnetConfig,
  modules: readonly AnyModuleDefinition[] = BUILTIN_MODULES,
): LoadResult {
  let parsed: unknown;
  try {
    parsed = parseToml(text);
  } catch (e) {
    const line = (e as { line?: number }).line;
    throw new HnError('invalid_toml', `config file is not valid TOML${line ? ` (line ${line})` : ''}`);
  }
  return resolveConfig(parsed, base, modules);
}

/** Field-level difference between two configs, for showing an import before saving it. */
export function diffConfig(
  a: HearthnetConfig,
  b: HearthnetConfig,
): { field: string; from: unknown; to: unknown }[] {
  const out: { field: string; from: unknown; to: unknown }[] = [];
  const A = a as unknown as Record<string, Record<string, unknown> | undefined>;
  const B = b as unknown as Record<string, Record<string, unknown>>;
  for (const s of Object.keys(B).filter((x) => x !== 'schema_version')) {
    for (const k of Object.keys(B[s] ?? {})) {
      const x = A[s]?.[k];
      const y = B[s]![k];
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ field: `${s}.${k}`, from: x, to: y });
    }
  }
  return out;
}
