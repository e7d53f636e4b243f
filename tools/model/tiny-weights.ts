/**
 * Configuration and deterministic seeded weights of the tiny Llama-style decoder.
 * Shared by the ONNX generator and the float64 reference so both see the very same float32 values.
 */
import type { DecoderDims } from '../../engine/fedlearn/base.js';
import { SeededRng } from '../../engine/llm/rng.js';

export { SeededRng };

/** The decoder's dimensions (shared with M28's TF.js decoder, which trains on the same weights). */
export interface TinyConfig extends DecoderDims {
  model_id: string;
  seed: number;
  /** Emit com.microsoft fused operators (SkipSimplifiedLayerNormalization, RotaryEmbedding, GroupQueryAttention). */
  fused: boolean;
  /**
   * Store the linear-layer weights (q/k/v/o, gate/up/down, lm_head) as 4-bit block-quantized
   * com.microsoft MatMulNBits and the embedding as GatherBlockQuantized (onnxruntime-genai int4
   * layout, asymmetric, with scales and zero points); see quant.ts.
   */
  quantized: boolean;
  /** Quantization block size along the reduction axis (16 or 32); used when `quantized`. */
  quant_block_size: number;
}

export const DEFAULT_TINY: TinyConfig = {
  model_id: 'hn-tiny-llama',
  vocab_size: 0, // filled from the tokenizer (bytes + specials)
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  seed: 42,
  fused: false,
  quantized: false,
  quant_block_size: 32,
};

export interface LayerWeights {
  input_norm: Float32Array; // [E]
  wq: Float32Array; // [E, H*D]   (y = x @ W)
  wk: Float32Array; // [E, Hkv*D]
  wv: Float32Array; // [E, Hkv*D]
  wo: Float32Array; // [H*D, E]
  post_norm: Float32Array; // [E]
  w_gate: Float32Array; // [E, I]
  w_up: Float32Array; // [E, I]
  w_down: Float32Array; // [I, E]
}

export interface TinyWeights {
  embed: Float32Array; // [V, E]
  layers: LayerWeights[];
  final_norm: Float32Array; // [E]
  lm_head: Float32Array; // [E, V]
  inv_freq: Float32Array; // [D/2]
}

function normalArray(rng: SeededRng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}
function normArray(rng: SeededRng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 1 + 0.1 * rng.normal();
  return a;
}

export function validateConfig(c: TinyConfig): void {
  const ints: (keyof TinyConfig)[] = [
    'vocab_size',
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'head_dim',
    'max_position_embeddings',
  ];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`config ${k} must be a positive integer`);
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0)
    throw new Error('num_attention_heads must be a multiple of num_key_value_heads');
  if (c.head_dim % 2 !== 0) throw new Error('head_dim must be even (rotary halves)');
  if (c.quantized) {
    const bs = c.quant_block_size;
    if (bs !== 16 && bs !== 32) throw new Error('quant_block_size must be 16 or 32');
    const ks: [string, number][] = [
      ['hidden_size', c.hidden_size],
      ['num_attention_heads·head_dim', c.num_attention_heads * c.head_dim],
      ['intermediate_size', c.intermediate_size],
    ];
    for (const [k, v] of ks)
      if (v % bs !== 0) throw new Error(`quantized: ${k} (${v}) must be a multiple of the block size ${bs}`);
  }
}

/**
 * Weights drawn in a fixed order from one seeded stream. Scales keep activations O(1) and give the
 * logits a spread of a few units, so greedy decoding has clear (non-tied) winners.
 */
export function makeWeights(c: TinyConfig): TinyWeights {
  validateConfig(c);
  const rng = new SeededRng(c.seed);
  const E = c.hidden_size;
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = c.head_dim;
  const I = c.intermediate_size;
  const V = c.vocab_size;
  const embed = normalArray(rng, V * E, 1.0);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    layers.push({
      input_norm: normArray(rng, E),
      wq: normalArray(rng, E * H * D, 1 / Math.sqrt(E)),
      wk: normalArray(rng, E * Hkv * D, 1 / Math.sqrt(E)),
      wv: normalArray(rng, E * Hkv * D, 1 / Math.sqrt(E)),
      wo: normalArray(rng, H * D * E, 0.5 / Math.sqrt(H * D)),
      post_norm: normArray(rng, E),
      w_gate: normalArray(rng, E * I, 1 / Math.sqrt(E)),
      w_up: normalArray(rng, E * I, 1 / Math.sqrt(E)),
      w_down: normalArray(rng, I * E, 0.5 / Math.sqrt(I)),
    });
  }
  const final_norm = normArray(rng, E);
  const lm_head = normalArray(rng, E * V, 2 / Math.sqrt(E));
  const inv_freq = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv_freq[i] = 1 / Math.pow(c.rope_theta, (2 * i) / D);
  return { embed, layers, final_norm, lm_head, inv_freq };
}
