/**
 * Model configuration from whatever the exporter wrote: Hugging Face `config.json` (Optimum, torch
 * dynamo) or onnxruntime-genai's `genai_config.json` (`model.decoder.*`). Normalised to the
 * `config.json` field names; `head_dim` defaults to hidden_size ÷ num_attention_heads (the HF rule
 * when a config omits it), `num_key_value_heads` to num_attention_heads.
 */
import { HnError } from '../core/errors.js';

export interface HfConfig {
  _name_or_path?: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
  max_position_embeddings?: number;
  eos_token_id?: number | number[] | null;
  tie_word_embeddings?: boolean;
}

export const CONFIG_FILES = ['config.json', 'genai_config.json'] as const;
export type ConfigFile = (typeof CONFIG_FILES)[number];

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;

/** Partial dims from a parsed config file (missing fields left undefined). */
export function normaliseConfig(json: unknown, file: ConfigFile): Partial<HfConfig> {
  if (!json || typeof json !== 'object') throw new HnError('bad_request', `${file} is not a JSON object`);
  const o = json as Record<string, unknown>;
  if (file === 'genai_config.json') {
    const model = (o['model'] ?? {}) as Record<string, unknown>;
    const dec = (model['decoder'] ?? {}) as Record<string, unknown>;
    const out: Partial<HfConfig> = {};
    const set = <K extends keyof HfConfig>(k: K, v: HfConfig[K] | undefined): void => {
      if (v !== undefined) out[k] = v;
    };
    set('vocab_size', num(model['vocab_size']));
    set('hidden_size', num(dec['hidden_size']));
    set('num_hidden_layers', num(dec['num_hidden_layers']));
    set('num_attention_heads', num(dec['num_attention_heads']));
    set('num_key_value_heads', num(dec['num_key_value_heads']));
    set('head_dim', num(dec['head_size']));
    set('max_position_embeddings', num(model['context_length']));
    const eos = model['eos_token_id'];
    if (typeof eos === 'number' || Array.isArray(eos)) out.eos_token_id = eos as number | number[];
    if (typeof model['type'] === 'string') out._name_or_path = model['type'];
    return out;
  }
  const out: Partial<HfConfig> = { ...(o as Partial<HfConfig>) };
  // multimodal / nested configs keep the decoder under text_config
  const tc = o['text_config'];
  if (tc && typeof tc === 'object' && !num(o['hidden_size']))
    Object.assign(out, normaliseConfig(tc, 'config.json'));
  if (out.head_dim !== undefined && !num(out.head_dim)) delete out.head_dim;
  return out;
}

/** Fills head_dim / num_key_value_heads by the HF rules; refuses when a required field is missing. */
export function completeConfig(c: Partial<HfConfig>, file: string): HfConfig {
  const missing = (['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads'] as const).filter(
    (k) => !num(c[k]),
  );
  if (missing.length)
    throw new HnError(
      'bad_request',
      `${file} lacks ${missing.join(', ')}; export with optimum-cli or the onnxruntime-genai builder, which write a complete config.json / genai_config.json next to model.onnx`,
    );
  const cfg = c as HfConfig;
  return {
    ...cfg,
    num_key_value_heads: num(cfg.num_key_value_heads) ?? cfg.num_attention_heads,
    head_dim: num(cfg.head_dim) ?? cfg.hidden_size / cfg.num_attention_heads,
  };
}
