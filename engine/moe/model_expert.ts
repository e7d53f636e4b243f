/**
 * M27 model experts answering (digest §5: "the caller then runs the model (`llm.chat`)"): the
 * asker's node streams the question through `llm.chat@1.0` on the bus, on this node or on the peer
 * that registered the model (`model:<model_id>@<host>`), and collects the answer. Used for a model
 * candidate the user picks, for `auto_route`, and for the model fallback after a human handoff
 * declined or timed out. The question and the answer go back to the caller only: never logged,
 * stored or put in an event.
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { StreamFrame } from '../bus/types.js';
import type { ExpertDescriptor } from './expert_registry.js';

export interface ModelAnswer {
  expert_id: string;
  model: string;
  host: NodeID;
  text: string;
  tokens_out: number;
  stop_reason: string;
  ms: number;
}

export interface ModelExpertDeps {
  self: NodeID;
  /** current registry entry (unexpired) */
  lookup(expertId: string): ExpertDescriptor | null;
  stream(capability: string, input: unknown, opts: { peer?: NodeID }): AsyncIterable<StreamFrame>;
}

const bad = (m: string, field: string) => new HnError('bad_request', m, { field });

/** The model id inside `model:<model_id>@<host>`. */
export function modelIdOf(expertId: string): string {
  return expertId.slice(6, expertId.lastIndexOf('@'));
}

/**
 * Ask a model expert. In: `expert_id` (a registered model), `question` 1..4000 characters,
 * `max_tokens?` 1..1024 (256), `temperature?` 0..2 (0.7), `seed?`. Errors: `bad_request`,
 * `expert_unknown`, `expert_unavailable` {paused}, and whatever `llm.chat` answers (e.g. `not_found`
 * when the host no longer serves the model).
 */
export async function askModelExpert(d: ModelExpertDeps, input: unknown): Promise<ModelAnswer> {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new HnError('bad_request', 'request must be an object');
  const i = input as Record<string, unknown>;
  if (typeof i.expert_id !== 'string' || i.expert_id.length > 700) throw bad('expert_id', 'expert_id');
  const question = typeof i.question === 'string' ? i.question.trim() : '';
  if (question.length < 1 || question.length > 4000) throw bad('question: 1..4000 characters', 'question');
  const maxTokens = i.max_tokens ?? 256;
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1 || (maxTokens as number) > 1024)
    throw bad('max_tokens 1..1024', 'max_tokens');
  const temperature = i.temperature ?? 0.7;
  if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2))
    throw bad('temperature 0..2', 'temperature');
  if (i.seed !== undefined && !Number.isInteger(i.seed)) throw bad('seed', 'seed');
  const desc = d.lookup(i.expert_id);
  if (!desc) throw new HnError('expert_unknown', undefined, { details: { expert_id: i.expert_id } });
  if (desc.kind !== 'model') throw bad('only a model expert answers through llm.chat', 'expert_id');
  if (desc.paused)
    throw new HnError('expert_unavailable', 'expert unavailable: paused', { details: { reason: 'paused' } });
  const cap = desc.capabilities[0]?.capability ?? 'llm.chat';
  if (cap !== 'llm.chat' && !cap.startsWith('llm.chat@'))
    throw bad(`this model expert is run through ${cap.slice(0, 80)}, not llm.chat`, 'expert_id');
  const model = modelIdOf(desc.expert_id);
  const t0 = Date.now();
  const req = {
    params: { model },
    input: {
      messages: [{ role: 'user', content: question }],
      max_tokens: maxTokens,
      temperature,
      ...(i.seed !== undefined ? { seed: i.seed } : {}),
    },
  };
  let text = '';
  let done: { tokens_out?: number; stop_reason?: string } = {};
  for await (const f of d.stream('llm.chat', req, desc.host === d.self ? {} : { peer: desc.host })) {
    if (f.event === 'token') text += String((f.data as { text?: unknown }).text ?? '');
    else if (f.event === 'done') done = f.data as typeof done;
  }
  return {
    expert_id: desc.expert_id,
    model,
    host: desc.host,
    text,
    tokens_out: done.tokens_out ?? 0,
    stop_reason: done.stop_reason ?? 'end',
    ms: Date.now() - t0,
  };
}
