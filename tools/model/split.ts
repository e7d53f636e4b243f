/**
 * Layer-range splitter for decoder exports "with past" (Optimum / onnxruntime-genai layout).
 *
 * 1. Checks the graph is cuttable (no control-flow subgraphs, KV inputs/outputs per layer, node
 *    names carrying layer indices) and refuses with a message naming the reason otherwise.
 * 2. Classifies nodes: data nodes (depending on input_ids or KV values) get a stage — head (−1),
 *    layer i (from the `layers.{i}` name), tail (L); everything computable from attention_mask,
 *    position_ids, shapes and initializers is "shared" and duplicated into every part that needs it.
 * 3. Finds the cut at each boundary b: the data tensors produced before b and consumed from b on.
 *    One tensor = the residual stream. Two tensors that only meet in a SkipSimplifiedLayerNormalization
 *    (fused exports never materialise the residual at a boundary) = a skip-norm cut: the part before
 *    ends with Add(input, skip[, bias]) and the part after replaces the node with
 *    SimplifiedLayerNormalization, its residual output aliased to `hidden_states`.
 * 4. Extracts each part by walking backwards from its outputs, rewriting shared shape reads that
 *    are not available inside a shard: Shape(input_ids) → Shape(hidden_states)[0:2] and
 *    Shape(past_key_values.j.*) → Shape(past_key_values.lo.*).
 */
import {
  DataType,
  attr,
  dtypeBytes,
  getAttr,
  valueInfo,
  type Graph,
  type Model,
  type OnnxNode,
  type TensorProto,
  type ValueInfo,
} from './onnx.js';

export class SplitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SplitError';
  }
}

const PAST_RE = /^past_key_values\.(\d+)\.(key|value)$/;
const LAYER_NAME_RE = /(?:^|[/._])(?:layers|layer|h|blocks|block|decoder_layers)[._/](\d+)(?=$|[/._])/;
const SHAPE_OPS = new Set(['Shape', 'Size']);
const FUSED_OPS = new Set([
  'SkipSimplifiedLayerNormalization',
  'SimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'RotaryEmbedding',
  'GroupQueryAttention',
  'MultiHeadAttention',
  'Attention',
  'FastGelu',
  'BiasGelu',
  'QuickGelu',
]);
const QUANT_OPS = new Set([
  'MatMulNBits',
  'GatherBlockQuantized',
  'DequantizeLinear',
  'QuantizeLinear',
  'MatMulInteger',
  'DynamicQuantizeMatMul',
  'QLinearMatMul',
]);

export type Cut =
  { kind: 'tensor'; tensor: string } | { kind: 'skip_norm_sum'; node: OnnxNode; inputs: string[] };

export interface PartGraph {
  kind: 'head' | 'shard' | 'tail';
  range: [number, number];
  model: Model;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: number;
  initializerBytes: number;
}

export interface Analysis {
  layers: number;
  hiddenDtype: number;
  hiddenSize: number;
  cuts: Map<number, Cut>;
  fusedOps: string[];
  quantizedOps: string[];
}

interface Ctx {
  model: Model;
  g: Graph;
  L: number;
  producer: Map<string, OnnxNode>;
  consumers: Map<string, OnnxNode[]>;
  inits: Map<string, TensorProto>;
  inputs: Map<string, ValueInfo>;
  stage: Map<OnnxNode, number>; // data nodes only; shared nodes absent
  isData: Set<string>; // tensors depending on input_ids / KV values
  hiddenDtype: number;
  hiddenSize: number;
}

function nodeLabel(n: OnnxNode): string {
  return `${n.opType} node '${n.name || n.output[0]}'`;
}

/** Layer index from a node name (`/model/layers.3/...`), or undefined. */
export function layerOfName(name: string | undefined): number | undefined {
  if (!name) return undefined;
  const m = LAYER_NAME_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** torch.onnx.export(dynamo=True) keeps module scopes in node metadata, not in node names. */
const SCOPES_KEY = 'pkg.torch.onnx.name_scopes';

/** Layer index from a node's name, else from its dynamo `pkg.torch.onnx.name_scopes` metadata. */
export function layerOfNode(n: OnnxNode): number | undefined {
  const l = layerOfName(n.name);
  if (l !== undefined) return l;
  const scopes = n.metadataProps?.find((e) => e.key === SCOPES_KEY)?.value;
  if (!scopes) return undefined;
  // a Python list repr: ['', 'm', 'm.model', 'm.model.layers.0', 'm.model.layers.0.self_attn', ...]
  let found: number | undefined;
  for (const m of scopes.matchAll(/'([^']*)'/g)) {
    const v = layerOfName(m[1]);
    if (v !== undefined) found = v;
  }
  return found;
}

function topoSort(g: Graph, producer: Map<string, OnnxNode>): OnnxNode[] {
  const state = new Map<OnnxNode, number>();
  const order: OnnxNode[] = [];
  for (const root of g.node) {
    if (state.get(root)) continue;
    const stack: [OnnxNode, number][] = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [n, i] = top;
      if (i === 0) {
        if (state.get(n) === 2) {
          stack.pop();
          continue;
        }
        state.set(n, 1);
      }
      if (i < n.input.length) {
        top[1]++;
        const p = producer.get(n.input[i]!);
        if (p && !state.get(p)) stack.push([p, 0]);
        else if (p && state.get(p) === 1 && p !== n)
          throw new SplitError(`graph has a cycle through ${nodeLabel(p)}`);
      } else {
        state.set(n, 2);
        order.push(n);
        stack.pop();
      }
    }
  }
  return order;
}

export function analyse(model: Model, opts: { hiddenSize?: number } = {}): Ctx & Analysis {
  const g = model.graph;
  // --- refusals: structure
  for (const n of g.node) {
    if (n.attribute?.some((a) => a.g || (a.graphs && a.graphs.length))) {
      throw new SplitError(
        `unsupported graph: ${nodeLabel(n)} has a control-flow subgraph. Merged decoders (decoder_model_merged with an If on use_cache_branch) cannot be cut; export the decoder "with past" instead.`,
      );
    }
  }
  const inputs = new Map((g.input ?? []).map((v) => [v.name, v]));
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const name of inits.keys()) inputs.delete(name); // old exports list initializers as inputs
  if (!inputs.has('input_ids')) {
    throw new SplitError(
      `unsupported graph: no 'input_ids' input (inputs: ${[...inputs.keys()].slice(0, 8).join(', ')}). Only decoder-only LM exports taking token ids can be cut.`,
    );
  }
  const outNames = new Set((g.output ?? []).map((v) => v.name));
  if (!outNames.has('logits'))
    throw new SplitError(`unsupported graph: no 'logits' output. Only causal-LM exports can be cut.`);
  const past = [...inputs.keys()].filter((n) => PAST_RE.test(n));
  if (past.length === 0)
    throw new SplitError(
      `unsupported graph: no KV-cache inputs (past_key_values.{i}.key/value). Export the decoder "with past" (use_cache) so shards can keep their own KV cache.`,
    );
  const layerIdx = [...new Set(past.map((n) => Number(PAST_RE.exec(n)![1])))].sort((a, b) => a - b);
  const L = layerIdx.length;
  for (let i = 0; i < L; i++) {
    for (const kv of ['key', 'value']) {
      if (!inputs.has(`past_key_values.${i}.${kv}`))
        throw new SplitError(
          `unsupported graph: past_key_values.${i}.${kv} missing (layers must be numbered 0..${L - 1})`,
        );
      if (!outNames.has(`present.${i}.${kv}`))
        throw new SplitError(`unsupported graph: present.${i}.${kv} output missing`);
    }
  }
  const allowed = new Set(['input_ids', 'attention_mask', 'position_ids', ...past]);
  for (const name of inputs.keys())
    if (!allowed.has(name))
      throw new SplitError(
        `unsupported graph: input '${name}' is not part of the decoder contract (input_ids, attention_mask, position_ids, past_key_values.*)`,
      );

  const producer = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of g.node) {
    for (const o of n.output) if (o) producer.set(o, n);
    for (const i of n.input)
      if (i) {
        if (!consumers.has(i)) consumers.set(i, []);
        consumers.get(i)!.push(n);
      }
  }
  const order = topoSort(g, producer);

  // --- data-ness: tensors whose values depend on input_ids or KV values (Shape/Size break it)
  const isData = new Set<string>(['input_ids', ...past]);
  const dataNodes: OnnxNode[] = [];
  for (const n of order) {
    if (SHAPE_OPS.has(n.opType)) continue;
    if (n.input.some((i) => isData.has(i))) {
      dataNodes.push(n);
      for (const o of n.output) if (o) isData.add(o);
    }
  }

  // --- stages
  const stage = new Map<OnnxNode, number>();
  let named = 0;
  for (const n of dataNodes) {
    const l = layerOfNode(n);
    if (l !== undefined) {
      if (l === L) {
        // onnxruntime-genai names its final norm `layers.{L}` (one past the last layer): the tail
        stage.set(n, L);
        named++;
        continue;
      }
      if (l > L)
        throw new SplitError(
          `unsupported graph: ${nodeLabel(n)} names layer ${l} but the graph has ${L} KV layers`,
        );
      stage.set(n, l);
      named++;
    }
  }
  if (named === 0)
    throw new SplitError(
      `unsupported graph: node names carry no layer index (expected names like '/model/layers.3/...', or torch dynamo's '${SCOPES_KEY}' node metadata), so nodes cannot be assigned to layers. Re-export with optimum-cli, the onnxruntime-genai builder or torch.onnx.export(dynamo=True), which all name layers.`,
    );
  // KV consumers/producers must agree with their names
  for (const n of dataNodes) {
    for (const i of n.input) {
      const m = PAST_RE.exec(i);
      if (m && stage.has(n) && stage.get(n) !== Number(m[1]))
        throw new SplitError(
          `unsupported graph: ${nodeLabel(n)} is named for layer ${stage.get(n)} but reads ${i}`,
        );
      if (m && !stage.has(n)) stage.set(n, Number(m[1]));
    }
  }
  // unnamed data nodes: max stage of their data ancestors; head if none; tail if downstream of the
  // last layers without feeding any layer node
  const maxAnc = new Map<OnnxNode, number>();
  for (const n of dataNodes) {
    let a = -1;
    for (const i of n.input) {
      const p = producer.get(i);
      if (p && isData.has(i)) a = Math.max(a, stage.get(p) ?? maxAnc.get(p) ?? -1);
    }
    maxAnc.set(n, a);
  }
  const feedsLayer = new Set<OnnxNode>();
  for (let k = dataNodes.length - 1; k >= 0; k--) {
    const n = dataNodes[k]!;
    for (const o of n.output)
      for (const c of consumers.get(o) ?? []) if (stage.has(c) || feedsLayer.has(c)) feedsLayer.add(n);
  }
  for (const n of dataNodes) {
    if (stage.has(n)) continue;
    const a = maxAnc.get(n)!;
    stage.set(n, a < 0 ? -1 : feedsLayer.has(n) ? a : L);
  }

  // --- hidden dtype/size
  const pastVi = inputs.get('past_key_values.0.key')!;
  const hiddenDtype = pastVi.type?.tensorType?.elemType ?? DataType.FLOAT;
  let hiddenSize = opts.hiddenSize;
  if (!hiddenSize) {
    for (const c of consumers.get('input_ids') ?? []) {
      if (c.opType !== 'Gather' && c.opType !== 'GatherBlockQuantized') continue;
      const w = matrixOf(c.input[0] ?? '', inits, producer);
      if (w?.dims.length !== 2) continue;
      if (c.opType === 'Gather') hiddenSize = w.dims[1];
      else if ((getAttr(c, 'quantize_axis')?.i ?? 1) === 1) {
        // int4 exports: uint8 data packs 8/bits values per byte along the quantized (last) axis
        const bits = getAttr(c, 'bits')?.i ?? 4;
        const d = w.dims[1]!;
        hiddenSize = w.dataType === DataType.UINT8 ? d * (8 / bits) : d;
      }
    }
  }
  if (!hiddenSize)
    throw new SplitError(
      'cannot infer hidden_size: no Gather / GatherBlockQuantized embedding on input_ids whose table shape is known; put the config.json (hidden_size) or genai_config.json the exporter wrote next to model.onnx',
    );

  const ctx: Ctx = {
    model,
    g,
    L,
    producer,
    consumers,
    inits,
    inputs,
    stage,
    isData,
    hiddenDtype,
    hiddenSize,
  };
  const cuts = new Map<number, Cut>();
  for (let b = 0; b <= L; b++) cuts.set(b, findCut(ctx, b));
  const ops = new Set(g.node.map((n) => n.opType));
  return {
    ...ctx,
    layers: L,
    cuts,
    fusedOps: [...ops].filter((o) => FUSED_OPS.has(o)).sort(),
    quantizedOps: [...ops].filter((o) => QUANT_OPS.has(o)).sort(),
  };
}

/**
 * Shape and element type of an embedding table: an initializer, or one seen through Transpose
 * (tied embeddings exported as Gather(Transpose(lm_head))) and Reshape with a constant shape
 * (onnxruntime-genai int4 ties the embedding to Reshape(lm_head.MatMul.weight_Q4)).
 */
function matrixOf(
  t: string,
  inits: Map<string, TensorProto>,
  producer: Map<string, OnnxNode>,
  depth = 0,
): { dims: number[]; dataType: number } | undefined {
  const w = inits.get(t);
  if (w) return { dims: (w.dims ?? []).map(Number), dataType: w.dataType ?? DataType.FLOAT };
  const p = producer.get(t);
  if (!p || depth > 4) return undefined;
  if (p.opType === 'Constant') {
    const v = getAttr(p, 'value')?.t;
    return v ? { dims: (v.dims ?? []).map(Number), dataType: v.dataType ?? DataType.FLOAT } : undefined;
  }
  const src = matrixOf(p.input[0] ?? '', inits, producer, depth + 1);
  if (!src) return undefined;
  if (p.opType === 'Transpose') {
    const perm = getAttr(p, 'perm')?.ints ?? src.dims.map((_, i) => src.dims.length - 1 - i);
    return { dims: perm.map((i) => src.dims[Number(i)]!), dataType: src.dataType };
  }
  if (p.opType === 'Cast' || p.opType === 'Identity') return src;
  if (p.opType === 'Reshape') {
    const sh =
      inits.get(p.input[1] ?? '') ??
      getAttr(producer.get(p.input[1] ?? '') ?? { input: [], output: [], opType: '' }, 'value')?.t;
    const vals = sh ? int64Values(sh) : undefined;
    if (!vals || vals.some((v) => v <= 0)) return undefined; // 0 / −1 copy / infer: not resolved here
    return { dims: vals, dataType: src.dataType };
  }
  return undefined;
}

function int64Values(t: TensorProto): number[] | undefined {
  if (t.int64Data?.length) return t.int64Data.map(Number);
  if (t.rawData && t.dataType === DataType.INT64) {
    const b = t.rawData;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Array.from({ length: b.byteLength / 8 }, (_, i) => Number(dv.getBigInt64(i * 8, true)));
  }
  return undefined;
}

function findCut(ctx: Ctx, b: number): Cut {
  const crossing = new Set<string>();
  for (const [n, s] of ctx.stage) {
    if (s >= b) continue;
    for (const o of n.output) {
      if (!o || !ctx.isData.has(o)) continue;
      if ((ctx.consumers.get(o) ?? []).some((c) => (ctx.stage.get(c) ?? -Infinity) >= b)) crossing.add(o);
    }
  }
  const where = b === ctx.L ? 'before the final norm' : `before layer ${b}`;
  const list = [...crossing];
  if (list.length === 1) return { kind: 'tensor', tensor: list[0]! };
  if (list.length === 0)
    throw new SplitError(
      `cannot cut ${where}: no activation crosses it (layers are not connected in sequence)`,
    );
  if (list.length === 2) {
    const users = list.map((t) =>
      (ctx.consumers.get(t) ?? []).filter((c) => (ctx.stage.get(c) ?? -Infinity) >= b),
    );
    const node = users[0]!.length === 1 ? users[0]![0]! : undefined;
    if (
      node &&
      users[1]!.length === 1 &&
      users[1]![0] === node &&
      node.opType === 'SkipSimplifiedLayerNormalization' &&
      list.every((t) => node.input[0] === t || node.input[1] === t)
    ) {
      for (const k of [1, 2]) {
        const o = node.output[k];
        if (o && (ctx.consumers.get(o)?.length ?? 0) > 0)
          throw new SplitError(`cannot cut ${where}: ${nodeLabel(node)} output ${k} (mean/inv_std) is used`);
      }
      const inputs = [node.input[0]!, node.input[1]!];
      if (node.input[3]) inputs.push(node.input[3]); // optional bias joins the residual sum
      return { kind: 'skip_norm_sum', node, inputs };
    }
  }
  throw new SplitError(
    `cannot cut ${where}: ${list.length} activations cross the boundary (${list.slice(0, 6).join(', ')}); only a single residual-stream tensor or a SkipSimplifiedLayerNormalization (input, skip) pair can be cut`,
  );
}

function hiddenVi(ctx: Ctx, name: string): ValueInfo {
  return valueInfo(name, ctx.hiddenDtype, ['batch_size', 'sequence_length', ctx.hiddenSize]);
}

/** Extracts head (lo = hi = −1), shard lo..hi, or tail (lo = hi = L). */
export function extractPart(a: Ctx & Analysis, lo: number, hi: number): PartGraph {
  const { L } = a;
  const kind: PartGraph['kind'] = lo === -1 ? 'head' : lo === L ? 'tail' : 'shard';
  const inStage = (n: OnnxNode): boolean => {
    const s = a.stage.get(n);
    return s === undefined || (s >= lo && s <= hi);
  };
  const newNodes: OnnxNode[] = [];
  const partInputs: ValueInfo[] = [];
  const partOutputs: ValueInfo[] = [];
  const rename = new Map<string, string>(); // tensor → name inside this part
  const replaced = new Map<OnnxNode, OnnxNode>();

  // input side
  if (kind === 'head') partInputs.push(a.inputs.get('input_ids')!);
  else {
    partInputs.push(hiddenVi(a, 'hidden_states'));
    const cut = a.cuts.get(lo)!;
    if (cut.kind === 'tensor') rename.set(cut.tensor, 'hidden_states');
    else {
      const n = cut.node;
      const eps = getAttr(n, 'epsilon');
      const rep: OnnxNode = {
        name: `${n.name ?? 'skipnorm'}/hn_split_simplified`,
        opType: 'SimplifiedLayerNormalization',
        input: ['hidden_states', n.input[2]!],
        output: [n.output[0] ?? ''],
        attribute: [attr('axis', -1), attr('epsilon', { float: eps?.f ?? 1e-6 }), attr('stash_type', 1)],
      };
      replaced.set(n, rep);
      if (n.output[3]) rename.set(n.output[3], 'hidden_states');
    }
  }
  // output side
  const wanted: string[] = [];
  if (kind === 'tail') {
    partOutputs.push((a.g.output ?? []).find((v) => v.name === 'logits')!);
    wanted.push('logits');
  } else {
    const outName = kind === 'head' ? 'inputs_embeds' : 'hidden_states_out';
    const cut = a.cuts.get(hi + 1)!;
    if (cut.kind === 'tensor') {
      newNodes.push({
        name: `/hn_split/${outName}`,
        opType: 'Identity',
        input: [cut.tensor],
        output: [outName],
      });
    } else {
      let acc = cut.inputs[0]!;
      for (let k = 1; k < cut.inputs.length; k++) {
        const out = k === cut.inputs.length - 1 ? outName : `/hn_split/residual_sum_${k}`;
        newNodes.push({
          name: `/hn_split/residual_add_${k}`,
          opType: 'Add',
          input: [acc, cut.inputs[k]!],
          output: [out],
        });
        acc = out;
      }
    }
    partOutputs.push(hiddenVi(a, outName));
    wanted.push(...newNodes.flatMap((n) => n.input));
    if (kind === 'shard')
      for (let i = lo; i <= hi; i++)
        for (const kv of ['key', 'value']) {
          partOutputs.push((a.g.output ?? []).find((v) => v.name === `present.${i}.${kv}`)!);
          wanted.push(`present.${i}.${kv}`);
        }
  }
  const availableInputs = new Set<string>(kind === 'head' ? ['input_ids'] : ['hidden_states']);
  if (kind !== 'head') {
    for (const n of ['attention_mask', 'position_ids']) if (a.inputs.has(n)) availableInputs.add(n);
    if (kind === 'shard')
      for (let i = lo; i <= hi; i++)
        for (const kv of ['key', 'value']) availableInputs.add(`past_key_values.${i}.${kv}`);
  } else {
    for (const n of ['attention_mask', 'position_ids']) if (a.inputs.has(n)) availableInputs.add(n);
  }

  const usedInputs = new Set<string>();
  const usedInits = new Set<string>();
  const visited = new Set<string>();
  const picked = new Set<OnnxNode>();
  const stack = [...wanted];
  let rewriteCount = 0;
  const resolve = (t: string): string => rename.get(t) ?? t;
  while (stack.length) {
    const t0 = stack.pop()!;
    if (!t0) continue;
    const t = resolve(t0);
    if (visited.has(t)) continue;
    visited.add(t);
    if (availableInputs.has(t)) {
      usedInputs.add(t);
      continue;
    }
    if (a.inits.has(t)) {
      usedInits.add(t);
      continue;
    }
    if (a.inputs.has(t))
      throw new SplitError(
        `cannot build ${kind} ${lo}-${hi}: it needs graph input '${t}', which a ${kind} does not receive`,
      );
    let n = a.producer.get(t);
    if (!n) throw new SplitError(`malformed graph: tensor '${t}' has no producer`);
    if (replaced.has(n)) n = replaced.get(n)!;
    else if (!inStage(n))
      throw new SplitError(
        `cannot build ${kind} ${lo}-${hi}: ${nodeLabel(n)} (stage ${a.stage.get(n)}) leaks across the cut`,
      );
    if (picked.has(n)) continue;
    picked.add(n);
    // shape reads of tensors a part does not have: input_ids, another shard's past, or an activation
    // computed before the cut (Optimum's attention-mask code reads Shape(inputs_embeds))
    if (n.opType === 'Shape' && kind !== 'head') {
      const src = n.input[0]!;
      const pm = PAST_RE.exec(src);
      const srcProd = a.producer.get(src);
      const outside =
        src === 'input_ids' ||
        (srcProd !== undefined &&
          a.stage.has(srcProd) &&
          !inStage(srcProd) &&
          !replaced.has(srcProd) &&
          resolve(src) !== 'hidden_states');
      if (outside) {
        const hiddenLike = src !== 'input_ids' && isHiddenLike(a, src);
        if (hiddenLike) {
          // [B, S, E] like the part's own hidden_states: the same shape, start/end kept
          newNodes.push({
            ...n,
            name: `${n.name ?? 'shape'}/hn_split_hidden`,
            input: ['hidden_states'],
          });
          usedInputs.add('hidden_states');
          continue;
        }
        // batch/sequence dims only: Shape(x)[start:end] == Shape(hidden_states)[start:end] within [B, S]
        const st = getAttr(n, 'start')?.i;
        const en = getAttr(n, 'end')?.i;
        const rank2 = src === 'input_ids';
        const ok = rank2 || (en !== undefined && en > 0 && en <= 2 && (st === undefined || st >= 0));
        if (!ok)
          throw new SplitError(
            `cannot build ${kind} ${lo}-${hi}: ${nodeLabel(n)} reads the shape of '${src}', computed before the cut, and its rank/size is unknown here. Add its value_info (run onnx.shape_inference) or re-export with optimum-cli`,
          );
        const norm = (v: number | undefined, d: number): number =>
          Math.max(0, Math.min(2, v === undefined ? d : v < 0 ? v + 2 : v));
        const start = norm(st, 0);
        const end = norm(en, 2);
        const sh = `/hn_split/shape_hidden_${rewriteCount++}`;
        newNodes.push({ name: sh, opType: 'Shape', input: ['hidden_states'], output: [sh + '_out'] });
        newNodes.push({
          name: `${sh}/slice`,
          opType: 'Slice',
          input: [sh + '_out', i64Const(newNodes, start), i64Const(newNodes, end)],
          output: n.output.slice(),
        });
        usedInputs.add('hidden_states');
        continue;
      }
      if (pm && kind === 'shard' && !availableInputs.has(src)) {
        newNodes.push({
          ...n,
          name: `${n.name ?? 'shape'}/hn_split_past${lo}`,
          input: [`past_key_values.${lo}.${pm[2]}`],
        });
        usedInputs.add(`past_key_values.${lo}.${pm[2]}`);
        continue;
      }
    }
    const copy: OnnxNode = { ...n, input: n.input.map((i) => (i ? resolve(i) : i)) };
    newNodes.push(copy);
    for (const i of copy.input) if (i) stack.push(i);
  }

  // keep original order where possible: topologically sort the part's nodes
  const prod = new Map<string, OnnxNode>();
  for (const n of newNodes) for (const o of n.output) if (o) prod.set(o, n);
  const sortedNodes = topoSort({ node: newNodes }, prod);
  const initializer = (a.g.initializer ?? []).filter((t) => usedInits.has(t.name ?? ''));
  const inputsOrdered = partInputs.filter(
    (v) => usedInputs.has(v.name) || v.name === 'hidden_states' || v.name === 'input_ids',
  );
  for (const name of ['attention_mask', 'position_ids'])
    if (usedInputs.has(name)) inputsOrdered.push(a.inputs.get(name)!);
  if (kind === 'shard')
    for (let i = lo; i <= hi; i++)
      for (const kv of ['key', 'value']) inputsOrdered.push(a.inputs.get(`past_key_values.${i}.${kv}`)!);
  const allInits = initializer;
  const graph: Graph = {
    name: `${a.g.name ?? 'model'}_${kind}${kind === 'shard' ? `_${lo}_${hi}` : ''}`,
    node: sortedNodes,
    initializer: allInits,
    input: inputsOrdered,
    output: partOutputs,
  };
  const model: Model = {
    irVersion: a.model.irVersion ?? 8,
    opsetImport: a.model.opsetImport ?? [],
    producerName: 'hearthnet-split-model',
    producerVersion: '1',
    graph,
  };
  if (a.model.functions?.length) model.functions = a.model.functions;
  return {
    kind,
    range: [lo, hi],
    model,
    inputs: inputsOrdered,
    outputs: partOutputs,
    nodes: sortedNodes.length,
    initializerBytes: allInits.reduce((s, t) => s + tensorBytes(t), 0),
  };
}

/**
 * A data tensor shaped [B, S, E] like the residual stream: a tensor cut, an embedding lookup on
 * input_ids, elementwise ops of those, or a value_info saying so.
 */
function isHiddenLike(a: Ctx & Analysis, t: string, depth = 0): boolean {
  for (const c of a.cuts.values()) if (c.kind === 'tensor' && c.tensor === t) return true;
  const vi = (a.g.valueInfo ?? []).find((v) => v.name === t);
  const d = vi?.type?.tensorType?.shape?.dim;
  if (d && d.length === 3 && d[2]?.dimValue === a.hiddenSize) return true;
  const p = a.producer.get(t);
  if (!p || depth > 8) return false;
  if ((p.opType === 'Gather' || p.opType === 'GatherBlockQuantized') && p.input[1] === 'input_ids')
    return (a.inits.get(p.input[0] ?? '')?.dims?.length ?? 0) === 2;
  // shape-preserving elementwise ops on a hidden-like tensor (embedding scale, casts)
  if (['Mul', 'Div', 'Cast', 'Identity', 'Add'].includes(p.opType)) {
    const dataIn = p.input.filter((i) => i && a.isData.has(i));
    return dataIn.length >= 1 && dataIn.every((i) => isHiddenLike(a, i, depth + 1));
  }
  return false;
}

function i64Const(nodes: OnnxNode[], v: number): string {
  const name = `/hn_split/const_i64_${nodes.length}_${v}`;
  nodes.push({
    name: `${name}/node`,
    opType: 'Constant',
    input: [],
    output: [name],
    attribute: [attr('value', i64Tensor([v]))],
  });
  return name;
}

function i64Tensor(v: number[]): TensorProto {
  const b = new BigInt64Array(v.map((x) => BigInt(x)));
  return { dims: [v.length], dataType: DataType.INT64, rawData: new Uint8Array(b.buffer).slice() };
}

export function tensorBytes(t: TensorProto): number {
  if (t.rawData) return t.rawData.length;
  const ext = t.externalData?.find((e) => e.key === 'length');
  if (ext?.value) return Number(ext.value);
  const n = (t.dims ?? []).reduce((s, d) => s * d, 1);
  return Math.ceil(n * dtypeBytes(t.dataType ?? 1));
}
