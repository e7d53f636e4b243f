/**
 * Local chat: the `LocalLlm` interface (the ONNX engine here; a web-llm engine can sit behind the
 * same interface) and loaders for a model directory (model.onnx + config.json + tokenizer.json) or a
 * split directory (manifest.json + parts), with hash checks against the manifest.
 */
import { HnError } from '../core/errors.js';
import { fromUtf8 } from '../core/encoding.js';
import { sha256Hex } from '../core/hash.js';
import {
  generateTokens,
  SplitStepModel,
  WholeStepModel,
  type GenerateOptions,
  type GeneratedToken,
  type GenerationSummary,
  type StepModel,
} from './generate.js';
import {
  parseManifest,
  verifyBytes,
  weightsIdentity,
  type ManifestFile,
  type ManifestPart,
  type ModelManifest,
} from './manifest.js';
import { CONFIG_FILES, completeConfig, normaliseConfig, type HfConfig } from './config.js';
import { externalDataLocations } from './onnx-external.js';
import type { ExecutionProvider, ExternalDataFile, RuntimeOptions } from './ort.js';
import {
  DecoderPart,
  HeadRunner,
  ShardRunner,
  TailRunner,
  WholeModelRunner,
  type DecoderDims,
} from './runtime.js';
import { LlmTokenizer, type ChatMessage } from './tokenizer.js';

/** Where model files come from: fetch() in the browser, the file system in Node tools and tests. */
export interface ModelSource {
  read(path: string): Promise<Uint8Array>;
  exists?(path: string): Promise<boolean>;
}

export function fetchSource(baseUrl: string): ModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  return {
    async read(path) {
      const r = await fetch(base + path);
      if (!r.ok) throw new HnError('not_found', `${path}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    async exists(path) {
      const r = await fetch(base + path, { method: 'HEAD' });
      return r.ok;
    },
  };
}

export interface LocalLlmInfo {
  engine: 'onnx' | 'webllm';
  model_id: string;
  weights_sha256?: string;
  layers: number;
  vocab_size: number;
  max_seq_len: number;
  execution_providers: ExecutionProvider[];
  mode: 'whole' | 'split';
}

export interface LocalLlm {
  info(): LocalLlmInfo;
  /** Streams generated tokens; the iterator's return value is the summary. */
  generate(
    input: string | ChatMessage[],
    opts?: GenerateOptions,
  ): AsyncGenerator<GeneratedToken, GenerationSummary>;
  close(): Promise<void>;
}

export type { HfConfig };

async function readJson<T>(src: ModelSource, path: string): Promise<T> {
  let text: string;
  try {
    text = fromUtf8(await src.read(path));
  } catch (e) {
    if (e instanceof HnError && e.code !== 'bad_request') throw e;
    throw new HnError('not_found', `${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new HnError('bad_request', `${path} is not valid JSON`);
  }
}

/** config.json, else genai_config.json (onnxruntime-genai), normalised to config.json names. */
export async function readModelConfig(src: ModelSource): Promise<HfConfig> {
  for (const file of CONFIG_FILES) {
    if (file !== 'config.json' && src.exists && !(await src.exists(file))) continue;
    let json: unknown;
    try {
      json = await readJson<unknown>(src, file);
    } catch (e) {
      if (e instanceof HnError && e.code === 'not_found' && file === 'config.json') continue;
      throw e;
    }
    return completeConfig(normaliseConfig(json, file), file);
  }
  throw new HnError(
    'not_found',
    'no config.json or genai_config.json next to model.onnx: copy the one the exporter wrote (optimum-cli, the onnxruntime-genai builder and save_pretrained all write one)',
  );
}

export function dimsFromConfig(c: HfConfig, maxSeqLen?: number): DecoderDims {
  const H = c.num_attention_heads;
  return {
    num_kv_heads: c.num_key_value_heads ?? H,
    head_dim: c.head_dim ?? c.hidden_size / H,
    hidden_size: c.hidden_size,
    vocab_size: c.vocab_size,
    max_seq_len: maxSeqLen ?? c.max_position_embeddings ?? 2048,
  };
}

function eosFromConfig(c: HfConfig): number[] {
  const e = c.eos_token_id;
  return e === null || e === undefined ? [] : Array.isArray(e) ? e : [e];
}

async function loadTokenizer(
  src: ModelSource,
  cfg: HfConfig,
  files?: {
    tokenizer?: { file: string; sha256: string };
    tokenizer_config?: { file: string; sha256: string };
  },
): Promise<LlmTokenizer> {
  const tkPath = files?.tokenizer?.file ?? 'tokenizer.json';
  const tkBytes = await src.read(tkPath);
  if (files?.tokenizer) verifyBytes(tkBytes, files.tokenizer.sha256, tkPath);
  let tkCfg: object = {};
  const cfgPath = files?.tokenizer_config?.file ?? 'tokenizer_config.json';
  if (files?.tokenizer_config || !src.exists || (await src.exists(cfgPath))) {
    try {
      const b = await src.read(cfgPath);
      if (files?.tokenizer_config) verifyBytes(b, files.tokenizer_config.sha256, cfgPath);
      tkCfg = JSON.parse(fromUtf8(b)) as object;
    } catch (e) {
      if (files?.tokenizer_config || (e instanceof HnError && e.code === 'shard_unavailable')) throw e;
    }
  }
  return new LlmTokenizer(JSON.parse(fromUtf8(tkBytes)) as object, tkCfg, eosFromConfig(cfg));
}

export async function readPart(
  src: ModelSource,
  p: ManifestPart,
  label: string,
): Promise<{ bytes: Uint8Array; externalData: ExternalDataFile[] }> {
  const bytes = await src.read(p.file);
  verifyBytes(bytes, p.sha256, `${label} (${p.file})`);
  const externalData: ExternalDataFile[] = [];
  for (const e of p.external_data ?? []) {
    let data: Uint8Array;
    try {
      data = await src.read(e.file);
    } catch (err) {
      if (!(err instanceof HnError) || err.code !== 'not_found') throw err;
      throw new HnError(
        'shard_unavailable',
        `${label}: its external data file ${e.file} is missing (${err.message}); refusing to load — copy the whole split folder`,
        { details: { reason: 'data_missing', part: label, file: e.file } },
      );
    }
    verifyBytes(data, e.sha256, `${label} (${e.file})`);
    externalData.push({ path: e.file.split('/').pop()!, data });
  }
  return { bytes, externalData };
}

export interface LoadOptions extends RuntimeOptions {
  /** Expected SHA-256 of model.onnx (whole mode); a mismatch is refused. */
  expectedSha256?: string;
  /** Whole mode: expected hashes of model.onnx's external data files (from split/manifest.json). */
  expectedExternal?: ManifestFile[];
  maxSeqLen?: number;
  /**
   * Split mode only: load just these parts ('head', 'tail', shard ids) — a tab that hosts one shard,
   * or an orchestrator that runs head and tail. Local generation needs all of them.
   */
  parts?: string[];
}

export class OnnxLocalLlm implements LocalLlm {
  private constructor(
    private readonly parts: {
      whole?: WholeModelRunner;
      head?: HeadRunner;
      shards?: ShardRunner[];
      tail?: TailRunner;
    },
    readonly tokenizer: LlmTokenizer,
    private readonly meta: LocalLlmInfo,
    private readonly releasables: DecoderPart[],
  ) {}

  /**
   * A directory with model.onnx (+ the external data files it names, e.g. model.onnx_data),
   * config.json or genai_config.json, tokenizer.json (+ tokenizer_config.json).
   */
  static async loadWhole(src: ModelSource, opts: LoadOptions = {}): Promise<OnnxLocalLlm> {
    const cfg = await readModelConfig(src);
    const dims = dimsFromConfig(cfg, opts.maxSeqLen);
    const bytes = await src.read('model.onnx');
    if (opts.expectedSha256) verifyBytes(bytes, opts.expectedSha256, 'model.onnx');
    const modelFile: ManifestFile = {
      file: 'model.onnx',
      sha256: opts.expectedSha256 ?? sha256Hex(bytes),
      bytes: bytes.length,
    };
    const externalData: ExternalDataFile[] = [];
    const extFiles: ManifestFile[] = [];
    for (const loc of externalDataLocations(bytes)) {
      let data: Uint8Array;
      try {
        data = await src.read(loc);
      } catch (e) {
        if (!(e instanceof HnError) || e.code !== 'not_found') throw e;
        throw new HnError(
          'not_found',
          `model.onnx keeps its weights in ${loc}, which is missing (${e.message}): put it next to model.onnx`,
          { details: { reason: 'data_missing', file: loc } },
        );
      }
      const want = opts.expectedExternal?.find((f) => f.file.split('/').pop() === loc);
      if (want) verifyBytes(data, want.sha256, loc);
      externalData.push({ path: loc, data });
      extFiles.push({ file: loc, sha256: want?.sha256 ?? sha256Hex(data), bytes: data.length });
    }
    const sha = weightsIdentity(modelFile, extFiles);
    const part = await DecoderPart.load(bytes, dims, 'model.onnx', { ...opts, externalData });
    const tokenizer = await loadTokenizer(src, cfg);
    return new OnnxLocalLlm(
      { whole: new WholeModelRunner(part) },
      tokenizer,
      {
        engine: 'onnx',
        model_id: cfg._name_or_path ?? 'model',
        weights_sha256: sha,
        layers: cfg.num_hidden_layers,
        vocab_size: cfg.vocab_size,
        max_seq_len: dims.max_seq_len,
        execution_providers: part.executionProviders,
        mode: 'whole',
      },
      [part],
    );
  }

  /** A split directory (manifest.json + head/shards/tail), every file verified against the manifest. */
  static async loadSplit(src: ModelSource, opts: LoadOptions = {}): Promise<OnnxLocalLlm> {
    const manifest = parseManifest(await readJson<unknown>(src, 'manifest.json'));
    return OnnxLocalLlm.fromManifest(src, manifest, opts);
  }

  static async fromManifest(
    src: ModelSource,
    m: ModelManifest,
    opts: LoadOptions = {},
  ): Promise<OnnxLocalLlm> {
    if (opts.expectedSha256 && opts.expectedSha256 !== m.weights_sha256)
      throw new HnError(
        'shard_unavailable',
        `manifest weights_sha256 ${m.weights_sha256} is not the expected ${opts.expectedSha256}`,
        { details: { reason: 'weights_mismatch' } },
      );
    const dims: DecoderDims = {
      num_kv_heads: m.dims.num_kv_heads,
      head_dim: m.dims.head_dim,
      hidden_size: m.dims.hidden_size,
      vocab_size: m.dims.vocab_size,
      max_seq_len: opts.maxSeqLen ?? m.dims.max_seq_len,
    };
    const loaded: DecoderPart[] = [];
    try {
      const load = async (p: ManifestPart, label: string): Promise<DecoderPart> => {
        const { bytes, externalData } = await readPart(src, p, label);
        const part = await DecoderPart.load(bytes, dims, label, { ...opts, externalData });
        loaded.push(part);
        return part;
      };
      const want = (name: string): boolean => !opts.parts || opts.parts.includes(name);
      for (const name of opts.parts ?? [])
        if (name !== 'head' && name !== 'tail' && !m.shards.some((s) => s.shard_id === name))
          throw new HnError('not_found', `the manifest has no part ${name}`);
      const head = want('head') ? new HeadRunner(await load(m.head, 'head')) : undefined;
      const shards: ShardRunner[] = [];
      for (const s of m.shards) if (want(s.shard_id)) shards.push(new ShardRunner(await load(s, s.shard_id)));
      const tail = want('tail') ? new TailRunner(await load(m.tail, 'tail')) : undefined;
      let cfg: HfConfig = {
        vocab_size: m.dims.vocab_size,
        hidden_size: m.dims.hidden_size,
        num_hidden_layers: m.dims.total_layers,
        num_attention_heads: m.dims.num_attention_heads,
      };
      if (m.config) {
        const b = await src.read(m.config.file);
        verifyBytes(b, m.config.sha256, m.config.file);
        const file =
          m.config.file.split('/').pop() === 'genai_config.json' ? 'genai_config.json' : 'config.json';
        cfg = { ...cfg, ...normaliseConfig(JSON.parse(fromUtf8(b)) as unknown, file) };
      }
      if (!m.tokenizer) throw new HnError('not_found', 'manifest names no tokenizer');
      const tokenizer = await loadTokenizer(src, cfg, {
        tokenizer: m.tokenizer,
        ...(m.tokenizer_config ? { tokenizer_config: m.tokenizer_config } : {}),
      });
      return new OnnxLocalLlm(
        { ...(head ? { head } : {}), shards, ...(tail ? { tail } : {}) },
        tokenizer,
        {
          engine: 'onnx',
          model_id: m.model_id,
          weights_sha256: m.weights_sha256,
          layers: m.dims.total_layers,
          vocab_size: m.dims.vocab_size,
          max_seq_len: dims.max_seq_len,
          execution_providers: loaded[0]!.executionProviders,
          mode: 'split',
        },
        loaded,
      );
    } catch (e) {
      for (const p of loaded) await p.release();
      throw e;
    }
  }

  info(): LocalLlmInfo {
    return { ...this.meta };
  }

  /** A fresh KV context (whole model, or a local head → shards → tail chain). */
  openContext(): StepModel {
    const p = this.parts;
    if (p.whole) return new WholeStepModel(p.whole, this.meta.vocab_size);
    if (!p.head || !p.tail || p.shards!.length === 0 || this.meta.mode !== 'split' || !this.complete)
      throw new HnError(
        'not_found',
        'only some parts of this model are loaded here; local generation needs all',
      );
    return new SplitStepModel(p.head, p.shards!, p.tail);
  }

  /** Head, shards and tail (split mode), for an orchestrator or a shard host. */
  get splitParts(): { head?: HeadRunner; shards: ShardRunner[]; tail?: TailRunner } | undefined {
    const p = this.parts;
    if (p.whole) return undefined;
    return {
      ...(p.head ? { head: p.head } : {}),
      shards: p.shards ?? [],
      ...(p.tail ? { tail: p.tail } : {}),
    };
  }

  /** Every part of the model is loaded (generation can run locally). */
  get complete(): boolean {
    const p = this.parts;
    if (p.whole) return true;
    const covered = (p.shards ?? []).reduce((n, s) => n + s.part.layers.length, 0);
    return !!p.head && !!p.tail && covered === this.meta.layers;
  }

  promptIds(input: string | ChatMessage[]): number[] {
    const text = typeof input === 'string' ? input : this.tokenizer.formatChat(input);
    return this.tokenizer.encode(text);
  }

  async *generate(
    input: string | ChatMessage[],
    opts: GenerateOptions = {},
  ): AsyncGenerator<GeneratedToken, GenerationSummary> {
    return yield* this.generateFromIds(this.promptIds(input), opts);
  }

  async *generateFromIds(
    ids: number[],
    opts: GenerateOptions & { keepLogits?: boolean } = {},
  ): AsyncGenerator<GeneratedToken, GenerationSummary> {
    const ctx = this.openContext();
    try {
      return yield* generateTokens(ctx, this.tokenizer, ids, {
        ...opts,
        maxSeqLen: this.meta.max_seq_len,
        eosIds: this.tokenizer.eosIds,
      });
    } finally {
      ctx.close();
    }
  }

  async close(): Promise<void> {
    for (const p of this.releasables) await p.release();
  }
}
