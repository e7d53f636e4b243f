/**
 * Local inference on the bus: every model this node has loaded is offered as `llm.chat@1.0`
 * (streaming, core spec §4.9) and listed by `llm.models.list@1.0`. Both are registered while at
 * least one model is served and removed with the last one. Backends: OnnxLocalLlm (ORT-web, in Node
 * and in the tab's worker), or anything with the LocalLlm shape (the tab's worker client).
 * Prompts and generated text are never logged.
 */
import type { Bus } from '../bus/bus.js';
import type { CallContext, Capability, StreamFrame } from '../bus/types.js';
import { LLM_GENERATION_DEFAULT_TIMEOUT_SECONDS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { Metrics } from '../observability/metrics.js';
import { descriptor } from '../modules/registry.js';
import type { LocalLlm } from './local.js';

const ROLE = { enum: ['system', 'user', 'assistant'] };
export const CHAT_REQUEST = {
  type: 'object',
  required: ['params', 'input'],
  properties: {
    params: {
      type: 'object',
      required: ['model'],
      properties: {
        model: { type: 'string', minLength: 1, maxLength: 128 },
        ctx: { type: 'integer', minimum: 1 },
      },
    },
    input: {
      type: 'object',
      properties: {
        // `prompt` (raw text, no chat template) instead of `messages`: M26's local fallback of a prompt run
        prompt: { type: 'string', minLength: 1, maxLength: 65536 },
        messages: {
          type: 'array',
          maxItems: 256,
          items: {
            type: 'object',
            required: ['role', 'content'],
            properties: { role: ROLE, content: { type: 'string', maxLength: 65536 } },
          },
        },
        max_tokens: { type: 'integer', minimum: 1, maximum: 4096 },
        temperature: { type: 'number', minimum: 0, maximum: 2 },
        top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        stop: { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 64 } },
        seed: { type: 'integer' },
        stream: { type: 'boolean' },
        /** M28: the caller's chat session; an adapter applied to it (session scope) runs for it only */
        session_id: { type: 'string', minLength: 1, maxLength: 128 },
      },
    },
  },
};
const CHAT_FRAME = {
  type: 'object',
  required: ['event', 'data'],
  properties: {
    event: { const: 'token' },
    data: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
  },
};
const MODELS_RESPONSE = {
  type: 'object',
  required: ['models'],
  properties: {
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'engine', 'max_seq_len'],
        properties: { id: { type: 'string' } },
      },
    },
  },
};

type StopReason = 'end' | 'max_tokens' | 'stop_sequence' | 'cancelled';
const STOP: Record<string, StopReason> = {
  eos: 'end',
  max_tokens: 'max_tokens',
  stop: 'stop_sequence',
  context: 'max_tokens',
};

export class LlmService {
  private models = new Map<string, LocalLlm>();

  constructor(
    private bus: Bus,
    private metrics: Metrics,
  ) {}

  /** Offer a loaded model on the bus (id defaults to its model_id); returns the function that withdraws it. */
  serve(llm: LocalLlm, id = llm.info().model_id): () => void {
    if (this.models.has(id)) throw new HnError('duplicate', `model ${id} is already served`);
    this.models.set(id, llm);
    if (this.models.size === 1) for (const c of this.capabilities()) this.bus.register(c);
    return () => {
      if (this.models.get(id) !== llm) return;
      this.models.delete(id);
      if (this.models.size === 0) {
        this.bus.unregister('llm.chat');
        this.bus.unregister('llm.models.list');
      }
    };
  }

  list(): string[] {
    return [...this.models.keys()];
  }

  private capabilities(): Capability[] {
    const self = this;
    return [
      {
        descriptor: descriptor('llm.chat', 'core', {
          stability: 'stable',
          description: 'Chat with a model loaded on this node (streaming tokens).',
          request_schema: CHAT_REQUEST,
          response_schema: null,
          stream_schema: CHAT_FRAME,
          timeout_seconds: LLM_GENERATION_DEFAULT_TIMEOUT_SECONDS,
          max_concurrent: 2,
        }),
        handler: async function* (
          req: { params: { model: string; ctx?: number }; input: ChatInput },
          ctx: CallContext,
        ): AsyncGenerator<
          StreamFrame,
          { tokens_out: number; stop_reason: StopReason; ms: number; held_token_ids?: number[] }
        > {
          const llm = self.models.get(req.params.model);
          if (!llm)
            throw new HnError('not_found', `model ${req.params.model.slice(0, 128)} is not loaded here`);
          const msgs = req.input.messages;
          const prompt = req.input.prompt;
          if ((msgs === undefined) === (prompt === undefined))
            throw new HnError('bad_request', 'give exactly one of messages and prompt', {
              field: 'input.messages',
            });
          if (msgs && !msgs.some((m) => m.role === 'user'))
            throw new HnError('bad_request', 'messages must contain at least one user message', {
              field: 'input.messages',
            });
          if (req.params.ctx !== undefined && req.params.ctx > llm.info().max_seq_len)
            throw new HnError('bad_request', `ctx is above the model's ${llm.info().max_seq_len}`, {
              field: 'params.ctx',
            });
          const t0 = Date.now();
          const it = llm.generate(msgs ?? prompt!, {
            max_tokens: req.input.max_tokens ?? 1024,
            temperature: req.input.temperature ?? 0.7,
            top_p: req.input.top_p ?? 0.95,
            ...(req.input.seed !== undefined ? { seed: req.input.seed } : {}),
            ...(req.input.stop ? { stop: req.input.stop } : {}),
            ...(req.input.session_id !== undefined ? { session_id: req.input.session_id } : {}),
            signal: ctx.signal,
          });
          let n = 0;
          let held: number[] = [];
          try {
            for (;;) {
              const step = await it.next();
              if (step.done) {
                self.metrics.inc(
                  'hearthnet_llm_tokens_generated_total',
                  { model: req.params.model, backend: llm.info().engine },
                  n,
                );
                return {
                  tokens_out: step.value.tokens_out,
                  stop_reason: STOP[step.value.stop_reason] ?? 'end',
                  ms: Date.now() - t0,
                  // ids of trailing tokens whose text never completed (no token frame carried them)
                  ...(held.length ? { held_token_ids: held } : {}),
                };
              }
              n++;
              // a token whose text is held back (part of a UTF-8 character) rides on the next frame's token_ids
              held.push(step.value.token_id);
              if (step.value.text) {
                yield {
                  event: 'token',
                  data: {
                    text: step.value.text,
                    token_id: step.value.token_id,
                    token_ids: held,
                    logprob: step.value.logprob,
                  },
                };
                held = [];
              }
            }
          } catch (e) {
            if (ctx.signal.aborted) return { tokens_out: n, stop_reason: 'cancelled', ms: Date.now() - t0 };
            throw e;
          }
        },
      },
      {
        descriptor: descriptor('llm.models.list', 'core', {
          stability: 'provisional',
          description: 'Models loaded on this node.',
          request_schema: { type: 'object' },
          response_schema: MODELS_RESPONSE,
          idempotent: true,
        }),
        handler: async () => ({
          models: [...self.models].map(([id, m]) => {
            const i = m.info();
            return {
              id,
              engine: i.engine,
              mode: i.mode,
              ...(i.weights_sha256 ? { weights_sha256: i.weights_sha256 } : {}),
              layers: i.layers,
              vocab_size: i.vocab_size,
              max_seq_len: i.max_seq_len,
            };
          }),
        }),
      },
    ];
  }
}

interface ChatInput {
  messages?: { role: 'system' | 'user' | 'assistant'; content: string }[];
  prompt?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  seed?: number;
  session_id?: string;
}
