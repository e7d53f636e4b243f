/**
 * Builds the tiny Llama-style decoder as a standard ONNX graph ("with past", not merged), laid out
 * like an Optimum export: node names `/model/layers.{i}/...`, inputs `input_ids`, `attention_mask`,
 * `position_ids`, `past_key_values.{i}.key|value`; outputs `logits`, `present.{i}.key|value`.
 *
 * Two variants:
 *  - standard (opset 17 primitives): RMSNorm as Pow/ReduceMean/Sqrt/Div, rotary as Slice/Neg/Concat,
 *    grouped-query attention by broadcasting each KV head over its query group, SwiGLU MLP. Like
 *    Optimum, the causal mask reads the sequence length from `Shape(input_ids)` and the past length
 *    from `Shape(past_key_values.0.key)` — the splitter must rewrite both inside shards.
 *  - fused (`--fused`, like the onnxruntime-genai builder): SimplifiedLayerNormalization,
 *    SkipSimplifiedLayerNormalization (so the residual stream is never a single tensor at a layer
 *    boundary), com.microsoft RotaryEmbedding and GroupQueryAttention.
 * Orthogonal to both, `--quantized` (like an onnxruntime-genai int4 export) stores every linear layer
 * (q/k/v/o, gate/up/down, lm_head) as a com.microsoft MatMulNBits (4-bit, block size 16 or 32,
 * scales + zero points) and the embedding as a com.microsoft GatherBlockQuantized; see quant.ts.
 */
import {
  DataType,
  attr,
  encodeModel,
  tensorFromFloat32,
  tensorFromInt64,
  valueInfo,
  type AttrValue,
  type Model,
  type OnnxNode,
  type TensorProto,
} from './onnx.js';
import { quantizeTinyWeights, type GatherBlockQuantizedWeights, type MatMulNBitsWeights } from './quant.js';
import { makeWeights, type TinyConfig, type TinyWeights } from './tiny-weights.js';

class GraphBuilder {
  nodes: OnnxNode[] = [];
  inits: TensorProto[] = [];
  private used = new Set<string>();
  private constCount = 0;

  op(
    name: string,
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    opts: { outputs?: number | string[]; domain?: string } = {},
  ): string[] {
    if (this.used.has(name)) throw new Error(`duplicate node name ${name}`);
    this.used.add(name);
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => `${name}_output_${i}`);
    const node: OnnxNode = {
      name,
      opType,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    };
    if (opts.domain) node.domain = opts.domain;
    this.nodes.push(node);
    return outs;
  }
  op1(
    name: string,
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    domain?: string,
  ): string {
    return this.op(name, opType, inputs, attrs, domain ? { domain } : {})[0]!;
  }
  f32(name: string, dims: number[], data: Float32Array): string {
    this.inits.push(tensorFromFloat32(name, dims, data));
    return name;
  }
  u8(name: string, dims: number[], data: Uint8Array): string {
    this.inits.push({ name, dims, dataType: DataType.UINT8, rawData: data.slice() });
    return name;
  }
  /**
   * y = x @ W: a MatMul on the float32 initializer named `w`, or a MatMulNBits on the 4-bit
   * initializers `<base>.qweight|scales|qzeros` when `w` is quantized.
   */
  linear(
    p: string,
    x: string,
    w: string | { base: string; q: MatMulNBitsWeights },
    outputs?: string[],
  ): string {
    const opts = outputs ? { outputs } : {};
    if (typeof w === 'string') return this.op(`${p}/MatMul`, 'MatMul', [x, w], {}, opts)[0]!;
    const { base, q } = w;
    const nb = q.K / q.blockSize;
    const b = this.u8(`${base}.qweight`, [q.N, nb, q.blockSize / 2], q.b);
    const sc = this.f32(`${base}.scales`, [q.N * nb], q.scales);
    const zp = this.u8(`${base}.qzeros`, [q.zeroPoints.length], q.zeroPoints);
    return this.op(
      `${p}/MatMulNBits`,
      'MatMulNBits',
      [x, b, sc, zp],
      { K: q.K, N: q.N, bits: 4, block_size: q.blockSize, accuracy_level: 0 },
      { ...opts, domain: 'com.microsoft' },
    )[0]!;
  }
  gatherBlockQuantized(p: string, ids: string, weightName: string, q: GatherBlockQuantizedWeights): string {
    const base = weightName.replace(/\.weight$/, '');
    const nb = q.E / q.blockSize;
    const data = this.u8(`${base}.qweight`, [q.V, q.E / 2], q.data);
    const sc = this.f32(`${base}.scales`, [q.V, nb], q.scales);
    const zp = this.u8(`${base}.qzeros`, [q.V, Math.ceil(nb / 2)], q.zeroPoints);
    return this.op1(
      `${p}/GatherBlockQuantized`,
      'GatherBlockQuantized',
      [data, ids, sc, zp],
      { gather_axis: 0, quantize_axis: 1, block_size: q.blockSize, bits: 4 },
      'com.microsoft',
    );
  }
  i64(values: number[], dims?: number[]): string {
    const name = `/model/constants/i64_${this.constCount++}`;
    this.inits.push(tensorFromInt64(name, dims ?? [values.length], values));
    return name;
  }
  scalarF32(v: number): string {
    const name = `/model/constants/f32_${this.constCount++}`;
    this.inits.push(tensorFromFloat32(name, [], Float32Array.of(v)));
    return name;
  }
}

function rmsNormStd(g: GraphBuilder, p: string, x: string, w: string, eps: number): string {
  const two = g.scalarF32(2);
  const e = g.scalarF32(eps);
  const sq = g.op1(`${p}/Pow`, 'Pow', [x, two]);
  const mean = g.op1(`${p}/ReduceMean`, 'ReduceMean', [sq], { axes: [-1], keepdims: 1 });
  const add = g.op1(`${p}/Add`, 'Add', [mean, e]);
  const sqrt = g.op1(`${p}/Sqrt`, 'Sqrt', [add]);
  const div = g.op1(`${p}/Div`, 'Div', [x, sqrt]);
  return g.op1(`${p}/Mul`, 'Mul', [div, w]);
}

/** x [B,N,S,D] → x·cos + rotate_half(x)·sin with cos/sin [B,1,S,D]. */
function rotaryStd(g: GraphBuilder, p: string, x: string, cos: string, sin: string, D: number): string {
  const half = D / 2;
  const axes = g.i64([-1]);
  const x1 = g.op1(`${p}/Slice`, 'Slice', [x, g.i64([0]), g.i64([half]), axes]);
  const x2 = g.op1(`${p}/Slice_1`, 'Slice', [x, g.i64([half]), g.i64([D]), axes]);
  const nx2 = g.op1(`${p}/Neg`, 'Neg', [x2]);
  const rot = g.op1(`${p}/Concat`, 'Concat', [nx2, x1], { axis: -1 });
  const a = g.op1(`${p}/Mul`, 'Mul', [x, cos]);
  const b = g.op1(`${p}/Mul_1`, 'Mul', [rot, sin]);
  return g.op1(`${p}/Add`, 'Add', [a, b]);
}

export function buildTinyModel(c: TinyConfig, w: TinyWeights = makeWeights(c)): Model {
  const g = new GraphBuilder();
  const E = c.hidden_size;
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = c.head_dim;
  const G = H / Hkv;
  const I = c.intermediate_size;
  const V = c.vocab_size;
  const L = c.num_hidden_layers;

  const qw = c.quantized ? quantizeTinyWeights(c, w) : undefined;
  let hidden = qw
    ? g.gatherBlockQuantized('/model/embed_tokens', 'input_ids', 'model.embed_tokens.weight', qw.embed)
    : g.op1(
        '/model/embed_tokens/Gather',
        'Gather',
        [g.f32('model.embed_tokens.weight', [V, E], w.embed), 'input_ids'],
        { axis: 0 },
      );

  // ---- shared (computed once, used by every layer) ----
  let cos = '';
  let sin = '';
  let maskBias = '';
  let seqlensK = '';
  let totalLen = '';
  let cosCache = '';
  let sinCache = '';
  if (!c.fused) {
    const invFreq = g.f32('model.rotary_emb.inv_freq', [D / 2], w.inv_freq);
    const posF = g.op1('/model/rotary_emb/Cast', 'Cast', ['position_ids'], { to: DataType.FLOAT });
    const posU = g.op1('/model/rotary_emb/Unsqueeze', 'Unsqueeze', [posF, g.i64([-1])]);
    const freqs = g.op1('/model/rotary_emb/Mul', 'Mul', [posU, invFreq]); // [B,S,D/2]
    const emb = g.op1('/model/rotary_emb/Concat', 'Concat', [freqs, freqs], { axis: -1 }); // [B,S,D]
    const cos0 = g.op1('/model/rotary_emb/Cos', 'Cos', [emb]);
    const sin0 = g.op1('/model/rotary_emb/Sin', 'Sin', [emb]);
    cos = g.op1('/model/rotary_emb/Unsqueeze_1', 'Unsqueeze', [cos0, g.i64([1])]); // [B,1,S,D]
    sin = g.op1('/model/rotary_emb/Unsqueeze_2', 'Unsqueeze', [sin0, g.i64([1])]);

    // causal + padding mask bias [B,1,1,S,T] (extra axis for the query-group broadcast)
    const shIds = g.op1('/model/causal_mask/Shape', 'Shape', ['input_ids']);
    const S = g.op1('/model/causal_mask/Gather', 'Gather', [shIds, g.i64([1], [])], { axis: 0 });
    const shPast = g.op1('/model/causal_mask/Shape_1', 'Shape', ['past_key_values.0.key']);
    const P = g.op1('/model/causal_mask/Gather_1', 'Gather', [shPast, g.i64([2], [])], { axis: 0 });
    const T = g.op1('/model/causal_mask/Add', 'Add', [P, S]);
    const zero = g.i64([0], []);
    const one = g.i64([1], []);
    const keys = g.op1('/model/causal_mask/Range', 'Range', [zero, T, one]); // [T]
    const qpos = g.op1('/model/causal_mask/Range_1', 'Range', [P, T, one]); // [S]
    const keysU = g.op1('/model/causal_mask/Unsqueeze', 'Unsqueeze', [keys, g.i64([0])]); // [1,T]
    const qposU = g.op1('/model/causal_mask/Unsqueeze_1', 'Unsqueeze', [qpos, g.i64([1])]); // [S,1]
    const causal = g.op1('/model/causal_mask/LessOrEqual', 'LessOrEqual', [keysU, qposU]); // [S,T]
    const padB = g.op1('/model/causal_mask/Cast', 'Cast', ['attention_mask'], { to: DataType.BOOL }); // [B,T]
    const padU = g.op1('/model/causal_mask/Unsqueeze_2', 'Unsqueeze', [padB, g.i64([1, 2, 3])]); // [B,1,1,1,T]
    const allowed = g.op1('/model/causal_mask/And', 'And', [causal, padU]); // [B,1,1,S,T]
    maskBias = g.op1('/model/causal_mask/Where', 'Where', [allowed, g.scalarF32(0), g.scalarF32(-1e9)]);
  } else {
    const half = D / 2;
    const cc = new Float32Array(c.max_position_embeddings * half);
    const sc = new Float32Array(c.max_position_embeddings * half);
    for (let p = 0; p < c.max_position_embeddings; p++)
      for (let i = 0; i < half; i++) {
        const a = p * w.inv_freq[i]!;
        cc[p * half + i] = Math.cos(a);
        sc[p * half + i] = Math.sin(a);
      }
    cosCache = g.f32('cos_cache', [c.max_position_embeddings, half], cc);
    sinCache = g.f32('sin_cache', [c.max_position_embeddings, half], sc);
    // GroupQueryAttention wants seqlens_k = (valid tokens − 1) as int32 and total length as an int32 scalar.
    const rs = g.op1('/model/attn_mask_reformat/ReduceSum', 'ReduceSum', ['attention_mask', g.i64([1])], {
      keepdims: 0,
    });
    const sub = g.op1('/model/attn_mask_reformat/Sub', 'Sub', [rs, g.i64([1], [])]);
    seqlensK = g.op1('/model/attn_mask_reformat/Cast', 'Cast', [sub], { to: DataType.INT32 });
    const sh = g.op1('/model/attn_mask_reformat/Shape', 'Shape', ['attention_mask']);
    const tl = g.op1('/model/attn_mask_reformat/Gather', 'Gather', [sh, g.i64([1], [])], { axis: 0 });
    totalLen = g.op1('/model/attn_mask_reformat/Cast_1', 'Cast', [tl], { to: DataType.INT32 });
  }

  let skip = ''; // fused: pending sublayer output to be added to `hidden` by the next SkipSimplifiedLayerNorm
  for (let l = 0; l < L; l++) {
    const p = `/model/layers.${l}`;
    const lw = w.layers[l]!;
    const pre = `model.layers.${l}`;
    const inNorm = g.f32(`${pre}.input_layernorm.weight`, [E], lw.input_norm);
    const postNorm = g.f32(`${pre}.post_attention_layernorm.weight`, [E], lw.post_norm);
    const ql = qw?.layers[l];
    // float path: initializers created here, in the same order as before quantization existed
    type Lin = string | { base: string; q: MatMulNBitsWeights };
    const lin = (name: string, dims: [number, number], f: Float32Array, q?: MatMulNBitsWeights): Lin =>
      q ? { base: `${pre}.${name}`, q } : g.f32(`${pre}.${name}.weight`, dims, f);
    const wq = lin('self_attn.q_proj', [E, H * D], lw.wq, ql?.wq);
    const wk = lin('self_attn.k_proj', [E, Hkv * D], lw.wk, ql?.wk);
    const wv = lin('self_attn.v_proj', [E, Hkv * D], lw.wv, ql?.wv);
    const wo = lin('self_attn.o_proj', [H * D, E], lw.wo, ql?.wo);
    const wg = lin('mlp.gate_proj', [E, I], lw.w_gate, ql?.w_gate);
    const wu = lin('mlp.up_proj', [E, I], lw.w_up, ql?.w_up);
    const wd = lin('mlp.down_proj', [I, E], lw.w_down, ql?.w_down);
    const pastK = `past_key_values.${l}.key`;
    const pastV = `past_key_values.${l}.value`;
    const presK = `present.${l}.key`;
    const presV = `present.${l}.value`;

    let xn: string;
    if (!c.fused) {
      xn = rmsNormStd(g, `${p}/input_layernorm`, hidden, inNorm, c.rms_norm_eps);
    } else if (l === 0) {
      xn = g.op1(`${p}/input_layernorm/LayerNorm`, 'SimplifiedLayerNormalization', [hidden, inNorm], {
        axis: -1,
        epsilon: { float: c.rms_norm_eps },
        stash_type: 1,
      });
    } else {
      const outs = g.op(
        `${p}/input_layernorm/SkipLayerNorm`,
        'SkipSimplifiedLayerNormalization',
        [skip, hidden, inNorm],
        { epsilon: { float: c.rms_norm_eps } },
        {
          outputs: [`${p}/input_layernorm/output_0`, '', '', `${p}/input_layernorm/output_3`],
          domain: 'com.microsoft',
        },
      );
      xn = outs[0]!;
      hidden = outs[3]!;
    }

    const q = g.linear(`${p}/self_attn/q_proj`, xn, wq);
    const k = g.linear(`${p}/self_attn/k_proj`, xn, wk);
    const v = g.linear(`${p}/self_attn/v_proj`, xn, wv);
    let attnFlat: string; // [B,S,H*D]
    if (!c.fused) {
      const qh = g.op1(`${p}/self_attn/Reshape`, 'Reshape', [q, g.i64([0, 0, H, D])]);
      const kh = g.op1(`${p}/self_attn/Reshape_1`, 'Reshape', [k, g.i64([0, 0, Hkv, D])]);
      const vh = g.op1(`${p}/self_attn/Reshape_2`, 'Reshape', [v, g.i64([0, 0, Hkv, D])]);
      const qt = g.op1(`${p}/self_attn/Transpose`, 'Transpose', [qh], { perm: [0, 2, 1, 3] }); // [B,H,S,D]
      const kt = g.op1(`${p}/self_attn/Transpose_1`, 'Transpose', [kh], { perm: [0, 2, 1, 3] }); // [B,Hkv,S,D]
      const vt = g.op(
        `${p}/self_attn/Transpose_2`,
        'Transpose',
        [vh],
        { perm: [0, 2, 1, 3] },
        { outputs: 1 },
      )[0]!;
      const qr = rotaryStd(g, `${p}/self_attn/rotary_q`, qt, cos, sin, D);
      const kr = rotaryStd(g, `${p}/self_attn/rotary_k`, kt, cos, sin, D);
      g.op(`${p}/self_attn/Concat_k`, 'Concat', [pastK, kr], { axis: 2 }, { outputs: [presK] });
      g.op(`${p}/self_attn/Concat_v`, 'Concat', [pastV, vt], { axis: 2 }, { outputs: [presV] });
      // query heads grouped per KV head: [B,H,S,D] → [B,Hkv,G,S,D]
      const qg = g.op1(`${p}/self_attn/Reshape_3`, 'Reshape', [qr, g.i64([0, Hkv, G, -1, D])]);
      const kT = g.op1(`${p}/self_attn/Transpose_3`, 'Transpose', [presK], { perm: [0, 1, 3, 2] }); // [B,Hkv,D,T]
      const kU = g.op1(`${p}/self_attn/Unsqueeze`, 'Unsqueeze', [kT, g.i64([2])]); // [B,Hkv,1,D,T]
      const vU = g.op1(`${p}/self_attn/Unsqueeze_1`, 'Unsqueeze', [presV, g.i64([2])]); // [B,Hkv,1,T,D]
      const sc = g.op1(`${p}/self_attn/MatMul`, 'MatMul', [qg, kU]); // [B,Hkv,G,S,T]
      const scs = g.op1(`${p}/self_attn/Mul`, 'Mul', [sc, g.scalarF32(1 / Math.sqrt(D))]);
      const msk = g.op1(`${p}/self_attn/Add`, 'Add', [scs, maskBias]);
      const pr = g.op1(`${p}/self_attn/Softmax`, 'Softmax', [msk], { axis: -1 });
      const ctx = g.op1(`${p}/self_attn/MatMul_1`, 'MatMul', [pr, vU]); // [B,Hkv,G,S,D]
      const ctxH = g.op1(`${p}/self_attn/Reshape_4`, 'Reshape', [ctx, g.i64([0, H, -1, D])]); // [B,H,S,D]
      const ctxT = g.op1(`${p}/self_attn/Transpose_4`, 'Transpose', [ctxH], { perm: [0, 2, 1, 3] });
      attnFlat = g.op1(`${p}/self_attn/Reshape_5`, 'Reshape', [ctxT, g.i64([0, 0, H * D])]);
    } else {
      const qr = g.op1(
        `${p}/self_attn/q_rotary/RotaryEmbedding`,
        'RotaryEmbedding',
        [q, 'position_ids', cosCache, sinCache],
        { interleaved: 0, num_heads: H },
        'com.microsoft',
      );
      const kr = g.op1(
        `${p}/self_attn/k_rotary/RotaryEmbedding`,
        'RotaryEmbedding',
        [k, 'position_ids', cosCache, sinCache],
        { interleaved: 0, num_heads: Hkv },
        'com.microsoft',
      );
      attnFlat = g.op(
        `${p}/self_attn/GroupQueryAttention`,
        'GroupQueryAttention',
        [qr, kr, v, pastK, pastV, seqlensK, totalLen],
        { num_heads: H, kv_num_heads: Hkv, scale: { float: 1 / Math.sqrt(D) } },
        { outputs: [`${p}/self_attn/GroupQueryAttention/output_0`, presK, presV], domain: 'com.microsoft' },
      )[0]!;
    }
    const o = g.linear(`${p}/self_attn/o_proj`, attnFlat, wo);

    let xn2: string;
    if (!c.fused) {
      hidden = g.op1(`${p}/residual_add/Add`, 'Add', [hidden, o]);
      xn2 = rmsNormStd(g, `${p}/post_attention_layernorm`, hidden, postNorm, c.rms_norm_eps);
    } else {
      const outs = g.op(
        `${p}/post_attention_layernorm/SkipLayerNorm`,
        'SkipSimplifiedLayerNormalization',
        [o, hidden, postNorm],
        { epsilon: { float: c.rms_norm_eps } },
        {
          outputs: [
            `${p}/post_attention_layernorm/output_0`,
            '',
            '',
            `${p}/post_attention_layernorm/output_3`,
          ],
          domain: 'com.microsoft',
        },
      );
      xn2 = outs[0]!;
      hidden = outs[3]!;
    }
    const gate = g.linear(`${p}/mlp/gate_proj`, xn2, wg);
    const sig = g.op1(`${p}/mlp/act_fn/Sigmoid`, 'Sigmoid', [gate]);
    const silu = g.op1(`${p}/mlp/act_fn/Mul`, 'Mul', [gate, sig]);
    const up = g.linear(`${p}/mlp/up_proj`, xn2, wu);
    const prod = g.op1(`${p}/mlp/Mul`, 'Mul', [silu, up]);
    const down = g.linear(`${p}/mlp/down_proj`, prod, wd);
    if (!c.fused) hidden = g.op1(`${p}/residual_add_1/Add`, 'Add', [hidden, down]);
    else skip = down;
  }

  const fnorm = g.f32('model.norm.weight', [E], w.final_norm);
  let normed: string;
  if (!c.fused) normed = rmsNormStd(g, '/model/norm', hidden, fnorm, c.rms_norm_eps);
  else
    normed = g.op(
      '/model/norm/SkipLayerNorm',
      'SkipSimplifiedLayerNormalization',
      [skip, hidden, fnorm],
      { epsilon: { float: c.rms_norm_eps } },
      { outputs: ['/model/norm/output_0'], domain: 'com.microsoft' },
    )[0]!;
  const lm = qw ? { base: 'lm_head', q: qw.lm_head } : g.f32('lm_head.weight', [E, V], w.lm_head);
  g.linear('/lm_head', normed, lm, ['logits']);

  const inputs = [
    valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', DataType.INT64, ['batch_size', 'sequence_length']),
  ];
  const outputs = [valueInfo('logits', DataType.FLOAT, ['batch_size', 'sequence_length', V])];
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      inputs.push(
        valueInfo(`past_key_values.${l}.${kv}`, DataType.FLOAT, [
          'batch_size',
          Hkv,
          'past_sequence_length',
          D,
        ]),
      );
      outputs.push(
        valueInfo(`present.${l}.${kv}`, DataType.FLOAT, ['batch_size', Hkv, 'total_sequence_length', D]),
      );
    }
  }
  const opsetImport = [{ domain: '', version: 17 }];
  if (c.fused || c.quantized) opsetImport.push({ domain: 'com.microsoft', version: 1 });
  return {
    irVersion: 8,
    opsetImport,
    producerName: 'hearthnet-make-tiny-model',
    producerVersion: '1',
    graph: { name: c.model_id, node: g.nodes, initializer: g.inits, input: inputs, output: outputs },
  };
}

export function tinyModelBytes(c: TinyConfig): Uint8Array {
  return encodeModel(buildTinyModel(c));
}
