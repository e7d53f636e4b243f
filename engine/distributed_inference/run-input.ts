/**
 * M26 `pipeline.run` / `pipeline.plan` input checks (digest B3): each bad field → `bad_request` naming it.
 */
import { HnError } from '../core/errors.js';
import { checkSampling } from '../llm/sampling.js';
import type { ChatMessage } from '../llm/tokenizer.js';
import type { DistributedLlmSection } from './shard.js';
import type { WireDtype } from './wire.js';

export interface RunInput {
  pipeline_id?: string;
  model_id?: string;
  weights_sha256?: string;
  messages?: ChatMessage[];
  prompt?: string;
  prompt_tokens?: number[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
  fallback_to_local?: boolean;
  max_failovers?: number;
  wire_dtype?: WireDtype;
  prefill_chunk_tokens?: number;
}

export function parseExclude(x: unknown): Set<string> {
  if (x === undefined) return new Set();
  if (
    !Array.isArray(x) ||
    x.length > 64 ||
    !x.every((s) => typeof s === 'string' && s.length <= 300 && s.includes('@'))
  )
    throw new HnError('bad_request', 'exclude must be a list of shard_id@host', {
      details: { field: 'exclude' },
    });
  return new Set(x as string[]);
}

export interface ParsedRun {
  pipeline_id?: string;
  messages?: ChatMessage[];
  prompt?: string;
  prompt_tokens?: number[];
  max_tokens: number;
  temperature: number;
  top_p: number;
  seed: number;
  stop: string[];
  fallback_to_local: boolean;
  max_failovers: number;
  wire_dtype: WireDtype;
  prefill_chunk_tokens: number;
}

function bad(msg: string, field: string): never {
  throw new HnError('bad_request', msg, { details: { field } });
}

export function parseRunInput(i: RunInput, cfg: DistributedLlmSection): ParsedRun {
  if (!i || typeof i !== 'object') bad('input must be an object', 'input');
  const given = [i.messages, i.prompt, i.prompt_tokens].filter((x) => x !== undefined).length;
  if (given !== 1) bad('give exactly one of messages, prompt, prompt_tokens', 'prompt');
  if (i.pipeline_id !== undefined && typeof i.pipeline_id !== 'string')
    bad('pipeline_id must be a string', 'pipeline_id');
  if (i.pipeline_id === undefined && (i.model_id === undefined || i.weights_sha256 === undefined))
    bad('give pipeline_id, or model_id and weights_sha256', 'pipeline_id');
  if (i.prompt !== undefined && (typeof i.prompt !== 'string' || i.prompt.length > 65536))
    bad('prompt must be a string', 'prompt');
  if (
    i.messages !== undefined &&
    (!Array.isArray(i.messages) ||
      i.messages.length === 0 ||
      !i.messages.every((m) => m && typeof m.content === 'string' && typeof m.role === 'string'))
  )
    bad('messages must be [{role, content}]', 'messages');
  if (
    i.prompt_tokens !== undefined &&
    (!Array.isArray(i.prompt_tokens) || i.prompt_tokens.length === 0 || i.prompt_tokens.length > 65536)
  )
    bad('prompt_tokens must be a non-empty list of ids', 'prompt_tokens');
  const max_tokens = i.max_tokens ?? 256;
  if (!Number.isInteger(max_tokens) || max_tokens < 1 || max_tokens > 4096)
    bad('max_tokens must be 1..4096', 'max_tokens');
  const temperature = i.temperature ?? 0;
  const top_p = i.top_p ?? 1;
  if (typeof temperature !== 'number' || typeof top_p !== 'number')
    bad('temperature and top_p are numbers', 'temperature');
  checkSampling({ temperature, top_p });
  const seed = i.seed ?? 0;
  if (!Number.isSafeInteger(seed)) bad('seed must be an integer', 'seed');
  const stop = i.stop ?? [];
  if (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length <= 64))
    bad('stop: at most 4 strings', 'stop');
  const fallback = i.fallback_to_local ?? cfg.fallback_to_local;
  if (typeof fallback !== 'boolean') bad('fallback_to_local must be a boolean', 'fallback_to_local');
  const mf = i.max_failovers ?? Math.min(2, cfg.max_failovers_per_run);
  if (!Number.isInteger(mf) || mf < 0 || mf > 2) bad('max_failovers must be 0..2', 'max_failovers');
  const wire = i.wire_dtype ?? (cfg.default_dtype === 'fp32' ? 'fp32' : 'fp16');
  if (wire !== 'fp16' && wire !== 'fp32') bad('wire_dtype must be fp16 or fp32', 'wire_dtype');
  const chunk = i.prefill_chunk_tokens ?? cfg.prefill_chunk_tokens;
  if (!Number.isInteger(chunk) || chunk < 16 || chunk > 512)
    bad('prefill_chunk_tokens must be 16..512', 'prefill_chunk_tokens');
  return {
    ...(i.pipeline_id !== undefined ? { pipeline_id: i.pipeline_id } : {}),
    ...(i.messages !== undefined ? { messages: i.messages } : {}),
    ...(i.prompt !== undefined ? { prompt: i.prompt } : {}),
    ...(i.prompt_tokens !== undefined ? { prompt_tokens: i.prompt_tokens } : {}),
    max_tokens,
    temperature,
    top_p,
    seed,
    stop: stop.filter((s) => s.length > 0),
    fallback_to_local: fallback,
    max_failovers: mf,
    wire_dtype: wire,
    prefill_chunk_tokens: chunk,
  };
}
