/**
 * The tiny model as files: model.onnx + HF-style config.json, tokenizer.json, tokenizer_config.json.
 * The tokenizer is a byte-level BPE (GPT-2 byte alphabet, no merges: one token per UTF-8 byte) plus
 * ChatML special tokens, so the same loading code serves it and real Qwen-style exports.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { buildTinyModel } from './tiny-graph.js';
import { encodeModel } from './onnx.js';
import { effectiveWeights } from './quant.js';
import {
  DEFAULT_TINY,
  makeWeights,
  validateConfig,
  type TinyConfig,
  type TinyWeights,
} from './tiny-weights.js';

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;
export const TINY_VOCAB_SIZE = 256 + SPECIAL_TOKENS.length;

const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's reversible byte → printable-unicode table used by ByteLevel pre-tokenizers. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  const table: string[] = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i]!)));
  return table;
}

export function tinyTokenizerJson(): Record<string, unknown> {
  const table = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[table[b]!] = b;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export function tinyTokenizerConfig(c: TinyConfig): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    model_max_length: c.max_position_embeddings,
    chat_template: CHATML_TEMPLATE,
  };
}

export function hfConfig(c: TinyConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim,
    max_position_embeddings: c.max_position_embeddings,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: null,
    eos_token_id: 256 + SPECIAL_TOKENS.indexOf('<|im_end|>'),
    pad_token_id: 256 + SPECIAL_TOKENS.indexOf('<|endoftext|>'),
    torch_dtype: 'float32',
    _name_or_path: c.model_id,
    hearthnet: {
      generator: 'make-tiny-model/1',
      seed: c.seed,
      fused: c.fused,
      ...(c.quantized ? { quantized: { bits: 4, block_size: c.quant_block_size } } : {}),
    },
  };
}

/** Reads a TinyConfig back from the config.json this module writes. */
export function tinyConfigFromHf(j: Record<string, unknown>): TinyConfig {
  const hn = (j['hearthnet'] ?? {}) as {
    seed?: number;
    fused?: boolean;
    quantized?: { bits?: number; block_size?: number };
  };
  const num = (k: string): number => {
    const v = j[k];
    if (typeof v !== 'number') throw new Error(`config.json: ${k} missing`);
    return v;
  };
  return {
    model_id: String(j['_name_or_path'] ?? DEFAULT_TINY.model_id),
    vocab_size: num('vocab_size'),
    hidden_size: num('hidden_size'),
    intermediate_size: num('intermediate_size'),
    num_hidden_layers: num('num_hidden_layers'),
    num_attention_heads: num('num_attention_heads'),
    num_key_value_heads: num('num_key_value_heads'),
    head_dim: num('head_dim'),
    max_position_embeddings: num('max_position_embeddings'),
    rms_norm_eps: num('rms_norm_eps'),
    rope_theta: num('rope_theta'),
    seed: hn.seed ?? DEFAULT_TINY.seed,
    fused: hn.fused ?? false,
    quantized: hn.quantized !== undefined,
    quant_block_size: hn.quantized?.block_size ?? DEFAULT_TINY.quant_block_size,
  };
}

export function tinyConfig(over: Partial<TinyConfig> = {}): TinyConfig {
  const c: TinyConfig = { ...DEFAULT_TINY, vocab_size: TINY_VOCAB_SIZE, ...over };
  validateConfig(c);
  if (c.vocab_size < TINY_VOCAB_SIZE)
    throw new Error(`vocab_size must be ≥ ${TINY_VOCAB_SIZE} (bytes + special tokens)`);
  return c;
}

export interface WrittenTinyModel {
  dir: string;
  modelPath: string;
  config: TinyConfig;
  /** The weights the graph computes with (dequantized values when `config.quantized`). */
  weights: TinyWeights;
  sha256: string;
  bytes: number;
}

export function writeTinyModel(dir: string, over: Partial<TinyConfig> = {}): WrittenTinyModel {
  const config = tinyConfig(over);
  const raw = makeWeights(config);
  const bytes = encodeModel(buildTinyModel(config, raw));
  const weights = effectiveWeights(config, raw);
  mkdirSync(dir, { recursive: true });
  const modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, bytes);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig(config), null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()) + '\n');
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify(tinyTokenizerConfig(config), null, 2) + '\n',
  );
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { dir, modelPath, config, weights, sha256, bytes: bytes.length };
}
