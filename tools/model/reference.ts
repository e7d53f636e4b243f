/**
 * Plain TypeScript float64 forward pass of the tiny decoder: the test oracle for the generated
 * ONNX graph (both variants compute the same function). Weights are the generator's float32 values
 * widened to float64; every intermediate is float64. Batch size 1, no padding. For a quantized
 * model pass the dequantized weights (`effectiveWeights` in quant.ts, or `writeTinyModel().weights`).
 */
import type { TinyConfig, TinyWeights } from './tiny-weights.js';

export class ReferenceModel {
  /** past keys/values per layer: [Hkv][pos][D], post-rotary keys. */
  private k: number[][][][];
  private v: number[][][][];
  private readonly W: TinyWeights;

  constructor(
    readonly cfg: TinyConfig,
    weights: TinyWeights,
  ) {
    this.W = weights;
    this.k = Array.from({ length: cfg.num_hidden_layers }, () =>
      Array.from({ length: cfg.num_key_value_heads }, () => []),
    );
    this.v = Array.from({ length: cfg.num_hidden_layers }, () =>
      Array.from({ length: cfg.num_key_value_heads }, () => []),
    );
  }

  get pastLength(): number {
    return this.k[0]?.[0]?.length ?? 0;
  }

  reset(): void {
    for (const l of this.k) for (const h of l) h.length = 0;
    for (const l of this.v) for (const h of l) h.length = 0;
  }

  /** Appends `ids` to the context and returns logits for each new position ([S][V], float64). */
  forward(ids: number[]): Float64Array[] {
    const c = this.cfg;
    const E = c.hidden_size;
    const out: Float64Array[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size)
        throw new Error(`token id ${id} out of range`);
      const pos = this.pastLength;
      let h: Float64Array = new Float64Array(E);
      for (let e = 0; e < E; e++) h[e] = this.W.embed[id * E + e]!;
      for (let l = 0; l < c.num_hidden_layers; l++) h = this.layer(l, h, pos);
      const n = rmsNorm(h, this.W.final_norm, c.rms_norm_eps);
      out.push(matVec(n, this.W.lm_head, E, c.vocab_size));
    }
    return out;
  }

  private layer(l: number, h: Float64Array, pos: number): Float64Array {
    const c = this.cfg;
    const lw = this.W.layers[l]!;
    const E = c.hidden_size;
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const D = c.head_dim;
    const G = H / Hkv;
    const x = rmsNorm(h, lw.input_norm, c.rms_norm_eps);
    const q = matVec(x, lw.wq, E, H * D);
    const k = matVec(x, lw.wk, E, Hkv * D);
    const v = matVec(x, lw.wv, E, Hkv * D);
    for (let hh = 0; hh < H; hh++) this.rope(q, hh * D, pos);
    for (let hh = 0; hh < Hkv; hh++) {
      this.rope(k, hh * D, pos);
      this.k[l]![hh]!.push(Array.from(k.subarray(hh * D, hh * D + D)));
      this.v[l]![hh]!.push(Array.from(v.subarray(hh * D, hh * D + D)));
    }
    const ctx = new Float64Array(H * D);
    const scale = 1 / Math.sqrt(D);
    for (let hh = 0; hh < H; hh++) {
      const kvh = Math.floor(hh / G);
      const keys = this.k[l]![kvh]!;
      const vals = this.v[l]![kvh]!;
      const T = keys.length;
      const s = new Float64Array(T);
      let mx = -Infinity;
      for (let t = 0; t < T; t++) {
        let d = 0;
        const kt = keys[t]!;
        for (let i = 0; i < D; i++) d += q[hh * D + i]! * kt[i]!;
        s[t] = d * scale;
        if (s[t]! > mx) mx = s[t]!;
      }
      let sum = 0;
      for (let t = 0; t < T; t++) {
        s[t] = Math.exp(s[t]! - mx);
        sum += s[t]!;
      }
      for (let t = 0; t < T; t++) {
        const p = s[t]! / sum;
        const vt = vals[t]!;
        for (let i = 0; i < D; i++) ctx[hh * D + i]! += p * vt[i]!;
      }
    }
    const o = matVec(ctx, lw.wo, H * D, E);
    const h1 = new Float64Array(E);
    for (let e = 0; e < E; e++) h1[e] = h[e]! + o[e]!;
    const x2 = rmsNorm(h1, lw.post_norm, c.rms_norm_eps);
    const I = c.intermediate_size;
    const gate = matVec(x2, lw.w_gate, E, I);
    const up = matVec(x2, lw.w_up, E, I);
    const act = new Float64Array(I);
    for (let i = 0; i < I; i++) {
      const gv = gate[i]!;
      act[i] = (gv / (1 + Math.exp(-gv))) * up[i]!;
    }
    const down = matVec(act, lw.w_down, I, E);
    const h2 = new Float64Array(E);
    for (let e = 0; e < E; e++) h2[e] = h1[e]! + down[e]!;
    return h2;
  }

  /** Non-interleaved rotary (rotate_half) on x[off .. off+D). */
  private rope(x: Float64Array, off: number, pos: number): void {
    const D = this.cfg.head_dim;
    const half = D / 2;
    for (let i = 0; i < half; i++) {
      const a = pos * this.W.inv_freq[i]!;
      const cs = Math.cos(a);
      const sn = Math.sin(a);
      const x1 = x[off + i]!;
      const x2 = x[off + half + i]!;
      x[off + i] = x1 * cs - x2 * sn;
      x[off + half + i] = x2 * cs + x1 * sn;
    }
  }
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * r * w[i]!;
  return out;
}

/** y = x @ W with W row-major [n, m]. */
function matVec(x: Float64Array, W: Float32Array, n: number, m: number): Float64Array {
  const y = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    const row = i * m;
    for (let j = 0; j < m; j++) y[j]! += xi * W[row + j]!;
  }
  return y;
}
