/**
 * 4-bit block quantization in the layouts of the com.microsoft contrib operators that
 * onnxruntime-genai int4 exports use:
 *
 *  - `MatMulNBits` (bits 4): weight W [K, N] (y = x @ W) stored transposed and blocked along K:
 *    B uint8 [N, K/bs, bs/2] (two values per byte, low nibble first), scales float [N·K/bs],
 *    zero_points uint8 [N·⌈(K/bs)/2⌉] (per column, two blocks per byte, low nibble first).
 *  - `GatherBlockQuantized` (uint8 data, bits 4, gather_axis 0, quantize_axis 1): table T [V, E]
 *    stored as data uint8 [V, E/2], scales float [V, E/bs], zero_points uint8 [V, ⌈(E/bs)/2⌉].
 *
 * Asymmetric quantization per block (as onnxruntime's MatMul4BitsQuantizer, is_symmetric=False):
 * range [min(0, lo), max(0, hi)], scale = range/15, zp = round(−min/scale) ∈ [0, 15],
 * q = clamp(round(x/scale) + zp, 0, 15); dequantized value = float32((q − zp)·scale).
 * `deq` returns those dequantized values in the original [K, N] / [V, E] layout, so the float64
 * reference can run exactly the weights the quantized graph holds.
 */

import type { TinyConfig, TinyWeights } from './tiny-weights.js';

export const QUANT_BLOCK_SIZES = [16, 32] as const;
export type QuantBlockSize = (typeof QUANT_BLOCK_SIZES)[number];

interface Block {
  scale: number;
  zp: number;
}

function quantBlock(xs: ArrayLike<number>): Block {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < xs.length; i++) {
    lo = Math.min(lo, xs[i]!);
    hi = Math.max(hi, xs[i]!);
  }
  const scale = Math.fround((hi - lo) / 15);
  if (scale === 0) return { scale: 0, zp: 8 };
  const zp = Math.max(0, Math.min(15, Math.round(-lo / scale)));
  return { scale, zp };
}

function q4(x: number, b: Block): number {
  if (b.scale === 0) return b.zp;
  return Math.max(0, Math.min(15, Math.round(x / b.scale) + b.zp));
}

function setNibble(buf: Uint8Array, idx: number, v: number): void {
  const byte = idx >> 1;
  buf[byte] = idx & 1 ? (buf[byte]! & 0x0f) | (v << 4) : (buf[byte]! & 0xf0) | v;
}

export interface MatMulNBitsWeights {
  K: number;
  N: number;
  blockSize: number;
  /** uint8 [N, K/bs, bs/2] */
  b: Uint8Array;
  /** float32 [N·K/bs] */
  scales: Float32Array;
  /** uint8 [N·⌈(K/bs)/2⌉] */
  zeroPoints: Uint8Array;
  /** dequantized W, float32 [K, N] row-major */
  deq: Float32Array;
}

export function quantizeMatMulNBits(
  w: Float32Array,
  K: number,
  N: number,
  blockSize: number,
): MatMulNBitsWeights {
  if (K % blockSize !== 0)
    throw new Error(`MatMulNBits: K=${K} is not a multiple of block size ${blockSize}`);
  const nb = K / blockSize;
  const blob = blockSize / 2;
  const zpPerCol = Math.ceil(nb / 2);
  const b = new Uint8Array(N * nb * blob);
  const scales = new Float32Array(N * nb);
  const zeroPoints = new Uint8Array(N * zpPerCol);
  const deq = new Float32Array(K * N);
  const col = new Float32Array(blockSize);
  for (let n = 0; n < N; n++)
    for (let k0 = 0; k0 < nb; k0++) {
      for (let i = 0; i < blockSize; i++) col[i] = w[(k0 * blockSize + i) * N + n]!;
      const blk = quantBlock(col);
      scales[n * nb + k0] = blk.scale;
      setNibble(zeroPoints, n * zpPerCol * 2 + k0, blk.zp);
      for (let i = 0; i < blockSize; i++) {
        const q = q4(col[i]!, blk);
        setNibble(b, (n * nb + k0) * blob * 2 + i, q);
        deq[(k0 * blockSize + i) * N + n] = Math.fround((q - blk.zp) * blk.scale);
      }
    }
  return { K, N, blockSize, b, scales, zeroPoints, deq };
}

export interface GatherBlockQuantizedWeights {
  V: number;
  E: number;
  blockSize: number;
  /** uint8 [V, E/2] */
  data: Uint8Array;
  /** float32 [V, E/bs] */
  scales: Float32Array;
  /** uint8 [V, ⌈(E/bs)/2⌉] */
  zeroPoints: Uint8Array;
  /** dequantized table, float32 [V, E] */
  deq: Float32Array;
}

export function quantizeGatherBlock(
  t: Float32Array,
  V: number,
  E: number,
  blockSize: number,
): GatherBlockQuantizedWeights {
  if (E % blockSize !== 0)
    throw new Error(`GatherBlockQuantized: E=${E} is not a multiple of block size ${blockSize}`);
  const nb = E / blockSize;
  const zpPerRow = Math.ceil(nb / 2);
  const data = new Uint8Array((V * E) / 2);
  const scales = new Float32Array(V * nb);
  const zeroPoints = new Uint8Array(V * zpPerRow);
  const deq = new Float32Array(V * E);
  for (let v = 0; v < V; v++)
    for (let k0 = 0; k0 < nb; k0++) {
      const off = v * E + k0 * blockSize;
      const blk = quantBlock(t.subarray(off, off + blockSize));
      scales[v * nb + k0] = blk.scale;
      setNibble(zeroPoints, v * zpPerRow * 2 + k0, blk.zp);
      for (let i = 0; i < blockSize; i++) {
        const q = q4(t[off + i]!, blk);
        setNibble(data, off + i, q);
        deq[off + i] = Math.fround((q - blk.zp) * blk.scale);
      }
    }
  return { V, E, blockSize, data, scales, zeroPoints, deq };
}

export interface QuantizedLayer {
  wq: MatMulNBitsWeights;
  wk: MatMulNBitsWeights;
  wv: MatMulNBitsWeights;
  wo: MatMulNBitsWeights;
  w_gate: MatMulNBitsWeights;
  w_up: MatMulNBitsWeights;
  w_down: MatMulNBitsWeights;
}

export interface QuantizedTinyWeights {
  embed: GatherBlockQuantizedWeights;
  layers: QuantizedLayer[];
  lm_head: MatMulNBitsWeights;
  /** The float weights with every quantized tensor replaced by its dequantized values. */
  dequantized: TinyWeights;
}

/** Quantizes the tiny model's embedding, linear layers and LM head (norms stay float32). */
export function quantizeTinyWeights(c: TinyConfig, w: TinyWeights): QuantizedTinyWeights {
  const bs = c.quant_block_size;
  const E = c.hidden_size;
  const HD = c.num_attention_heads * c.head_dim;
  const KVD = c.num_key_value_heads * c.head_dim;
  const I = c.intermediate_size;
  const embed = quantizeGatherBlock(w.embed, c.vocab_size, E, bs);
  const layers = w.layers.map((lw): QuantizedLayer => ({
    wq: quantizeMatMulNBits(lw.wq, E, HD, bs),
    wk: quantizeMatMulNBits(lw.wk, E, KVD, bs),
    wv: quantizeMatMulNBits(lw.wv, E, KVD, bs),
    wo: quantizeMatMulNBits(lw.wo, HD, E, bs),
    w_gate: quantizeMatMulNBits(lw.w_gate, E, I, bs),
    w_up: quantizeMatMulNBits(lw.w_up, E, I, bs),
    w_down: quantizeMatMulNBits(lw.w_down, I, E, bs),
  }));
  const lm_head = quantizeMatMulNBits(w.lm_head, E, c.vocab_size, bs);
  const dequantized: TinyWeights = {
    embed: embed.deq,
    layers: w.layers.map((lw, l) => {
      const q = layers[l]!;
      return {
        ...lw,
        wq: q.wq.deq,
        wk: q.wk.deq,
        wv: q.wv.deq,
        wo: q.wo.deq,
        w_gate: q.w_gate.deq,
        w_up: q.w_up.deq,
        w_down: q.w_down.deq,
      };
    }),
    final_norm: w.final_norm,
    lm_head: lm_head.deq,
    inv_freq: w.inv_freq,
  };
  return { embed, layers, lm_head, dequantized };
}

/** The weights the generated graph computes with: dequantized when `c.quantized`, else `w` itself. */
export function effectiveWeights(c: TinyConfig, w: TinyWeights): TinyWeights {
  return c.quantized ? quantizeTinyWeights(c, w).dequantized : w;
}
