/**
 * `npm run split-model -- DIR/model.onnx --ranges 0-1,2-3 --out OUT [--model-id ID] [--tier T] [--no-validate]`
 *
 * Cuts a decoder export into head.onnx, shard-<lo>-<hi>.onnx per range and tail.onnx, runs the
 * parts against the monolithic model in onnxruntime-web (WASM) to validate them and measure the
 * residual-stream RMS at every cut, and writes OUT/manifest.json. Refuses graphs it cannot cut with
 * a message naming why (exit code 2).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  decodeModel,
  encodeModel,
  getAttr,
  DTYPE_NAMES,
  valueInfoShape,
  type Model,
  type TensorProto,
  type ValueInfo,
} from './onnx.js';
import { analyse, extractPart, SplitError, type PartGraph } from './split.js';
import {
  MANIFEST_FORMAT,
  SHARD_GRAPH_FORMAT,
  parseManifest,
  shardId,
  type CutStat,
  type ManifestFile,
  type ManifestPart,
  type ModelManifest,
  type TensorSpec,
  weightsIdentity,
} from '../../engine/llm/manifest.js';
import { CONFIG_FILES, normaliseConfig, type ConfigFile, type HfConfig } from '../../engine/llm/config.js';
import type { ExternalDataFile } from '../../engine/llm/ort.js';
import {
  DecoderPart,
  HeadRunner,
  ShardRunner,
  TailRunner,
  WholeModelRunner,
  lastPosition,
  type DecoderDims,
  type Hidden,
} from '../../engine/llm/runtime.js';
import { halfToFloat } from '../../engine/llm/runtime.js';
import { SeededRng } from '../../engine/llm/rng.js';

export { SplitError };

export interface SplitOptions {
  ranges: [number, number][];
  outDir: string;
  modelId?: string;
  tier?: string;
  validate?: boolean;
}

const sha256File = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export function parseRanges(s: string): [number, number][] {
  return s.split(',').map((r) => {
    const m = /^(\d+)-(\d+)$/.exec(r.trim()) ?? /^(\d+)$/.exec(r.trim());
    if (!m) throw new SplitError(`bad range '${r}': use lo-hi (inclusive), e.g. 0-1,2-3`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    return [lo, hi];
  });
}

function checkRanges(ranges: [number, number][], L: number): void {
  let cursor = 0;
  for (const [lo, hi] of ranges) {
    if (lo !== cursor || hi < lo)
      throw new SplitError(
        `ranges must cover layers 0..${L - 1} contiguously in order; '${lo}-${hi}' does not continue at layer ${cursor}`,
      );
    cursor = hi + 1;
  }
  if (cursor !== L)
    throw new SplitError(`ranges cover layers 0..${cursor - 1} but the model has ${L} layers (0..${L - 1})`);
}

/** Inlines initializers stored in external data files next to the model. */
function loadExternal(model: Model, dir: string): { files: ManifestFile[]; data: ExternalDataFile[] } {
  const files = new Map<string, Uint8Array>();
  for (const t of model.graph.initializer ?? []) {
    if (t.dataLocation !== 1) continue;
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const loc = kv.get('location');
    if (!loc || loc.includes('..') || isAbsolute(loc))
      throw new SplitError(`initializer ${t.name}: bad external data location '${loc ?? ''}'`);
    if (!files.has(loc)) {
      const p = join(dir, loc);
      if (!existsSync(p))
        throw new SplitError(
          `initializer ${t.name} is stored in external data file '${loc}', which is missing: copy it next to the model (${dir})`,
        );
      files.set(loc, readFileSync(p));
    }
    const buf = files.get(loc)!;
    const off = Number(kv.get('offset') ?? 0);
    const len = kv.has('length') ? Number(kv.get('length')) : buf.length - off;
    if (!(off >= 0 && len >= 0 && off + len <= buf.length))
      throw new SplitError(
        `initializer ${t.name}: bytes ${off}..${off + len} lie outside '${loc}' (${buf.length} bytes); the data file is truncated or belongs to another export`,
      );
    t.rawData = buf.subarray(off, off + len);
    delete t.externalData;
    delete t.dataLocation;
  }
  const sorted = [...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    files: sorted.map(([file, b]) => ({ file, sha256: sha256File(b), bytes: b.length })),
    data: sorted.map(([path, data]) => ({ path, data })),
  };
}

/**
 * A copy of a part whose initializers ≥ 1 KiB sit in `<file>.data` (used when the source had
 * external data). Never mutates the tensors of `model` (parts share them): every moved tensor is
 * a fresh TensorProto, so each part's data file holds its own copy. No data file when nothing moves.
 */
function externalise(model: Model, dataFile: string): { model: Model; data?: Uint8Array } {
  const chunks: Uint8Array[] = [];
  let off = 0;
  const initializer = (model.graph.initializer ?? []).map((t): TensorProto => {
    if (!t.rawData || t.rawData.length < 1024) return t;
    const pad = (64 - (off % 64)) % 64;
    if (pad) chunks.push(new Uint8Array(pad));
    off += pad;
    chunks.push(t.rawData);
    const copy: TensorProto = { ...t };
    delete copy.rawData;
    copy.externalData = [
      { key: 'location', value: dataFile },
      { key: 'offset', value: String(off) },
      { key: 'length', value: String(t.rawData.length) },
    ];
    copy.dataLocation = 1;
    off += t.rawData.length;
    return copy;
  });
  const out = { ...model, graph: { ...model.graph, initializer } };
  if (off === 0) return { model };
  const data = new Uint8Array(off);
  let p = 0;
  for (const c of chunks) {
    data.set(c, p);
    p += c.length;
  }
  return { model: out, data };
}

function spec(v: ValueInfo): TensorSpec {
  return {
    name: v.name,
    dtype: DTYPE_NAMES[v.type?.tensorType?.elemType ?? 0] ?? 'unknown',
    shape: valueInfoShape(v) ?? [],
  };
}

interface WrittenPart {
  entry: ManifestPart;
  bytes: Uint8Array;
  external?: { path: string; data: Uint8Array };
}

/** Encodes a part in memory (written only after validation). */
function encodePart(p: PartGraph, file: string, external: boolean): WrittenPart {
  let ext: { path: string; data: Uint8Array } | undefined;
  let model = p.model;
  if (external) {
    const dataFile = `${file}.data`;
    const r = externalise(p.model, dataFile);
    model = r.model;
    if (r.data) ext = { path: dataFile, data: r.data };
  }
  // every external reference of the part must point at its own data file, inside it
  for (const t of model.graph.initializer ?? []) {
    if (t.dataLocation !== 1) continue;
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const end = Number(kv.get('offset') ?? 0) + Number(kv.get('length') ?? 0);
    if (!ext || kv.get('location') !== ext.path || end > ext.data.length)
      throw new SplitError(
        `internal check failed: ${file} initializer ${t.name} points outside ${ext?.path ?? 'its own data'}; nothing was written`,
      );
  }
  const bytes = encodeModel(model);
  const entry: ManifestPart = {
    file,
    sha256: sha256File(bytes),
    bytes: bytes.length,
    inputs: p.inputs.map(spec),
    outputs: p.outputs.map(spec),
    nodes: p.nodes,
    initializer_bytes: p.initializerBytes,
  };
  if (ext) entry.external_data = [{ file: ext.path, sha256: sha256File(ext.data), bytes: ext.data.length }];
  return ext ? { entry, bytes, external: ext } : { entry, bytes };
}

/** config.json (HF) or genai_config.json (onnxruntime-genai) next to the model, normalised. */
function readConfig(dir: string): { cfg: Partial<HfConfig>; file?: ConfigFile } {
  for (const file of CONFIG_FILES) {
    const p = join(dir, file);
    if (!existsSync(p)) continue;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(p, 'utf8'));
    } catch {
      throw new SplitError(`${file} next to the model is not valid JSON`);
    }
    return { cfg: normaliseConfig(json, file), file };
  }
  return { cfg: {} };
}

const posNum = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;

export async function splitModelFile(modelPath: string, opts: SplitOptions): Promise<ModelManifest> {
  try {
    return await splitModelFileInner(modelPath, opts);
  } catch (e) {
    if (e instanceof SplitError) throw e;
    // never a stack trace: runtime failures (ORT could not load a part, bad protobuf) become refusals
    const msg = e instanceof Error ? e.message : String(e);
    throw new SplitError(`${msg.split('\n')[0]!.slice(0, 600)} (nothing was written)`);
  }
}

async function splitModelFileInner(modelPath: string, opts: SplitOptions): Promise<ModelManifest> {
  const srcDir = dirname(resolve(modelPath));
  if (!existsSync(modelPath)) throw new SplitError(`${modelPath}: no such file`);
  const srcBytes = readFileSync(modelPath);
  let model: Model;
  try {
    model = decodeModel(srcBytes);
  } catch (e) {
    throw new SplitError(`${modelPath} is not an ONNX model: ${(e as Error).message}`);
  }
  const ext = loadExternal(model, srcDir);
  const extFiles = ext.files;
  const { cfg, file: cfgFile } = readConfig(srcDir);
  const a = analyse(model, posNum(cfg.hidden_size) ? { hiddenSize: cfg.hidden_size! } : {});
  checkRanges(opts.ranges, a.layers);
  if (posNum(cfg.num_hidden_layers) && cfg.num_hidden_layers !== a.layers)
    throw new SplitError(
      `${cfgFile} says num_hidden_layers ${cfg.num_hidden_layers} but the graph has ${a.layers} KV layers: the config does not belong to this model`,
    );

  const pastShape = valueInfoShape(a.inputs.get('past_key_values.0.key')!) ?? [];
  const logitsShape = valueInfoShape((model.graph.output ?? []).find((v) => v.name === 'logits')!) ?? [];
  const gqa = model.graph.node.find((n) => n.opType === 'GroupQueryAttention');
  const heads =
    posNum(cfg.num_attention_heads) ?? posNum(gqa?.attribute?.find((x) => x.name === 'num_heads')?.i);
  const kvHeads =
    posNum(pastShape[1]) ??
    posNum(cfg.num_key_value_heads) ??
    posNum(gqa?.attribute?.find((x) => x.name === 'kv_num_heads')?.i) ??
    heads;
  // KV head size: the graph's (when not symbolic, as genai's `kv_cache_dim` is), the config's, or hidden ÷ heads
  const headDim = posNum(pastShape[3]) ?? posNum(cfg.head_dim) ?? (heads ? a.hiddenSize / heads : undefined);
  const vocab =
    posNum(logitsShape[2]) ??
    posNum(cfg.vocab_size) ??
    posNum(
      (() => {
        const lm = model.graph.node.find((n) => n.output.includes('logits'));
        const w = lm ? a.inits.get(lm.input[1] ?? '') : undefined;
        if (lm?.opType === 'MatMulNBits') return getAttr(lm, 'N')?.i;
        return w?.dims?.length === 2 ? w.dims[1] : undefined;
      })(),
    );
  const dims = {
    total_layers: a.layers,
    hidden_size: a.hiddenSize,
    num_attention_heads: heads ?? 0,
    num_kv_heads: kvHeads ?? 0,
    head_dim: headDim ?? 0,
    vocab_size: vocab ?? 0,
    max_seq_len: posNum(cfg.max_position_embeddings) ?? 2048,
  };
  for (const [k, v] of Object.entries(dims))
    if (!posNum(v) && k !== 'num_attention_heads')
      throw new SplitError(
        `cannot determine ${k} from the graph${cfgFile ? ` or ${cfgFile}` : ''}: put the config.json (or genai_config.json) the exporter wrote next to model.onnx`,
      );

  const modelId =
    opts.modelId ??
    (typeof cfg._name_or_path === 'string' && cfgFile === 'config.json' && cfg._name_or_path
      ? cfg._name_or_path
      : basename(srcDir));
  const tier = opts.tier ?? (a.quantizedOps.length ? 'q' : a.hiddenDtype === 10 ? 'fp16' : 'fp32');
  const external = extFiles.length > 0;
  const head = encodePart(extractPart(a, -1, -1), 'head.onnx', external);
  const tail = encodePart(extractPart(a, a.layers, a.layers), 'tail.onnx', external);
  const shards = opts.ranges.map(([lo, hi]) => ({
    lo,
    hi,
    w: encodePart(extractPart(a, lo, hi), `shard-${lo}-${hi}.onnx`, external),
  }));

  const aside: { name: string; bytes: Uint8Array; entry: ManifestFile }[] = [];
  const readAside = (name: string): ManifestFile | undefined => {
    const p = join(srcDir, name);
    if (!existsSync(p)) return undefined;
    const b = readFileSync(p);
    const entry = { file: name, sha256: sha256File(b), bytes: b.length };
    aside.push({ name, bytes: b, entry });
    return entry;
  };

  const cutStats: CutStat[] = [];
  for (let b = 0; b <= a.layers; b++) {
    if (b !== 0 && b !== a.layers && !opts.ranges.some(([lo]) => lo === b)) continue;
    const c = a.cuts.get(b)!;
    cutStats.push({
      boundary: b,
      kind: c.kind,
      source: c.kind === 'tensor' ? c.tensor : `${c.node.name ?? c.node.opType}(${c.inputs.join(' + ')})`,
    });
  }

  const sourceEntry: ManifestFile = {
    file: basename(modelPath),
    sha256: sha256File(srcBytes),
    bytes: srcBytes.length,
  };
  const manifest: ModelManifest = {
    format: MANIFEST_FORMAT,
    graph_format: SHARD_GRAPH_FORMAT,
    model_id: modelId,
    weights_sha256: weightsIdentity(sourceEntry, extFiles),
    tier,
    compute_dtype: a.hiddenDtype === 10 ? 'float16' : 'float32',
    dims,
    source: {
      ...sourceEntry,
      ...(extFiles.length ? { external_data: extFiles } : {}),
      fused_ops: a.fusedOps,
      quantized_ops: a.quantizedOps,
    },
    head: head.entry,
    tail: tail.entry,
    shards: shards.map(({ lo, hi, w }) => ({
      shard_id: shardId(modelId, lo, hi, tier),
      layer_range: [lo, hi] as [number, number],
      ...w.entry,
    })),
    cut_stats: cutStats,
    local_equivalents: [],
    created_by: 'hearthnet split-model/1',
  };
  const tk = readAside('tokenizer.json');
  const tkc = readAside('tokenizer_config.json');
  const cf = cfgFile ? readAside(cfgFile) : undefined;
  if (tk) manifest.tokenizer = tk;
  if (tkc) manifest.tokenizer_config = tkc;
  if (cf) manifest.config = cf;

  if (opts.validate !== false) {
    const runtimeDims: DecoderDims = {
      num_kv_heads: dims.num_kv_heads,
      head_dim: dims.head_dim,
      hidden_size: dims.hidden_size,
      vocab_size: dims.vocab_size,
      max_seq_len: dims.max_seq_len,
    };
    manifest.validation = await validateSplit(
      srcBytes,
      ext.data,
      head,
      shards.map((s) => s.w),
      tail,
      runtimeDims,
      cutStats,
      manifest.compute_dtype,
    );
  }
  parseManifest(manifest);
  // validated (or validation skipped): only now touch the output folder
  mkdirSync(opts.outDir, { recursive: true });
  const outFiles = new Set<string>();
  for (const w of [head, tail, ...shards.map((s) => s.w)]) {
    writeFileSync(join(opts.outDir, w.entry.file), w.bytes);
    outFiles.add(w.entry.file);
    if (w.external) {
      writeFileSync(join(opts.outDir, w.external.path), w.external.data);
      outFiles.add(w.external.path);
    }
  }
  for (const f of aside)
    if (resolve(join(srcDir, f.name)) !== resolve(join(opts.outDir, f.name)))
      writeFileSync(join(opts.outDir, f.name), f.bytes);
  writeFileSync(join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

function rmsPerPosition(h: Hidden): number[] {
  const S = h.dims[1]!;
  const E = h.dims[2]!;
  const d = h.dtype === 'float32' ? (h.data as Float32Array) : halfToFloat(h.data as Uint16Array);
  const out: number[] = [];
  for (let s = 0; s < S; s++) {
    let ss = 0;
    for (let e = 0; e < E; e++) ss += d[s * E + e]! ** 2;
    out.push(Math.sqrt(ss / E));
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

/**
 * Runs monolithic vs head → shards → tail on deterministic pseudo-random prompts (one-shot prefill
 * then decode steps) and requires max|Δlogit| ≤ tol·max(1, ‖ref‖∞) at every step; fills cut RMS stats.
 */
async function validateSplit(
  mono: Uint8Array,
  monoExt: ExternalDataFile[],
  head: WrittenPart,
  shards: WrittenPart[],
  tail: WrittenPart,
  dims: DecoderDims,
  cutStats: CutStat[],
  dtype: 'float32' | 'float16',
): Promise<NonNullable<ModelManifest['validation']>> {
  const load = (w: WrittenPart, label: string): Promise<DecoderPart> =>
    DecoderPart.load(w.bytes, dims, label, {
      executionProviders: ['wasm'],
      ...(w.external ? { externalData: [w.external] } : {}),
    });
  const parts: DecoderPart[] = [];
  try {
    const whole = await DecoderPart.load(mono, dims, 'monolithic', {
      executionProviders: ['wasm'],
      externalData: monoExt,
    });
    parts.push(whole);
    const hr = new HeadRunner(await load(head, 'head'));
    parts.push(hr.part);
    const srs: ShardRunner[] = [];
    for (const s of shards) {
      const r = new ShardRunner(await load(s, s.entry.file));
      parts.push(r.part);
      srs.push(r);
    }
    const tr = new TailRunner(await load(tail, 'tail'));
    parts.push(tr.part);
    const tol = dtype === 'float32' ? 1e-4 : 5e-2;
    const rng = new SeededRng(0x5eed);
    const prompts = [9, 16].map((n) =>
      Array.from({ length: n }, () => Math.floor(rng.next() * Math.min(dims.vocab_size, 256))),
    );
    const steps = 4;
    const rms = new Map<number, number[]>();
    let worst = 0;
    const wholeRunner = new WholeModelRunner(whole);
    for (const prompt of prompts) {
      const ws = wholeRunner.openSession();
      const ss = srs.map((r) => r.openSession());
      try {
        let ids = prompt;
        for (let step = 0; step <= steps; step++) {
          const all = await ws.forwardAll(ids);
          const V = dims.vocab_size;
          const ref = all.subarray((ids.length - 1) * V, ids.length * V);
          let h = await hr.embed(ids);
          const record = (b: number, x: Hidden): void => {
            if (!rms.has(b)) rms.set(b, []);
            rms.get(b)!.push(...rmsPerPosition(x));
          };
          record(0, h);
          for (let k = 0; k < ss.length; k++) {
            h = await ss[k]!.forward(h);
            record(srs[k]!.layerRange[1] + 1, h);
          }
          const got = await tr.logits(lastPosition(h));
          let md = 0;
          let mx = 0;
          for (let v = 0; v < V; v++) {
            md = Math.max(md, Math.abs(got[v]! - ref[v]!));
            mx = Math.max(mx, Math.abs(ref[v]!));
          }
          if (!Number.isFinite(md)) throw new SplitError('validation failed: split output is not finite');
          const rel = md / Math.max(1, mx);
          worst = Math.max(worst, rel);
          if (rel > tol)
            throw new SplitError(
              `validation failed: split logits differ from the monolithic model by ${md.toExponential(3)} (relative ${rel.toExponential(3)} > ${tol})`,
            );
          let best = 0;
          for (let v = 1; v < V; v++) if (ref[v]! > ref[best]!) best = v;
          ids = [best];
        }
      } finally {
        ws.close();
        for (const s of ss) s.close();
      }
    }
    for (const c of cutStats) {
      const xs = rms.get(c.boundary);
      if (xs?.length) {
        c.rms_p01 = quantile(xs, 0.01);
        c.rms_p99 = quantile(xs, 0.99);
      }
    }
    return { prompts: prompts.length, steps: steps + 1, max_rel_logit_diff: worst, tolerance: tol };
  } finally {
    for (const p of parts) await p.release();
  }
}

function usage(): never {
  process.stderr.write(
    'usage: split-model MODEL.onnx --ranges 0-1,2-3 --out OUT [--model-id ID] [--tier T] [--no-validate]\n',
  );
  process.exit(64);
}

async function main(argv: string[]): Promise<void> {
  let model: string | undefined;
  let ranges: string | undefined;
  let out: string | undefined;
  const opts: Partial<SplitOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--ranges') ranges = argv[++i];
    else if (a === '--out') out = argv[++i];
    else if (a === '--model-id') opts.modelId = argv[++i]!;
    else if (a === '--tier') opts.tier = argv[++i]!;
    else if (a === '--no-validate') opts.validate = false;
    else if (a === '-h' || a === '--help') usage();
    else if (!a.startsWith('-') && !model) model = a;
    else usage();
  }
  if (!model || !ranges || !out) usage();
  try {
    const t0 = Date.now();
    const m = await splitModelFile(model, { ...opts, ranges: parseRanges(ranges), outDir: out });
    const v = m.validation
      ? `validated (max relative logit diff ${m.validation.max_rel_logit_diff.toExponential(2)})`
      : 'not validated';
    process.stdout.write(
      `split ${m.model_id} (${m.dims.total_layers} layers, weights ${m.weights_sha256.slice(0, 12)}…) into head, ${m.shards.map((s) => s.layer_range.join('-')).join(', ')}, tail; ${v}; ${Date.now() - t0} ms → ${join(out, 'manifest.json')}\n`,
    );
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`split-model: ${msg}\n`);
    process.exit(e instanceof SplitError ? 2 : 1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await main(process.argv.slice(2));
