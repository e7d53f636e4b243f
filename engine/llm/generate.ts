/**
 * Autoregressive generation over any `StepModel` (the unsplit ONNX model, or head → shards → tail
 * run locally): chunked prefill, seeded sampling, EOS and stop strings, streamed text deltas.
 */
import { HnError } from '../core/errors.js';
import { SeededRng } from './rng.js';
import { checkSampling, logProb, sampleToken } from './sampling.js';
import {
  HeadRunner,
  lastPosition,
  ShardRunner,
  TailRunner,
  type ShardSession,
  type WholeModelRunner,
  type WholeSession,
} from './runtime.js';

/** A decoder with one KV context: append token ids, get the logits of the last one. */
export interface StepModel {
  readonly pastLength: number;
  forward(ids: number[]): Promise<Float32Array>;
  close(): void;
}

export interface GenerateOptions {
  max_tokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  top_p?: number;
  seed?: number;
  /** Up to 4 strings; generation stops before the first occurrence, which is not emitted. */
  stop?: string[];
  /** Prompt positions per forward (default 64). */
  prefill_chunk_tokens?: number;
  signal?: AbortSignal;
  /** Token ids that end generation (default: the tokenizer's EOS set). */
  eos_token_ids?: number[];
  /**
   * The caller's chat session (`llm.chat` input.session_id): the tab's inference worker runs an adapter
   * applied to that session (M28 session scope); engines without session adapters ignore it.
   */
  session_id?: string;
}

export interface GeneratedToken {
  token_id: number;
  /** Text added by this token (may be empty while a UTF-8 sequence or possible stop string is pending). */
  text: string;
  index: number;
  logprob: number;
  /** Logits this token was chosen from (only with `keepLogits`). */
  logits?: Float32Array;
}

export type StopReason = 'max_tokens' | 'eos' | 'stop' | 'context';

export interface GenerationSummary {
  tokens_out: number;
  stop_reason: StopReason;
  ms: number;
  first_token_ms: number;
  tokens_per_s: number;
}

export interface Detokenizer {
  decode(ids: number[], skipSpecialTokens?: boolean): string;
}

export const DEFAULT_PREFILL_CHUNK = 64;

/** Feeds `ids` in chunks; returns the last position's logits. */
export async function prefill(
  model: StepModel,
  ids: number[],
  chunk = DEFAULT_PREFILL_CHUNK,
): Promise<Float32Array> {
  if (ids.length === 0) throw new HnError('bad_request', 'empty prompt');
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new HnError('bad_request', 'prefill_chunk_tokens must be ≥ 1');
  let logits: Float32Array | undefined;
  for (let i = 0; i < ids.length; i += chunk) logits = await model.forward(ids.slice(i, i + chunk));
  return logits!;
}

export async function* generateTokens(
  model: StepModel,
  detok: Detokenizer,
  promptIds: number[],
  opts: GenerateOptions & { maxSeqLen: number; eosIds: number[]; keepLogits?: boolean },
): AsyncGenerator<GeneratedToken, GenerationSummary> {
  const maxTokens = opts.max_tokens ?? 256;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 4096)
    throw new HnError('bad_request', 'max_tokens must be 1..4096', { field: 'max_tokens' });
  const sampling = { temperature: opts.temperature ?? 0, top_p: opts.top_p ?? 1 };
  checkSampling(sampling);
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  if ((opts.stop?.length ?? 0) > 4)
    throw new HnError('bad_request', 'at most 4 stop strings', { field: 'stop' });
  if (promptIds.length + 1 > opts.maxSeqLen)
    throw new HnError(
      'bad_request',
      `prompt of ${promptIds.length} tokens leaves no room in a ${opts.maxSeqLen}-token context`,
    );
  const eos = new Set(opts.eos_token_ids ?? opts.eosIds);
  const rng = new SeededRng(opts.seed ?? 0);
  const t0 = Date.now();
  let firstMs = 0;
  const out: number[] = [];
  let emitted = 0; // characters of the decoded output already yielded
  let stopReason: StopReason = 'max_tokens';

  let logits = await prefill(model, promptIds, opts.prefill_chunk_tokens ?? DEFAULT_PREFILL_CHUNK);
  for (let index = 0; index < maxTokens; index++) {
    if (opts.signal?.aborted) throw new HnError('pipeline_cancelled', 'generation cancelled');
    const id = sampleToken(logits, sampling, rng);
    if (index === 0) firstMs = Date.now() - t0;
    if (eos.has(id)) {
      stopReason = 'eos';
      break;
    }
    out.push(id);
    const full = detok.decode(out, true);
    // hold back an incomplete UTF-8 sequence and any suffix that could start a stop string
    let safe = full.endsWith('\uFFFD') ? full.length - 1 : full.length;
    let hit = -1;
    for (const s of stops) {
      const at = full.indexOf(s, Math.max(0, emitted - s.length + 1));
      if (at >= 0 && (hit < 0 || at < hit)) hit = at;
    }
    if (hit >= 0) safe = hit;
    else
      for (const s of stops)
        for (let k = Math.min(s.length - 1, full.length); k > 0; k--)
          if (full.endsWith(s.slice(0, k))) {
            safe = Math.min(safe, full.length - k);
            break;
          }
    const text = safe > emitted ? full.slice(emitted, safe) : '';
    emitted = Math.max(emitted, safe);
    const tok: GeneratedToken = { token_id: id, text, index, logprob: logProb(logits, id) };
    if (opts.keepLogits) tok.logits = logits;
    yield tok;
    if (hit >= 0) {
      stopReason = 'stop';
      break;
    }
    if (index === maxTokens - 1) break;
    if (model.pastLength + 1 > opts.maxSeqLen) {
      stopReason = 'context';
      break;
    }
    logits = await model.forward([id]);
  }
  const ms = Date.now() - t0;
  return {
    tokens_out: out.length,
    stop_reason: stopReason,
    ms,
    first_token_ms: firstMs,
    tokens_per_s: ms > 0 ? (out.length * 1000) / ms : 0,
  };
}

/** The unsplit model as a StepModel. */
export class WholeStepModel implements StepModel {
  private readonly s: WholeSession;
  constructor(
    runner: WholeModelRunner,
    private readonly vocab: number,
  ) {
    this.s = runner.openSession();
  }
  get pastLength(): number {
    return this.s.pastLength;
  }
  async forward(ids: number[]): Promise<Float32Array> {
    const all = await this.s.forwardAll(ids);
    return all.slice((ids.length - 1) * this.vocab, ids.length * this.vocab);
  }
  close(): void {
    this.s.close();
  }
}

/**
 * head → shard sessions (in layer order) → tail, in this process: the star topology of B5 without
 * the network, used for local equivalence checks and as the orchestrator's reference loop.
 */
export class SplitStepModel implements StepModel {
  private readonly sessions: ShardSession[];
  constructor(
    private readonly head: HeadRunner,
    shards: ShardRunner[],
    private readonly tail: TailRunner,
  ) {
    this.sessions = shards.map((s) => s.openSession());
  }
  get pastLength(): number {
    return this.sessions[0]!.pastLength;
  }
  async forward(ids: number[]): Promise<Float32Array> {
    let h = await this.head.embed(ids);
    for (const s of this.sessions) h = await s.forward(h);
    return this.tail.logits(lastPosition(h));
  }
  close(): void {
    for (const s of this.sessions) s.close();
  }
}
