/**
 * M26 local fallback (digest B6 step 7) through the module kit's inference capability: when the failovers are
 * exhausted the run continues on a model this node serves as `llm.chat@1.0` — preferably the unsplit graph of the
 * same export (`llm.models.list` reports its weights_sha256), else a model with the same model_id.
 *
 * A `messages` run hands over its conversation, a `prompt` run its raw prompt (llm.chat's `prompt` input, no chat
 * template); a bare `prompt_tokens` run has no text to hand over and fails instead (`pipeline_failed`).
 * `llm.chat` starts from the beginning, so the local model regenerates the answer from its first token with the
 * run's sampling parameters and seed; the tokens already streamed are checked against it (ids via the frames'
 * `token_ids`, and text) and not sent again; only what follows is streamed. With the same export and greedy (or the same seed), the continuation is the one
 * an unbroken run gives (B10.8). If the local text departs from what was streamed, the run fails
 * (`pipeline_failed`, reason `local_diverged`) rather than stream an answer that does not fit its beginning.
 * Text is never logged.
 */
import type { StreamFrame } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import type { ChatMessage } from '../llm/tokenizer.js';
import type { OrchestratorDeps } from './planner.js';

interface ListedModel {
  id?: unknown;
  weights_sha256?: unknown;
}

/** The `params.model` of a local `llm.chat` model of this export, or null when none is served. */
export async function findLocalModel(
  d: Pick<OrchestratorDeps, 'call' | 'stream' | 'log'>,
  model_id: string,
  weights_sha256: string,
): Promise<string | null> {
  if (!d.stream) return null;
  let models: ListedModel[];
  try {
    const out = (await d.call('llm.models.list', {}, { timeout_ms: 2000 })) as { models?: ListedModel[] };
    models = Array.isArray(out?.models) ? out.models : [];
  } catch (e) {
    // no model served here: `llm.models.list` is only registered while one is
    if (!(e instanceof HnError) || e.code !== 'not_found')
      d.log?.warn('llm.models.list failed; no local fallback', {
        code: e instanceof HnError ? e.code : 'internal_error',
      });
    return null;
  }
  const same = models.find((m) => m.weights_sha256 === weights_sha256 && typeof m.id === 'string');
  if (same) return same.id as string;
  const named = models.find((m) => m.id === model_id);
  return named ? model_id : null;
}

export interface LocalContinuation {
  /** the run's conversation, or its raw prompt (llm.chat's `prompt`: no chat template) */
  messages?: ChatMessage[];
  prompt?: string;
  max_tokens: number;
  temperature: number;
  top_p: number;
  seed: number;
  stop: string[];
  /** text already streamed by the pipeline */
  streamed: string;
  /** token ids already streamed by the pipeline */
  emitted: number[];
  /** index of the next token frame */
  index: number;
  signal?: AbortSignal;
}

const STOP: Record<string, string> = {
  end: 'eos',
  stop_sequence: 'stop',
  max_tokens: 'max_tokens',
  cancelled: 'cancelled',
};

/** Streams the continuation as `token` frames; returns llm.chat's count (whole answer) and stop reason. */
export async function* continueLocally(
  d: Pick<OrchestratorDeps, 'stream'>,
  model: string,
  c: LocalContinuation,
): AsyncGenerator<StreamFrame, { tokens_out: number; stop_reason: string }, void> {
  if (!d.stream) throw new HnError('pipeline_failed', 'no bus stream for the local fallback');
  const input = {
    params: { model },
    input: {
      ...(c.messages ? { messages: c.messages } : { prompt: c.prompt }),
      max_tokens: c.max_tokens,
      temperature: c.temperature,
      top_p: c.top_p,
      seed: c.seed,
      ...(c.stop.length ? { stop: c.stop } : {}),
    },
  };
  let full = '';
  let sent = c.streamed.length;
  let seen = 0;
  let index = c.index;
  let tokensOut = 0;
  let stopReason = 'eos';
  const diverged = () =>
    new HnError('pipeline_failed', 'the local model departs from the answer already streamed', {
      details: { reason: 'local_diverged', fallback: 'local' },
    });
  for await (const fr of d.stream('llm.chat', input, c.signal ? { signal: c.signal } : {})) {
    if (fr.event === 'token') {
      const data = (fr.data ?? {}) as Record<string, unknown>;
      full += typeof data.text === 'string' ? data.text : '';
      // every token of the frame (held-back ones included); a server without token_ids: one per frame
      const ids: (number | null)[] = Array.isArray(data.token_ids)
        ? (data.token_ids as number[])
        : [typeof data.token_id === 'number' ? data.token_id : null];
      const fresh: (number | null)[] = [];
      for (const id of ids) {
        const k = seen++;
        if (k >= c.emitted.length) fresh.push(id);
        else if (id !== null && id !== c.emitted[k]) throw diverged();
      }
      tokensOut = seen;
      if (full.length <= c.streamed.length ? !c.streamed.startsWith(full) : !full.startsWith(c.streamed))
        throw diverged();
      // tokens the pipeline already streamed are regenerated, checked and not sent again
      for (const [i, id] of fresh.entries()) {
        const last = i === fresh.length - 1;
        const text = last && full.length > sent ? full.slice(sent) : '';
        if (last) sent = Math.max(sent, full.length);
        yield {
          event: 'token',
          data: {
            text,
            token_id: id,
            index: index++,
            logprob: last && typeof data.logprob === 'number' ? data.logprob : null,
          },
        };
      }
    } else if (fr.event === 'done') {
      const data = (fr.data ?? {}) as Record<string, unknown>;
      // trailing tokens whose text never completed: streamed with empty text, like the pipeline does
      for (const id of Array.isArray(data.held_token_ids) ? (data.held_token_ids as number[]) : [])
        if (seen++ >= c.emitted.length)
          yield { event: 'token', data: { text: '', token_id: id, index: index++, logprob: null } };
      if (typeof data.tokens_out === 'number') tokensOut = data.tokens_out;
      stopReason = STOP[String(data.stop_reason)] ?? 'eos';
    }
  }
  if (stopReason === 'cancelled') throw new HnError('pipeline_cancelled', 'the run was cancelled');
  if (full.length < c.streamed.length) throw diverged();
  return { tokens_out: tokensOut, stop_reason: stopReason };
}
