import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HnError } from '../../engine/core/errors.js';
import { prefill } from '../../engine/llm/generate.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { parseManifest } from '../../engine/llm/manifest.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { dirSource } from '../../tools/model/node-source.js';
import {
  decodeModel,
  encodeModel,
  DataType,
  valueInfo,
  tensorFromFloat32,
  type Model,
} from '../../tools/model/onnx.js';
import { splitModelFile, SplitError } from '../../tools/model/split-model.js';
import { writeTinyModel, type WrittenTinyModel } from '../../tools/model/tiny-model.js';

configureOrt({ numThreads: 1 });
const PROMPTS = [
  'The hearth is warm tonight.',
  'Q: what is a mesh network?\nA:',
  'Once upon a time, in a village with no internet,',
];
const SPLITS: [number, number][][] = [
  [[0, 3]],
  [
    [0, 1],
    [2, 3],
  ],
  [
    [0, 0],
    [1, 3],
  ],
  [
    [0, 0],
    [1, 1],
    [2, 3],
  ],
  [
    [0, 0],
    [1, 1],
    [2, 2],
    [3, 3],
  ],
];

let dir: string;
let std: WrittenTinyModel;
let fused: WrittenTinyModel;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hn-model-split-'));
  std = writeTinyModel(join(dir, 'std'));
  fused = writeTinyModel(join(dir, 'fused'), { fused: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  tokens: number[];
  logits: Float32Array[];
}

async function greedy(llm: OnnxLocalLlm, prompt: string, n = 32): Promise<Run> {
  const run: Run = { tokens: [], logits: [] };
  for await (const t of llm.generateFromIds(llm.promptIds(prompt), {
    max_tokens: n,
    temperature: 0,
    eos_token_ids: [],
    keepLogits: true,
  })) {
    run.tokens.push(t.token_id);
    run.logits.push(t.logits!);
  }
  return run;
}

/** B9.1: per step max|Δlogit| ≤ 1e−4·max(1, ‖ref‖∞); returns the worst relative difference. */
function compareRuns(ref: Run, got: Run): number {
  expect(got.tokens).toEqual(ref.tokens);
  let worst = 0;
  ref.logits.forEach((r, i) => {
    const g = got.logits[i]!;
    let d = 0;
    let m = 0;
    for (let v = 0; v < r.length; v++) {
      d = Math.max(d, Math.abs(g[v]! - r[v]!));
      m = Math.max(m, Math.abs(r[v]!));
    }
    worst = Math.max(worst, d / Math.max(1, m));
  });
  expect(worst).toBeLessThanOrEqual(1e-4);
  return worst;
}

async function wholeRuns(m: WrittenTinyModel): Promise<Run[]> {
  const whole = await OnnxLocalLlm.loadWhole(dirSource(m.dir), { executionProviders: ['wasm'] });
  try {
    const runs: Run[] = [];
    for (const p of PROMPTS) runs.push(await greedy(whole, p));
    return runs;
  } finally {
    await whole.close();
  }
}

describe('split-model: whole vs sharded greedy decoding', () => {
  it('3 prompts × 32 greedy tokens are identical for 1–4 shards (uneven included), logits within B10 tolerance', async () => {
    const ref = await wholeRuns(std);
    // the fixture must not be degenerate: varied tokens, and a clear top-1/top-2 margin
    expect(new Set(ref.flatMap((r) => r.tokens)).size).toBeGreaterThan(8);
    for (const ranges of SPLITS) {
      const out = join(dir, `split-${ranges.map((r) => r.join('-')).join('_')}`);
      const manifest = await splitModelFile(std.modelPath, { ranges, outDir: out });
      expect(manifest.weights_sha256).toBe(std.sha256);
      expect(manifest.shards.map((s) => s.layer_range)).toEqual(ranges);
      expect(manifest.validation!.max_rel_logit_diff).toBeLessThanOrEqual(1e-4);
      const llm = await OnnxLocalLlm.loadSplit(dirSource(out), { executionProviders: ['wasm'] });
      try {
        expect(llm.info().mode).toBe('split');
        for (let i = 0; i < PROMPTS.length; i++) compareRuns(ref[i]!, await greedy(llm, PROMPTS[i]!));
      } finally {
        await llm.close();
      }
    }
  }, 120_000);

  it('chunked prefill (chunks 1, 7, 64) equals one-shot prefill, whole and split', async () => {
    const whole = await OnnxLocalLlm.loadWhole(dirSource(std.dir), { executionProviders: ['wasm'] });
    const out = join(dir, 'split-chunk');
    await splitModelFile(std.modelPath, {
      ranges: [
        [0, 1],
        [2, 3],
      ],
      outDir: out,
      validate: false,
    });
    const split = await OnnxLocalLlm.loadSplit(dirSource(out), { executionProviders: ['wasm'] });
    try {
      const ids = whole.promptIds(
        'A longer prompt, so that chunked prefill really has several chunks to process: 0123456789 abcdefghij klmnopqrstuvwxyz!',
      );
      expect(ids.length).toBeGreaterThan(100);
      for (const llm of [whole, split]) {
        const one = llm.openContext();
        const ref = await prefill(one, ids, 512);
        one.close();
        for (const chunk of [1, 7, 64]) {
          const ctx = llm.openContext();
          const got = await prefill(ctx, ids, chunk);
          expect(ctx.pastLength).toBe(ids.length);
          ctx.close();
          let d = 0;
          let m = 0;
          for (let v = 0; v < ref.length; v++) {
            d = Math.max(d, Math.abs(got[v]! - ref[v]!));
            m = Math.max(m, Math.abs(ref[v]!));
          }
          expect(d / Math.max(1, m)).toBeLessThanOrEqual(1e-4);
        }
        // and the continuation is identical
        const a: number[] = [];
        const b: number[] = [];
        for await (const t of llm.generateFromIds(ids, {
          max_tokens: 8,
          prefill_chunk_tokens: 512,
          eos_token_ids: [],
        }))
          a.push(t.token_id);
        for await (const t of llm.generateFromIds(ids, {
          max_tokens: 8,
          prefill_chunk_tokens: 7,
          eos_token_ids: [],
        }))
          b.push(t.token_id);
        expect(b).toEqual(a);
      }
    } finally {
      await whole.close();
      await split.close();
    }
  }, 60_000);

  it('cuts the fused-operator variant (skip-norm, rotary, GQA) and stays equal to the whole fused model', async () => {
    const ref = await wholeRuns(fused);
    const out = join(dir, 'split-fused');
    const m = await splitModelFile(fused.modelPath, {
      ranges: [
        [0, 0],
        [1, 2],
        [3, 3],
      ],
      outDir: out,
    });
    expect(m.source.fused_ops).toEqual([
      'GroupQueryAttention',
      'RotaryEmbedding',
      'SimplifiedLayerNormalization',
      'SkipSimplifiedLayerNormalization',
    ]);
    expect(m.cut_stats.filter((c) => c.kind === 'skip_norm_sum').map((c) => c.boundary)).toEqual([1, 3, 4]);
    for (const c of m.cut_stats) {
      expect(c.rms_p01).toBeGreaterThan(0);
      expect(c.rms_p99!).toBeGreaterThanOrEqual(c.rms_p01!);
    }
    const llm = await OnnxLocalLlm.loadSplit(dirSource(out), { executionProviders: ['wasm'] });
    try {
      for (let i = 0; i < PROMPTS.length; i++) compareRuns(ref[i]!, await greedy(llm, PROMPTS[i]!));
    } finally {
      await llm.close();
    }
  }, 60_000);
});

describe('split-model: refusals and hash checks', () => {
  function tinyGraph(over: (m: Model) => void): string {
    const m = decodeModel(readFileSync(std.modelPath));
    over(m);
    const p = join(dir, `bad-${Math.random().toString(36).slice(2)}.onnx`);
    writeFileSync(p, encodeModel(m));
    return p;
  }

  it('refuses a graph without KV cache, naming why', async () => {
    const p = tinyGraph((m) => {
      m.graph = {
        name: 'nokv',
        node: [
          {
            name: '/model/embed_tokens/Gather',
            opType: 'Gather',
            input: ['emb', 'input_ids'],
            output: ['h'],
          },
          { name: '/lm_head/MatMul', opType: 'MatMul', input: ['h', 'emb_t'], output: ['logits'] },
        ],
        initializer: [
          tensorFromFloat32('emb', [4, 2], new Float32Array(8)),
          tensorFromFloat32('emb_t', [2, 4], new Float32Array(8)),
        ],
        input: [valueInfo('input_ids', DataType.INT64, [1, 'S'])],
        output: [valueInfo('logits', DataType.FLOAT, [1, 'S', 4])],
      };
    });
    await expect(splitModelFile(p, { ranges: [[0, 0]], outDir: join(dir, 'o1') })).rejects.toThrow(
      /no KV-cache inputs.*with past/,
    );
  });

  it('refuses a merged decoder with an If subgraph', async () => {
    const p = tinyGraph((m) => {
      const sub = { name: 'branch', node: [], output: [valueInfo('logits', DataType.FLOAT, [1])] };
      m.graph.node.push({
        name: '/model/use_cache_branch/If',
        opType: 'If',
        input: ['use_cache_branch'],
        output: ['x'],
        attribute: [
          { name: 'then_branch', type: 5, g: sub },
          { name: 'else_branch', type: 5, g: sub },
        ],
      });
    });
    await expect(splitModelFile(p, { ranges: [[0, 3]], outDir: join(dir, 'o2') })).rejects.toThrow(
      /control-flow subgraph.*merged/i,
    );
  });

  it('refuses a graph whose node names carry no layer index', async () => {
    const p = tinyGraph((m) => m.graph.node.forEach((n, i) => (n.name = `node_${i}`)));
    await expect(splitModelFile(p, { ranges: [[0, 3]], outDir: join(dir, 'o3') })).rejects.toThrow(
      /no layer index/,
    );
  });

  it('refuses ranges that do not cover the layers', async () => {
    await expect(
      splitModelFile(std.modelPath, {
        ranges: [
          [0, 1],
          [3, 3],
        ],
        outDir: join(dir, 'o4'),
      }),
    ).rejects.toThrow(SplitError);
    await expect(
      splitModelFile(std.modelPath, { ranges: [[0, 2]], outDir: join(dir, 'o5') }),
    ).rejects.toThrow(/4 layers/);
  });

  it('CLI: writes parts + manifest; exits 2 with the reason on an unsupported graph', async () => {
    const run = promisify(execFile);
    const out = join(dir, 'cli');
    const ok = await run('npx', [
      'tsx',
      'tools/model/split-model.ts',
      std.modelPath,
      '--ranges',
      '0-1,2-3',
      '--out',
      out,
    ]);
    expect(ok.stdout).toMatch(/validated/);
    const m = parseManifest(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')));
    expect(m.weights_sha256).toBe(std.sha256);
    const bad = tinyGraph((g) => g.graph.node.forEach((n, i) => (n.name = `n${i}`)));
    const err = await run('npx', [
      'tsx',
      'tools/model/split-model.ts',
      bad,
      '--ranges',
      '0-3',
      '--out',
      join(dir, 'cli-bad'),
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/split-model: unsupported graph: node names carry no layer index/);
  }, 60_000);

  it('a part whose bytes do not match the manifest hash is refused, never loaded', async () => {
    const good = join(dir, 'hash-good');
    await splitModelFile(std.modelPath, {
      ranges: [
        [0, 1],
        [2, 3],
      ],
      outDir: good,
      validate: false,
    });
    const bad = join(dir, 'hash-bad');
    cpSync(good, bad, { recursive: true });
    const shard = join(bad, 'shard-2-3.onnx');
    const b = readFileSync(shard);
    b[b.length - 5]! ^= 0x01; // one flipped bit inside a weight
    writeFileSync(shard, b);
    const err = await OnnxLocalLlm.loadSplit(dirSource(bad), { executionProviders: ['wasm'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HnError);
    expect((err as HnError).code).toBe('shard_unavailable');
    expect((err as HnError).details?.['reason']).toBe('weights_mismatch');
    expect((err as HnError).message).toMatch(/shard-2-3\.onnx.*SHA-256 mismatch/);
    // wrong expected weights hash for the whole model, and a tampered tokenizer, are refused too
    await expect(
      OnnxLocalLlm.loadWhole(dirSource(std.dir), {
        executionProviders: ['wasm'],
        expectedSha256: '0'.repeat(64),
      }),
    ).rejects.toThrow(/SHA-256 mismatch/);
    const tk = join(dir, 'hash-tok');
    cpSync(good, tk, { recursive: true });
    copyFileSync(join(tk, 'tokenizer_config.json'), join(tk, 'tokenizer.json'));
    await expect(OnnxLocalLlm.loadSplit(dirSource(tk), { executionProviders: ['wasm'] })).rejects.toThrow(
      /tokenizer\.json.*mismatch/,
    );
    // the untouched copy loads
    const llm = await OnnxLocalLlm.loadSplit(dirSource(good), { executionProviders: ['wasm'] });
    expect(llm.info().weights_sha256).toBe(std.sha256);
    await llm.close();
  });
});
