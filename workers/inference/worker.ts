/**
 * The inference worker (comlink `expose`): loads whole models or head/shards/tail into onnxruntime-web
 * sessions (WebGPU when an adapter exists, WASM otherwise — the decision and any fallback are returned
 * with the model and kept in `stats()`), or a WebLLM model; streams generated tokens to the page; keeps
 * shard pipeline sessions (their KV caches live here, in GPU buffers on WebGPU) until closed.
 *
 * Runtimes are imported on first use, so creating the worker costs little. ORT's .wasm is a bundled
 * asset of this app (`?url`), never fetched from a CDN.
 */
import * as Comlink from 'comlink';
import ortWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import { HnError } from '../../engine/core/errors.js';
import { fromUtf8 } from '../../engine/core/encoding.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { decideBackend, fallbackAfterFailure, type BackendDecision } from '../../engine/llm/backend.js';
import type { GeneratedToken, GenerationSummary } from '../../engine/llm/generate.js';
import type { OnnxLocalLlm } from '../../engine/llm/local.js';
import type { ManifestFile, ManifestPart, ModelManifest } from '../../engine/llm/manifest.js';
import type { Hidden, ShardSession } from '../../engine/llm/runtime.js';
import type {
  GenerationResult,
  InferenceApi,
  LoadedModel,
  LoadProgress,
  LoadRequest,
  OnnxLoadRequest,
  StreamedToken,
  WebLlmLoadRequest,
  WorkerStats,
} from './api.js';
import { adapterApi, closeSessions, llmFor, plainErrors, type AdaptableEntry } from './adapter.js';
import { embedApi } from './embed.js';
import {
  deleteInstalled,
  getInstalled,
  installedSource,
  listInstalled,
  pickedSource,
  putBytes,
  saveInstalled,
  urlSource,
  type FileProgress,
  type TrackedSource,
} from './store.js';

interface Entry extends AdaptableEntry {
  handle: string;
  backend: BackendDecision;
}

const models = new Map<string, Entry>();
const shardSessions = new Map<string, { handle: string; s: ShardSession }>();
const aborts = new Map<string, AbortController>();
let seq = 0;
const counters = { generations: 0, tokens_out: 0, last_tokens_per_s: null as number | null };

let ortReady: Promise<typeof import('../../engine/llm/local.js')> | null = null;
function onnxEngine(): Promise<typeof import('../../engine/llm/local.js')> {
  ortReady ??= (async () => {
    const ort = await import('../../engine/llm/ort.js');
    ort.setWasmPaths({ wasm: new URL(ortWasmUrl, self.location.href).href });
    ort.configureOrt({ numThreads: 1 });
    return import('../../engine/llm/local.js');
  })();
  return ortReady;
}

function entry(handle: string): Entry {
  const e = models.get(handle);
  if (!e) throw new HnError('not_found', `no loaded model ${handle}`);
  return e;
}

/** Only failures of the runtime itself justify retrying on WASM; a refused hash or a missing file never. */
function isRuntimeFailure(e: unknown): boolean {
  return !(e instanceof HnError) || e.code === 'internal_error';
}

function ownBuffer<T extends Float32Array | Uint16Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
}

function transferHidden(h: Hidden): Hidden {
  const data = ownBuffer(h.data);
  return Comlink.transfer({ dtype: h.dtype, dims: h.dims, data }, [data.buffer as ArrayBuffer]);
}

async function readJsonFrom<T>(src: TrackedSource, path: string): Promise<T> {
  try {
    return JSON.parse(fromUtf8(await src.read(path))) as T;
  } catch (e) {
    if (e instanceof HnError) throw e;
    throw new HnError('bad_request', `${path} is not valid JSON`);
  }
}

async function loadOnnx(req: OnnxLoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModel> {
  const t0 = performance.now();
  const { OnnxLocalLlm } = await onnxEngine();
  const { parseManifest } = await import('../../engine/llm/manifest.js');
  const perFile = new Map<string, FileProgress>();
  let total = 0;
  const report = (p: FileProgress): void => {
    perFile.set(p.file, p);
    let loaded = 0;
    let sized = 0;
    for (const f of perFile.values()) {
      loaded += f.loaded;
      sized += f.total || f.loaded;
    }
    void onProgress?.({ phase: 'fetch', file: p.file, loaded, total: Math.max(total, sized), from: p.from });
  };
  const cache = req.cache !== false;
  const loc = req.location;
  let key: string | undefined;
  let src: TrackedSource;
  const written: string[] = [];
  if (loc.kind === 'url') {
    src = urlSource(loc.url, { onProgress: report, cache });
    key = src.base;
  } else if (loc.kind === 'files') {
    const id = sha256Hex(loc.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('\n')).slice(
      0,
      16,
    );
    key = `files:${id}`;
    const k = key;
    const picked = pickedSource(loc.files, () => k, { onProgress: report });
    // picked files go into the model cache as they are read (removed again if the load fails)
    src = {
      ...picked,
      files: picked.files,
      base: picked.base,
      async read(path) {
        const b = await picked.read(path);
        if (cache) {
          const url = picked.files.get(path)!.url;
          await putBytes(url, b);
          written.push(url);
        }
        return b;
      },
    };
  } else {
    const m = await getInstalled(loc.key);
    if (!m) throw new HnError('not_found', `model ${loc.key} is not installed`);
    key = m.key;
    src =
      m.kind === 'url'
        ? urlSource(m.source, { onProgress: report, cache })
        : installedSource(m, { onProgress: report });
  }

  try {
    let manifest: ModelManifest | undefined;
    if (req.mode !== 'whole' && (await src.exists?.('manifest.json'))) {
      manifest = parseManifest(await readJsonFrom<unknown>(src, 'manifest.json'));
    } else if (req.mode === 'split') {
      throw new HnError('not_found', 'split mode needs a manifest.json in the model folder');
    }
    let expectedSha = req.expectedSha256;
    let expectedExternal: ManifestFile[] | undefined;
    if (manifest) {
      const m = manifest;
      const named: [string, ManifestPart][] = [
        ['head', m.head],
        ['tail', m.tail],
        ...m.shards.map((s): [string, ManifestPart] => [s.shard_id, s]),
      ];
      const parts = named.filter(([n]) => !req.parts || req.parts.includes(n)).map(([, p]) => p);
      for (const p of parts) {
        src.expect(p.file, p.sha256);
        total += p.bytes;
        for (const e of p.external_data ?? []) {
          src.expect(e.file, e.sha256);
          total += e.bytes;
        }
      }
      for (const f of [m.tokenizer, m.tokenizer_config, m.config]) if (f) src.expect(f.file, f.sha256);
    } else {
      // a whole model folder may carry its split (and so the source hash) in split/manifest.json
      if (!expectedSha && (await src.exists?.('split/manifest.json'))) {
        try {
          const sm = parseManifest(await readJsonFrom<unknown>(src, 'split/manifest.json'));
          if (sm.source.file.split('/').pop() === 'model.onnx') {
            expectedSha = sm.source.sha256;
            total = sm.source.bytes;
            // external weights (model.onnx_data, model.onnx.data): fetched, hash-checked, cached like model.onnx
            if (sm.source.external_data?.length) {
              expectedExternal = sm.source.external_data;
              for (const f of expectedExternal) {
                src.expect(f.file, f.sha256);
                total += f.bytes;
              }
            }
          }
        } catch (e) {
          if (!(e instanceof HnError) || e.code !== 'bad_request') throw e;
        }
      }
      if (expectedSha) src.expect('model.onnx', expectedSha);
    }

    let decision = await decideBackend(req.backend ?? 'auto', manifest?.compute_dtype ?? 'float32');
    let whole: AdaptableEntry['whole'];
    const loadWith = (d: BackendDecision): Promise<OnnxLocalLlm> => {
      const opts = {
        executionProviders:
          d.backend === 'webgpu' ? (['webgpu', 'wasm'] as const).slice() : ['wasm' as const],
        numThreads: 1,
        ...(req.gpuKv === false ? { kvOnGpu: false } : {}),
        ...(req.maxSeqLen ? { maxSeqLen: req.maxSeqLen } : {}),
        ...(req.parts ? { parts: req.parts } : {}),
      };
      if (manifest) return OnnxLocalLlm.fromManifest(src, manifest, opts);
      whole = { src, opts: { ...opts, ...(expectedExternal ? { expectedExternal } : {}) } };
      return OnnxLocalLlm.loadWhole(src, {
        ...whole.opts,
        ...(expectedSha ? { expectedSha256: expectedSha } : {}),
      });
    };
    void onProgress?.({ phase: 'session', loaded: 0, total, text: `creating ${decision.backend} sessions` });
    let llm: OnnxLocalLlm;
    try {
      llm = await loadWith(decision);
      if (decision.backend === 'webgpu' && llm.complete) await smokeTest(llm);
    } catch (e) {
      if (decision.backend !== 'webgpu' || !isRuntimeFailure(e)) throw e;
      decision = fallbackAfterFailure(decision, e);
      void onProgress?.({ phase: 'session', loaded: 0, total, text: decision.reason });
      llm = await loadWith(decision);
    }
    const handle = `m${++seq}`;
    models.set(handle, { handle, llm, onnx: llm, backend: decision, ...(whole ? { whole } : {}) });
    const files = [...src.files.values()];
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    const verified = files
      .filter((f) => f.path.endsWith('.onnx') || /[._]data$/.test(f.path))
      .every((f) => f.verified);
    const fromCache = [...perFile.values()].every((f) => f.from === 'cache');
    if (cache && key && loc.kind !== 'installed') {
      const info = llm.info();
      await saveInstalled({
        key,
        model_id: info.model_id,
        source: loc.kind === 'url' ? src.base : 'picked files',
        kind: loc.kind,
        mode: info.mode,
        files,
        total_bytes: bytes,
        ...(info.weights_sha256 ? { weights_sha256: info.weights_sha256 } : {}),
        installed_at: Date.now(),
      });
    }
    void onProgress?.({ phase: 'ready', loaded: bytes, total: bytes });
    return {
      handle,
      info: llm.info(),
      backend: decision,
      key,
      verified,
      bytes,
      load_ms: Math.round(performance.now() - t0),
      from_cache: fromCache,
    };
  } catch (e) {
    if (written.length) {
      const c = await caches.open('hearthnet-models').catch(() => null);
      for (const u of written) await c?.delete(u);
    }
    throw e;
  }
}

/** One short greedy run: a WebGPU session that loads but cannot run (or yields NaN) falls back to WASM. */
async function smokeTest(llm: OnnxLocalLlm): Promise<void> {
  const it = llm.generateFromIds([0, 1], { max_tokens: 1, eos_token_ids: [], keepLogits: true });
  try {
    for await (const t of it)
      if (t.logits && !t.logits.every(Number.isFinite)) throw new Error('WebGPU produced non-finite logits');
  } catch (e) {
    await llm.close();
    throw e;
  }
}

async function loadWebLlm(
  req: WebLlmLoadRequest,
  onProgress?: (p: LoadProgress) => void,
): Promise<LoadedModel> {
  const t0 = performance.now();
  const { WebLlmLocalLlm } = await import('../../engine/llm/webllm.js');
  const llm = await WebLlmLocalLlm.load(
    {
      name: 'webllm',
      model: req.model,
      ...(req.url ? { url: req.url } : {}),
      ...(req.model_lib ? { model_lib: req.model_lib } : {}),
    },
    { onProgress: (p) => void onProgress?.({ phase: 'fetch', loaded: p.progress, total: 1, text: p.text }) },
  );
  const handle = `m${++seq}`;
  models.set(handle, { handle, llm, backend: llm.backend });
  return {
    handle,
    info: llm.info(),
    backend: llm.backend,
    verified: false,
    bytes: 0,
    load_ms: Math.round(performance.now() - t0),
    from_cache: false,
  };
}

const api: Omit<InferenceApi, 'setAdapter'> = {
  async probe(pref) {
    return decideBackend(pref ?? 'auto');
  },

  async load(req: LoadRequest, onProgress) {
    return req.engine === 'webllm' ? loadWebLlm(req, onProgress) : loadOnnx(req, onProgress);
  },

  async generate(handle, input, opts, onToken) {
    const e = entry(handle);
    const ac = new AbortController();
    if (opts.id) aborts.set(opts.id, ac);
    const { id: _id, session_id: sid, ...gen } = opts;
    const it = llmFor(e, sid).generate(input, { ...gen, signal: ac.signal }); // M28 session-scoped adapter
    const ids: number[] = [];
    let text = '';
    let first = 0;
    let pending: unknown;
    let summary: GenerationSummary | undefined;
    let cancelled = false;
    const t0 = performance.now();
    try {
      for (;;) {
        let r: IteratorResult<GeneratedToken, GenerationSummary>;
        try {
          r = await it.next();
        } catch (err) {
          if (err instanceof HnError && err.code === 'pipeline_cancelled') {
            cancelled = true;
            break;
          }
          throw err;
        }
        if (r.done) {
          summary = r.value;
          break;
        }
        if (ids.length === 0) first = performance.now();
        ids.push(r.value.token_id);
        text += r.value.text;
        const t: StreamedToken = {
          token_id: r.value.token_id,
          text: r.value.text,
          index: r.value.index,
          logprob: r.value.logprob,
        };
        // not awaited one by one; the last answer (same channel, in order) is awaited below
        if (onToken) pending = onToken(t);
      }
    } finally {
      if (opts.id) aborts.delete(opts.id);
    }
    await pending;
    const now = performance.now();
    const ms = Math.round(now - t0);
    const decode = ids.length > 1 ? ((ids.length - 1) * 1000) / (now - first) : 0;
    counters.generations++;
    counters.tokens_out += ids.length;
    counters.last_tokens_per_s = decode;
    const base = summary ?? {
      tokens_out: ids.length,
      stop_reason: 'max_tokens' as const,
      ms,
      first_token_ms: first ? Math.round(first - t0) : 0,
      tokens_per_s: ms > 0 ? (ids.length * 1000) / ms : 0,
    };
    const result: GenerationResult = {
      ...base,
      ...(cancelled ? { stop_reason: 'cancelled' as const } : {}),
      backend: e.backend.backend,
      decode_tokens_per_s: decode,
      token_ids: ids,
      text,
    };
    return result;
  },

  async stop(id) {
    const ac = aborts.get(id);
    ac?.abort();
    return !!ac;
  },

  async unload(handle) {
    const e = models.get(handle);
    if (!e) return;
    for (const [id, s] of shardSessions)
      if (s.handle === handle) {
        s.s.close();
        shardSessions.delete(id);
      }
    models.delete(handle);
    await closeSessions(e);
    await e.llm.close();
  },

  async headEmbed(handle, ids) {
    const head = entry(handle).onnx?.splitParts?.head;
    if (!head) throw new HnError('not_found', `${handle} has no head loaded`);
    return transferHidden(await head.embed(ids));
  },

  async tailLogits(handle, h) {
    const tail = entry(handle).onnx?.splitParts?.tail;
    if (!tail) throw new HnError('not_found', `${handle} has no tail loaded`);
    const l = ownBuffer(await tail.logits(h));
    return Comlink.transfer(l, [l.buffer as ArrayBuffer]);
  },

  async openShardSession(handle, shardId) {
    const shard = entry(handle).onnx?.splitParts?.shards.find((s) => s.part.label === shardId);
    if (!shard) throw new HnError('not_found', `${handle} does not host shard ${shardId}`);
    const id = `s${++seq}`;
    shardSessions.set(id, { handle, s: shard.openSession() });
    return id;
  },

  async shardForward(session, h) {
    const s = shardSessions.get(session);
    if (!s) throw new HnError('not_found', `no shard session ${session}`);
    return transferHidden(await s.s.forward(h));
  },

  async closeShardSession(session) {
    const s = shardSessions.get(session);
    if (!s) return;
    s.s.close();
    shardSessions.delete(session);
  },

  async forcedLogits(handle, chunks) {
    const o = entry(handle).onnx;
    if (!o) throw new HnError('not_implemented', 'forcedLogits is only offered by the ONNX engine');
    if (!Array.isArray(chunks) || chunks.length === 0 || chunks.length > 4096)
      throw new HnError('bad_request', 'chunks must be 1..4096 arrays of token ids');
    const ctx = o.openContext();
    try {
      const out: Float32Array[] = [];
      for (const c of chunks) out.push((await ctx.forward(c)).slice());
      return Comlink.transfer(
        out,
        out.map((l) => l.buffer as ArrayBuffer),
      );
    } finally {
      ctx.close();
    }
  },

  async encode(handle, text) {
    const o = entry(handle).onnx;
    if (!o) throw new HnError('not_implemented', 'encode is only offered by the ONNX engine');
    return o.tokenizer.encode(text);
  },

  listInstalled,
  deleteInstalled,

  async stats(): Promise<WorkerStats> {
    return {
      models: [...models.values()].map((e) => {
        const i = e.llm.info();
        return { handle: e.handle, model_id: i.model_id, engine: i.engine, mode: i.mode, backend: e.backend };
      }),
      shard_sessions: shardSessions.size,
      ...counters,
    };
  },
};

Comlink.expose(plainErrors({ ...api, ...embedApi(onnxEngine), ...adapterApi(entry, onnxEngine) }));
