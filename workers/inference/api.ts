/**
 * The inference worker's API (comlink): what the page may call and the shapes that cross the
 * boundary. Tensors cross as Transferable ArrayBuffers (`Hidden.data`, logits).
 */
import type { BackendDecision, BackendPreference } from '../../engine/llm/backend.js';
import type { GenerateOptions, GenerationSummary, StopReason } from '../../engine/llm/generate.js';
import type { LocalLlmInfo } from '../../engine/llm/local.js';
import type { Hidden } from '../../engine/llm/runtime.js';
import type { ChatMessage } from '../../engine/llm/tokenizer.js';
import type { AdapterResult } from './adapter.js';
import type { InstalledModel } from './store.js';

export type ModelLocation =
  /** Base URL of a model folder: the relay's `/models/<name>/` (relative URLs resolve against the page) or any URL. */
  | { kind: 'url'; url: string }
  /** Files the user picked (model.onnx + config.json + tokenizer.json, or manifest.json + parts). */
  | { kind: 'files'; files: File[] }
  /** A model already in the browser's model cache. */
  | { kind: 'installed'; key: string };

export interface OnnxLoadRequest {
  engine?: 'onnx';
  location: ModelLocation;
  /** auto: a folder with manifest.json loads split (head → shards → tail), else whole (model.onnx). */
  mode?: 'auto' | 'whole' | 'split';
  backend?: BackendPreference;
  /** Whole mode: expected SHA-256 of model.onnx when no manifest is at hand. */
  expectedSha256?: string;
  /** Split mode: only these parts ('head', 'tail', shard ids). */
  parts?: string[];
  /** Keep the files in Cache Storage (default true). */
  cache?: boolean;
  maxSeqLen?: number;
  /** WebGPU: keep the KV cache in GPU buffers (default true). */
  gpuKv?: boolean;
}

export interface WebLlmLoadRequest {
  engine: 'webllm';
  /** model_id of the WebLLM model record. */
  model: string;
  /** Base URL of the MLC weights (the record's `model`). */
  url?: string;
  /** URL of the compiled model library (.wasm). */
  model_lib?: string;
}

export type LoadRequest = OnnxLoadRequest | WebLlmLoadRequest;

export interface LoadProgress {
  phase: 'fetch' | 'session' | 'ready';
  file?: string;
  /** Bytes of model files read so far (all files). */
  loaded: number;
  /** Bytes expected (known from the manifest or Content-Length; 0 = unknown). */
  total: number;
  from?: 'network' | 'cache' | 'files';
  text?: string;
}

export interface LoadedModel {
  handle: string;
  info: LocalLlmInfo;
  backend: BackendDecision;
  /** Model-store key (Models panel). */
  key?: string;
  /** Every file was checked against a manifest hash. */
  verified: boolean;
  bytes: number;
  load_ms: number;
  from_cache: boolean;
}

export interface StreamedToken {
  token_id: number;
  text: string;
  index: number;
  logprob: number;
}

export interface GenerateRequest extends Omit<GenerateOptions, 'signal'> {
  /** Caller-chosen id for `stop(id)`. */
  id?: string;
}

export interface GenerationResult extends Omit<GenerationSummary, 'stop_reason'> {
  /** `cancelled`: stopped by `stop(id)`; the tokens so far are kept. */
  stop_reason: StopReason | 'cancelled';
  backend: BackendDecision['backend'];
  /** Decode speed after the first token (prefill excluded). */
  decode_tokens_per_s: number;
  token_ids: number[];
  text: string;
}

export interface WorkerStats {
  models: { handle: string; model_id: string; engine: string; mode: string; backend: BackendDecision }[];
  shard_sessions: number;
  generations: number;
  tokens_out: number;
  last_tokens_per_s: number | null;
}

export interface InferenceApi {
  /** The backend the worker would pick for an fp32 model, with the reason. */
  probe(pref?: BackendPreference): Promise<BackendDecision>;
  load(req: LoadRequest, onProgress?: (p: LoadProgress) => void | Promise<void>): Promise<LoadedModel>;
  generate(
    handle: string,
    input: string | ChatMessage[],
    opts: GenerateRequest,
    onToken?: (t: StreamedToken) => void | Promise<void>,
  ): Promise<GenerationResult>;
  stop(id: string): Promise<boolean>;
  unload(handle: string): Promise<void>;
  /** Orchestrator: input_ids → embeddings. */
  headEmbed(handle: string, ids: number[]): Promise<Hidden>;
  /** Orchestrator: last hidden state → logits of its positions ([S, V] row-major). */
  tailLogits(handle: string, h: Hidden): Promise<Float32Array>;
  /** Shard host: a pipeline session with its own KV cache (kept in the worker; GPU buffers on WebGPU). */
  openShardSession(handle: string, shardId: string): Promise<string>;
  shardForward(session: string, h: Hidden): Promise<Hidden>;
  /** Frees the session's KV cache. */
  closeShardSession(session: string): Promise<void>;
  /**
   * Teacher forcing on a fresh KV context of a whole model or a complete local split: feeds each
   * chunk of token ids in turn, returns the logits of each chunk's last position (tests, evaluation).
   */
  forcedLogits(handle: string, chunks: number[][]): Promise<Float32Array[]>;
  encode(handle: string, text: string): Promise<number[]>;
  listInstalled(): Promise<InstalledModel[]>;
  deleteInstalled(key: string): Promise<boolean>;
  stats(): Promise<WorkerStats>;
  /**
   * M28: rebuild the loaded whole ONNX model `handle` with an adapter file (safetensors A/B, merged as
   * W + (α/r)·Aᵀ·Bᵀ) and run it from now on; `null` restores the base weights. `base_model_mismatch`
   * for WebLLM, split or quantized models and for a model without the adapted weights. With `sessionId`
   * (session scope) only generations naming that `session_id` run base + adapter; the handle is untouched.
   */
  setAdapter(handle: string, adapter: Uint8Array | null, sessionId?: string): Promise<AdapterResult>;
}
