/**
 * The WebLLM engine behind the `LocalLlm` interface: a model compiled by MLC (weights shards +
 * `mlc-chat-config.json` + a model library .wasm), loaded with `@mlc-ai/web-llm`'s own loader and
 * cache. Configured by `llm.backends` entries `{ name = "webllm", model = "<model_id>", url = "<weights
 * base URL>", model_lib = "<.wasm URL>" }`; without `url` the model must be one of web-llm's prebuilt
 * records. WebLLM runs on WebGPU only: without an adapter loading fails with a clear error (the ONNX
 * engine is the fallback). The library is imported on first use only.
 */
import type { AppConfig, MLCEngine, ModelRecord } from '@mlc-ai/web-llm';
import { HnError } from '../core/errors.js';
import { probeWebGpu, type BackendDecision } from './backend.js';
import type { GenerateOptions, GeneratedToken, GenerationSummary, StopReason } from './generate.js';
import type { LocalLlm, LocalLlmInfo } from './local.js';
import type { ChatMessage } from './tokenizer.js';

export interface WebLlmBackendConfig {
  name: 'webllm';
  /** model_id of the record (what CreateMLCEngine is asked for). */
  model: string;
  /** Base URL of the MLC weights folder (the record's `model`). */
  url?: string;
  /** URL of the compiled model library; default `<url>/<model>-webgpu.wasm`. */
  model_lib?: string;
}

/** The `llm.backends` entries that name the WebLLM engine, as typed configs. */
export function webllmBackends(config: { llm?: { backends?: unknown[] } }): WebLlmBackendConfig[] {
  const out: WebLlmBackendConfig[] = [];
  for (const b of config.llm?.backends ?? []) {
    if (!b || typeof b !== 'object') continue;
    const o = b as Record<string, unknown>;
    if (o['name'] !== 'webllm' || typeof o['model'] !== 'string' || !o['model']) continue;
    out.push({
      name: 'webllm',
      model: o['model'],
      ...(typeof o['url'] === 'string' && o['url'] ? { url: o['url'] } : {}),
      ...(typeof o['model_lib'] === 'string' && o['model_lib'] ? { model_lib: o['model_lib'] } : {}),
    });
  }
  return out;
}

/** The web-llm AppConfig for one configured backend (a record with the configured URLs). */
export function webllmAppConfig(b: WebLlmBackendConfig, prebuilt?: AppConfig): AppConfig {
  if (b.url) {
    let base: URL;
    try {
      base = new URL(
        b.url.endsWith('/') ? b.url : b.url + '/',
        (globalThis as { location?: { href: string } }).location?.href,
      );
    } catch {
      throw new HnError('bad_request', `llm.backends webllm ${b.model}: url ${b.url} is not a URL`, {
        field: 'llm.backends',
      });
    }
    const record: ModelRecord = {
      model: base.href,
      model_id: b.model,
      model_lib: b.model_lib ?? new URL(`${b.model}-webgpu.wasm`, base).href,
    };
    return { model_list: [record], cacheBackend: 'cache' };
  }
  const record = prebuilt?.model_list.find((r) => r.model_id === b.model);
  if (!record)
    throw new HnError(
      'not_found',
      `WebLLM model ${b.model} has no url in llm.backends and is not one of web-llm's prebuilt models`,
      { field: 'llm.backends' },
    );
  return {
    model_list: [b.model_lib ? { ...record, model_lib: b.model_lib } : record],
    cacheBackend: 'cache',
  };
}

export interface WebLlmLoadOptions {
  onProgress?: (p: { progress: number; text: string }) => void;
}

export class WebLlmLocalLlm implements LocalLlm {
  private constructor(
    private readonly engine: MLCEngine,
    private readonly cfg: WebLlmBackendConfig,
    readonly backend: BackendDecision,
  ) {}

  static async load(b: WebLlmBackendConfig, opts: WebLlmLoadOptions = {}): Promise<WebLlmLocalLlm> {
    const gpu = await probeWebGpu();
    if (!gpu.adapter)
      throw new HnError(
        'not_implemented',
        `WebLLM needs WebGPU, which is unavailable here: ${gpu.missing}. Use the ONNX engine.`,
        {
          details: { engine: 'webllm', reason: 'webgpu_unavailable' },
        },
      );
    const lib = await import('./web-llm-lib.js');
    const appConfig = webllmAppConfig(b, lib.prebuiltAppConfig);
    const where = appConfig.model_list[0]!.model;
    let engine: MLCEngine;
    try {
      engine = await lib.CreateMLCEngine(b.model, {
        appConfig,
        logLevel: 'ERROR',
        ...(opts.onProgress
          ? { initProgressCallback: (r) => opts.onProgress!({ progress: r.progress, text: r.text }) }
          : {}),
      });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const fetchFailed = /fetch|404|network|not ok|Failed to|NetworkError|HTTP/i.test(msg);
      throw new HnError(
        fetchFailed ? 'not_found' : 'internal_error',
        `WebLLM could not load ${b.model} from ${where}: ${msg.slice(0, 400)}`,
        { details: { engine: 'webllm', reason: fetchFailed ? 'fetch_failed' : 'load_failed' } },
      );
    }
    const a = gpu.adapter;
    return new WebLlmLocalLlm(engine, b, {
      backend: 'webgpu',
      reason: `WebLLM on WebGPU adapter ${[a.vendor, a.architecture].filter(Boolean).join(' ') || 'unnamed'}`,
      fallback: false,
      compute_dtype: a.shader_f16 ? 'float16' : 'float32',
      adapter: a,
    });
  }

  info(): LocalLlmInfo {
    return {
      engine: 'webllm',
      model_id: this.cfg.model,
      layers: 0,
      vocab_size: 0,
      max_seq_len: 0,
      execution_providers: ['webgpu'],
      mode: 'whole',
    };
  }

  /** Text deltas as web-llm streams them (one chunk per decoded token; `token_id` is -1: not exposed). */
  async *generate(
    input: string | ChatMessage[],
    opts: GenerateOptions = {},
  ): AsyncGenerator<GeneratedToken, GenerationSummary> {
    const messages = (typeof input === 'string' ? [{ role: 'user', content: input }] : input).map((m) => ({
      role: m.role as 'user' | 'assistant' | 'system',
      content: m.content,
    }));
    const onAbort = (): void => void this.engine.interruptGenerate();
    opts.signal?.addEventListener('abort', onAbort);
    const t0 = Date.now();
    let first = 0;
    let index = 0;
    let stop: StopReason = 'max_tokens';
    try {
      const stream = await this.engine.chat.completions.create({
        messages,
        stream: true,
        temperature: opts.temperature ?? 0,
        top_p: opts.top_p ?? 1,
        max_tokens: opts.max_tokens ?? 256,
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        ...(opts.stop?.length ? { stop: opts.stop } : {}),
      });
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        const text = c?.delta?.content ?? '';
        if (text) {
          if (index === 0) first = Date.now() - t0;
          yield { token_id: -1, text, index: index++, logprob: 0 };
        }
        if (c?.finish_reason === 'stop') stop = opts.stop?.length ? 'stop' : 'eos';
        if (c?.finish_reason === 'length') stop = 'max_tokens';
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (opts.signal?.aborted) throw new HnError('pipeline_cancelled', 'generation cancelled');
    const ms = Date.now() - t0;
    return {
      tokens_out: index,
      stop_reason: stop,
      ms,
      first_token_ms: first,
      tokens_per_s: ms > 0 ? (index * 1000) / ms : 0,
    };
  }

  async close(): Promise<void> {
    await this.engine.unload();
  }
}
