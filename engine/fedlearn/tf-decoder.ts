/**
 * The base decoder as a TensorFlow.js graph (digest §9: the training worker's model), the same function
 * as the ONNX graph tools/model writes (RMSNorm, rotary, grouped-query attention, SwiGLU), with LoRA on
 * any target module: `x·W + (α/r)·drop(x)·Aᵀ·Bᵀ`. Full-sequence causal forward (no KV cache), batch
 * [B, S]. The oracle (tests) checks its logits against onnxruntime-web's within 1e-4 before any
 * training result is trusted. Backend: whatever the caller selected (webgpu → wasm → cpu).
 */
import * as tf from '@tensorflow/tfjs';
import { HnError } from '../core/errors.js';
import type { Tensors } from './delta.js';
import { MODULE_WEIGHT, moduleDims, type DecoderDims, type DecoderWeights, type ModuleName } from './base.js';

/** One adapted module: A [r, d_in], B [d_out, r] (variables while training). */
export interface LoraPair {
  A: tf.Tensor2D;
  B: tf.Tensor2D;
}
/** `layers.{i}.{module}` → its pair */
export type LoraSet = Map<string, LoraPair>;

export interface LoraForward {
  set: LoraSet;
  scale: number; // α / r
  dropout: number; // 0 at evaluation
}

type LayerT = Record<keyof DecoderWeights['layers'][number], tf.Tensor>;

export class TfDecoder {
  private readonly embed: tf.Tensor2D;
  private readonly lmHead: tf.Tensor2D;
  private readonly finalNorm: tf.Tensor1D;
  private readonly layers: LayerT[];
  private disposed = false;

  constructor(
    readonly dims: DecoderDims,
    readonly weights: DecoderWeights,
  ) {
    const d = dims;
    const md = moduleDims(d);
    if (weights.layers.length !== d.num_hidden_layers)
      throw new HnError('bad_request', 'weights do not match the layer count');
    this.embed = tf.keep(tf.tensor2d(weights.embed, [d.vocab_size, d.hidden_size]));
    this.lmHead = tf.keep(tf.tensor2d(weights.lm_head, [d.hidden_size, d.vocab_size]));
    this.finalNorm = tf.keep(tf.tensor1d(weights.final_norm));
    this.layers = weights.layers.map((l) => {
      const t = {
        input_norm: tf.keep(tf.tensor1d(l.input_norm)),
        post_norm: tf.keep(tf.tensor1d(l.post_norm)),
      } as LayerT;
      for (const [m, key] of Object.entries(MODULE_WEIGHT))
        t[key] = tf.keep(tf.tensor2d(l[key], md[m as ModuleName]));
      return t;
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([this.embed, this.lmHead, this.finalNorm]);
    for (const l of this.layers) tf.dispose(Object.values(l));
  }

  /** LoRA tensors (from a delta/adapter file) as constant pairs. */
  static loraFromTensors(t: Tensors): LoraSet {
    const set: LoraSet = new Map();
    for (const [name, A] of t) {
      if (!name.endsWith('.lora_A')) continue;
      const key = name.slice(0, -'.lora_A'.length);
      const B = t.get(`${key}.lora_B`);
      if (!B) throw new HnError('delta_invalid', `${key} has no lora_B`);
      set.set(key, {
        A: tf.tensor2d(A.data, A.shape as [number, number]),
        B: tf.tensor2d(B.data, B.shape as [number, number]),
      });
    }
    return set;
  }

  private rmsNorm(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.dims.rms_norm_eps))), w);
  }

  /** cos/sin [1, S, 1, D] with angles p·inv_freq in float32, as the ONNX graph computes them. */
  private rotary(S: number): { cos: tf.Tensor; sin: tf.Tensor } {
    const D = this.dims.head_dim;
    const half = D / 2;
    const c = new Float32Array(S * D);
    const s = new Float32Array(S * D);
    for (let p = 0; p < S; p++)
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * this.weights.inv_freq[i]!);
        c[p * D + i] = c[p * D + half + i] = Math.cos(a);
        s[p * D + i] = s[p * D + half + i] = Math.sin(a);
      }
    return { cos: tf.tensor4d(c, [1, S, 1, D]), sin: tf.tensor4d(s, [1, S, 1, D]) };
  }

  private rope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
    const half = this.dims.head_dim / 2;
    const [x1, x2] = tf.split(x, [half, half], -1);
    const rot = tf.concat([tf.neg(x2!), x1!], -1);
    return tf.add(tf.mul(x, cos), tf.mul(rot, sin));
  }

  private lin(x: tf.Tensor2D, l: number, m: ModuleName, lora: LoraForward | null): tf.Tensor2D {
    const W = this.layers[l]![MODULE_WEIGHT[m]] as tf.Tensor2D;
    let y: tf.Tensor2D = tf.matMul(x, W);
    const p = lora?.set.get(`layers.${l}.${m}`);
    if (p) {
      const xa = lora!.dropout > 0 ? (tf.dropout(x, lora!.dropout) as tf.Tensor2D) : x;
      const low = tf.matMul(tf.matMul(xa, p.A, false, true), p.B, false, true);
      y = tf.add(y, tf.mul(low, lora!.scale)) as tf.Tensor2D;
    }
    return y;
  }

  /** Logits [B·S, V] for token ids [B, S] (int32), causal attention from position 0. */
  forward(ids: tf.Tensor2D, lora: LoraForward | null = null): tf.Tensor2D {
    const d = this.dims;
    const [Bn, S] = ids.shape;
    if (S > d.max_position_embeddings)
      throw new HnError('bad_request', `sequence of ${S} exceeds the context ${d.max_position_embeddings}`);
    const E = d.hidden_size;
    const H = d.num_attention_heads;
    const Hkv = d.num_key_value_heads;
    const D = d.head_dim;
    const G = H / Hkv;
    const N = Bn * S;
    const { cos, sin } = this.rotary(S);
    const maskData = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) maskData[i * S + j] = -1e9;
    const mask = tf.tensor4d(maskData, [1, 1, S, S]);
    let h = tf.reshape(tf.gather(this.embed, tf.reshape(ids, [N])), [N, E]) as tf.Tensor2D;
    for (let l = 0; l < d.num_hidden_layers; l++) {
      const L = this.layers[l]!;
      const x = this.rmsNorm(h, L.input_norm) as tf.Tensor2D;
      const q = this.rope(tf.reshape(this.lin(x, l, 'q_proj', lora), [Bn, S, H, D]), cos, sin);
      const k = this.rope(tf.reshape(this.lin(x, l, 'k_proj', lora), [Bn, S, Hkv, D]), cos, sin);
      const v = tf.reshape(this.lin(x, l, 'v_proj', lora), [Bn, S, Hkv, D]);
      // [B, Hkv, S, D] → repeat each kv head G times → [B, H, S, D]
      // (rank-3 tile: TF.js has no tile gradient above rank 4)
      const expand = (t: tf.Tensor) =>
        tf.reshape(tf.tile(tf.reshape(tf.transpose(t, [0, 2, 1, 3]), [Bn * Hkv, 1, S * D]), [1, G, 1]), [
          Bn,
          H,
          S,
          D,
        ]);
      const qh = tf.transpose(q, [0, 2, 1, 3]);
      const scores = tf.add(tf.mul(tf.matMul(qh, expand(k), false, true), 1 / Math.sqrt(D)), mask);
      const ctx = tf.matMul(tf.softmax(scores, -1), expand(v)); // [B, H, S, D]
      const flat = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [N, H * D]) as tf.Tensor2D;
      const h1 = tf.add(h, this.lin(flat, l, 'o_proj', lora)) as tf.Tensor2D;
      const x2 = this.rmsNorm(h1, L.post_norm) as tf.Tensor2D;
      const gate = this.lin(x2, l, 'gate_proj', lora);
      const up = this.lin(x2, l, 'up_proj', lora);
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
      h = tf.add(h1, this.lin(act, l, 'down_proj', lora)) as tf.Tensor2D;
    }
    const n = this.rmsNorm(h, this.finalNorm) as tf.Tensor2D;
    return tf.matMul(n, this.lmHead);
  }

  /** Mean next-token cross-entropy over windows [B, S+1] (inputs 0..S−1, targets 1..S). */
  loss(windows: tf.Tensor2D, lora: LoraForward | null = null): tf.Scalar {
    const [Bn, S1] = windows.shape;
    const S = S1 - 1;
    const inputs = tf.slice(windows, [0, 0], [Bn, S]) as tf.Tensor2D;
    const targets = tf.reshape(tf.slice(windows, [0, 1], [Bn, S]), [Bn * S]) as tf.Tensor1D;
    const logp = tf.logSoftmax(this.forward(inputs, lora), -1);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, this.dims.vocab_size)), -1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  }
}
