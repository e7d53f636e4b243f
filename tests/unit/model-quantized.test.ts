/**
 * The splitter's quantized-operator path: the tiny decoder with `quantized` (int4 com.microsoft
 * MatMulNBits for every linear layer, GatherBlockQuantized for the embedding, block sizes 16 and 32,
 * asymmetric with zero points — the onnxruntime-genai int4 layout) against the float64 reference run
 * on the dequantized weights, then cut into 2 and 3 shards and decoded greedily whole vs split.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { DecoderPart, WholeModelRunner } from '../../engine/llm/runtime.js';
import { dirSource } from '../../tools/model/node-source.js';
import { decodeModel } from '../../tools/model/onnx.js';
import { quantizeMatMulNBits } from '../../tools/model/quant.js';
import { ReferenceModel } from '../../tools/model/reference.js';
import { analyse } from '../../tools/model/split.js';
import { splitModelFile } from '../../tools/model/split-model.js';
import { writeTinyModel, type WrittenTinyModel } from '../../tools/model/tiny-model.js';
import { makeWeights } from '../../tools/model/tiny-weights.js';

configureOrt({ numThreads: 1 });
const PROMPTS = [
  'The hearth is warm tonight.',
  'Q: what is a mesh network?\nA:',
  'Once upon a time, in a village with no internet,',
];
const TOKENS = 16;

let dir: string;
let q16: WrittenTinyModel; // standard graph, block size 16
let q32: WrittenTinyModel; // fused graph, block size 32
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hn-model-quant-'));
  q16 = writeTinyModel(join(dir, 'q16'), { quantized: true, quant_block_size: 16 });
  q32 = writeTinyModel(join(dir, 'q32'), { quantized: true, quant_block_size: 32, fused: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Max |ORT − reference| over prefill (11 positions), a 3-token chunk and 4 decode steps. */
async function diffAgainstReference(m: WrittenTinyModel, ref: ReferenceModel): Promise<number> {
  const c = m.config;
  const part = await DecoderPart.load(
    readFileSync(m.modelPath),
    {
      num_kv_heads: c.num_key_value_heads,
      head_dim: c.head_dim,
      hidden_size: c.hidden_size,
      vocab_size: c.vocab_size,
      max_seq_len: c.max_position_embeddings,
    },
    'tiny-q',
    { executionProviders: ['wasm'] },
  );
  const sess = new WholeModelRunner(part).openSession();
  let worst = 0;
  try {
    const chunks = [
      [1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108],
      [100, 33, 10],
      [257],
      [65],
      [258],
      [0],
    ];
    for (const ids of chunks) {
      const got = await sess.forwardAll(ids);
      const want = ref.forward(ids);
      let scale = 0;
      want.forEach((row, s) => {
        for (let v = 0; v < c.vocab_size; v++) {
          worst = Math.max(worst, Math.abs(got[s * c.vocab_size + v]! - row[v]!));
          scale = Math.max(scale, Math.abs(row[v]!));
        }
      });
      expect(scale).toBeGreaterThan(1); // logits are not trivially small
    }
  } finally {
    sess.close();
    await part.release();
  }
  return worst;
}

interface Run {
  tokens: number[];
  logits: Float32Array[];
}

async function greedy(llm: OnnxLocalLlm, prompt: string): Promise<Run> {
  const run: Run = { tokens: [], logits: [] };
  for await (const t of llm.generateFromIds(llm.promptIds(prompt), {
    max_tokens: TOKENS,
    temperature: 0,
    eos_token_ids: [],
    keepLogits: true,
  })) {
    run.tokens.push(t.token_id);
    run.logits.push(t.logits!);
  }
  return run;
}

/** Whole vs split: identical tokens, per-step max|Δlogit| ≤ 1e−4·max(1, ‖ref‖∞). */
function compareRuns(ref: Run, got: Run): void {
  expect(got.tokens).toEqual(ref.tokens);
  ref.logits.forEach((r, i) => {
    const g = got.logits[i]!;
    let d = 0;
    let m = 0;
    for (let v = 0; v < r.length; v++) {
      d = Math.max(d, Math.abs(g[v]! - r[v]!));
      m = Math.max(m, Math.abs(r[v]!));
    }
    expect(d / Math.max(1, m)).toBeLessThanOrEqual(1e-4);
  });
}

describe('quantized tiny model (MatMulNBits + GatherBlockQuantized)', () => {
  it('packs 4-bit blocks in the MatMulNBits layout (low nibble first, zero points per column)', () => {
    // K = 48 with block 16: 3 blocks per column, so the zero points of each column take 2 bytes
    const K = 48;
    const N = 2;
    const w = new Float32Array(K * N);
    for (let k = 0; k < K; k++) {
      w[k * N] = k - 16; // column 0: [-16, 31]
      w[k * N + 1] = 0.5; // column 1: constant positive
    }
    const q = quantizeMatMulNBits(w, K, N, 16);
    expect(q.b.length).toBe(N * 3 * 8);
    expect(q.scales.length).toBe(N * 3);
    expect(q.zeroPoints.length).toBe(N * 2);
    // column 0, block 0 holds -16..-1: range [-16, 0], scale 16/15, zp 15; first value -16 → q 0
    expect(q.scales[0]).toBeCloseTo(16 / 15, 6);
    expect(q.zeroPoints[0]! & 0x0f).toBe(15);
    expect(q.b[0]! & 0x0f).toBe(0);
    expect(q.deq[0]).toBeCloseTo(-16, 5);
    // column 1: range [0, 0.5], zp 0, every value → 15
    expect(q.zeroPoints[2]).toBe(0);
    expect(q.b[24]).toBe(0xff);
    for (let k = 0; k < K; k++) expect(Math.abs(q.deq[k * N + 1]! - 0.5)).toBeLessThan(1e-7);
    // quantization error is at most half a step
    for (let k = 0; k < K; k++)
      for (let n = 0; n < N; n++) {
        const step = q.scales[n * 3 + Math.floor(k / 16)]!;
        expect(Math.abs(q.deq[k * N + n]! - w[k * N + n]!)).toBeLessThanOrEqual(step / 2 + 1e-6);
      }
  });

  it('graph holds only 4-bit weights: 7 MatMulNBits per layer + LM head, GatherBlockQuantized embedding', () => {
    for (const m of [q16, q32]) {
      const g = decodeModel(readFileSync(m.modelPath)).graph;
      const count = (op: string): number => g.node.filter((n) => n.opType === op).length;
      expect(count('MatMulNBits')).toBe(7 * m.config.num_hidden_layers + 1);
      expect(count('GatherBlockQuantized')).toBe(1);
      expect(g.node.some((n) => n.opType === 'Gather' && n.input[1] === 'input_ids')).toBe(false);
      // no float weight matrices left (2-D float initializers)
      expect(
        g.initializer!.filter(
          (t) =>
            t.dataType === 1 &&
            t.dims!.length === 2 &&
            !t.name!.endsWith('.scales') &&
            !t.name!.includes('_cache'),
        ),
      ).toEqual([]);
      for (const n of g.node.filter((x) => x.opType === 'MatMulNBits'))
        expect(n.attribute!.find((a) => a.name === 'block_size')!.i).toBe(m.config.quant_block_size);
      // the splitter infers hidden_size from the packed embedding without config.json
      const a = analyse(decodeModel(readFileSync(m.modelPath)));
      expect(a.hiddenSize).toBe(m.config.hidden_size);
      expect(a.quantizedOps).toEqual(['GatherBlockQuantized', 'MatMulNBits']);
    }
    // ~4.5× smaller than the float32 model
    expect(q16.bytes).toBeLessThan(300_000);
  });

  it('ORT (WASM) matches the float64 reference run on the dequantized weights within 1e-4', async () => {
    for (const m of [q16, q32]) {
      const worst = await diffAgainstReference(m, new ReferenceModel(m.config, m.weights));
      expect(worst).toBeLessThan(1e-4);
      // the quantization is real: against the unquantized float weights the logits move far more
      const floatRef = new ReferenceModel(m.config, makeWeights(m.config));
      expect(await diffAgainstReference(m, floatRef)).toBeGreaterThan(1e-2);
    }
  }, 20_000);

  it('splits into 2 and 3 shards (uneven), self-validation passes, 3 prompts × 16 greedy tokens identical whole vs split', async () => {
    const cases: [WrittenTinyModel, [number, number][]][] = [
      [
        q16,
        [
          [0, 2],
          [3, 3],
        ],
      ],
      [
        q16,
        [
          [0, 0],
          [1, 2],
          [3, 3],
        ],
      ],
      [
        q32,
        [
          [0, 0],
          [1, 3],
        ],
      ],
      [
        q32,
        [
          [0, 1],
          [2, 2],
          [3, 3],
        ],
      ],
    ];
    const refs = new Map<WrittenTinyModel, Run[]>();
    for (const m of [q16, q32]) {
      const whole = await OnnxLocalLlm.loadWhole(dirSource(m.dir), { executionProviders: ['wasm'] });
      try {
        const runs: Run[] = [];
        for (const p of PROMPTS) runs.push(await greedy(whole, p));
        expect(new Set(runs.flatMap((r) => r.tokens)).size).toBeGreaterThan(8); // not degenerate
        refs.set(m, runs);
      } finally {
        await whole.close();
      }
    }
    for (const [m, ranges] of cases) {
      const out = join(dir, `split-${m.config.quant_block_size}-${ranges.map((r) => r.join('-')).join('_')}`);
      const manifest = await splitModelFile(m.modelPath, { ranges, outDir: out });
      expect(manifest.weights_sha256).toBe(m.sha256);
      expect(manifest.tier).toBe('q');
      expect(manifest.source.quantized_ops).toEqual(['GatherBlockQuantized', 'MatMulNBits']);
      expect(manifest.shards.map((s) => s.layer_range)).toEqual(ranges);
      expect(manifest.validation!.max_rel_logit_diff).toBeLessThanOrEqual(1e-4);
      // every part carries only its own 4-bit weights
      const parts = [manifest.head, ...manifest.shards, manifest.tail];
      const ops = parts.map((p) =>
        decodeModel(readFileSync(join(out, p.file))).graph.node.map((n) => n.opType),
      );
      expect(ops[0]).toContain('GatherBlockQuantized');
      expect(ops[ops.length - 1]).toContain('MatMulNBits');
      manifest.shards.forEach((s, i) => {
        const n = ops[i + 1]!.filter((o) => o === 'MatMulNBits').length;
        expect(n).toBe(7 * (s.layer_range[1] - s.layer_range[0] + 1));
        expect(ops[i + 1]).not.toContain('GatherBlockQuantized');
      });
      const llm = await OnnxLocalLlm.loadSplit(dirSource(out), { executionProviders: ['wasm'] });
      try {
        expect(llm.info().mode).toBe('split');
        const ref = refs.get(m)!;
        for (let i = 0; i < PROMPTS.length; i++) compareRuns(ref[i]!, await greedy(llm, PROMPTS[i]!));
      } finally {
        await llm.close();
      }
    }
  }, 60_000);
});
