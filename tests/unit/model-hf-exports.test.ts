/**
 * Real Hugging Face toolchain exports (../shared/fixtures/hf-exports, used as they are): Optimum
 * (fp32, external data, MatMulNBits, GatherBlockQuantized), the onnxruntime-genai builder (fp32 and
 * int4, fused operators, genai_config.json, external data) and torch dynamo. Each splits into 2 and
 * 3 shards, self-validates, and the split model reproduces the whole one in onnxruntime-web (WASM):
 * 16 greedy tokens and the logits of a forced 16-token sequence, within 1e-4.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HnError } from '../../engine/core/errors.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { parseManifest, weightsIdentity, type ModelManifest } from '../../engine/llm/manifest.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { externalDataLocations } from '../../engine/llm/onnx-external.js';
import { SeededRng } from '../../engine/llm/rng.js';
import { dirSource } from '../../tools/model/node-source.js';
import { decodeModel } from '../../tools/model/onnx.js';
import { splitModelFile, SplitError } from '../../tools/model/split-model.js';

configureOrt({ numThreads: 1 });
const repoRoot = resolve(__dirname, '../..');
const FIXTURES = resolve(repoRoot, '../shared/fixtures/hf-exports');
const EXPORTS = [
  'optimum-llama',
  'optimum-qwen2',
  'optimum-qwen2-extdata',
  'optimum-llama-q4',
  'optimum-qwen2-q4g',
  'genai-llama-fp32',
  'genai-qwen2-int4',
  'dynamo-llama',
];
const PLANS: [number, number][][] = [
  [
    [0, 1],
    [2, 3],
  ],
  [
    [0, 0],
    [1, 2],
    [3, 3],
  ],
];
const WASM = { executionProviders: ['wasm' as const] };
const TOL = 1e-4;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hn-hf-exports-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function seededIds(seed: number, n: number): number[] {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, () => 4 + Math.floor(rng.next() * 990));
}

interface Run {
  tokens: number[];
  logits: Float32Array[];
  forced: Float32Array[];
}

/** 16 greedy tokens after a prompt, then a fresh context fed a forced 16-token sequence. */
async function runModel(llm: OnnxLocalLlm, seed: number): Promise<Run> {
  const run: Run = { tokens: [], logits: [], forced: [] };
  for await (const t of llm.generateFromIds(seededIds(seed, 7), {
    max_tokens: 16,
    temperature: 0,
    eos_token_ids: [],
    keepLogits: true,
  })) {
    run.tokens.push(t.token_id);
    run.logits.push(t.logits!);
  }
  const ctx = llm.openContext();
  try {
    const forced = seededIds(seed + 1, 16);
    run.forced.push((await ctx.forward(forced.slice(0, 4))).slice()); // a prefill chunk, then steps
    for (const id of forced.slice(4)) run.forced.push((await ctx.forward([id])).slice());
  } finally {
    ctx.close();
  }
  return run;
}

function maxRel(a: Float32Array[], b: Float32Array[]): number {
  expect(b.length).toBe(a.length);
  let worst = 0;
  a.forEach((r, i) => {
    const g = b[i]!;
    expect(g.length).toBe(r.length);
    let d = 0;
    let m = 0;
    for (let v = 0; v < r.length; v++) {
      d = Math.max(d, Math.abs(g[v]! - r[v]!));
      m = Math.max(m, Math.abs(r[v]!));
    }
    worst = Math.max(worst, d / Math.max(1, m));
  });
  return worst;
}

/** Every part's external references point into its own data file only; no empty data file. */
function checkSelfContained(out: string, m: ModelManifest): void {
  const seen = new Set<string>();
  for (const p of [m.head, m.tail, ...m.shards]) {
    const bytes = readFileSync(join(out, p.file));
    const locs = externalDataLocations(bytes);
    const own = (p.external_data ?? []).map((e) => e.file);
    expect(locs).toEqual(own);
    for (const e of p.external_data ?? []) {
      expect(e.file).toBe(`${p.file}.data`);
      expect(e.bytes).toBeGreaterThan(0);
      expect(readFileSync(join(out, e.file)).length).toBe(e.bytes);
      expect(seen.has(e.file)).toBe(false);
      seen.add(e.file);
      const model = decodeModel(bytes);
      for (const t of model.graph.initializer ?? []) {
        if (t.dataLocation !== 1) continue;
        const kv = new Map((t.externalData ?? []).map((x) => [x.key, x.value]));
        expect(Number(kv.get('offset')) + Number(kv.get('length'))).toBeLessThanOrEqual(e.bytes);
      }
    }
  }
  // nothing in the folder that the manifest does not list (no stray or empty data file)
  const listed = new Set([
    'manifest.json',
    ...[m.head, m.tail, ...m.shards].flatMap((p) => [p.file, ...(p.external_data ?? []).map((e) => e.file)]),
    ...[m.tokenizer, m.tokenizer_config, m.config].filter((f) => f).map((f) => f!.file),
  ]);
  for (const f of readdirSync(out)) expect(listed.has(f), `unlisted file ${f}`).toBe(true);
}

describe('real HF exports: split into 2 and 3 shards = whole model (WASM)', () => {
  it('the fixtures are present (../shared beside the repo)', () => {
    for (const e of EXPORTS) expect(existsSync(join(FIXTURES, e, 'model.onnx')), e).toBe(true);
  });

  for (const [k, name] of EXPORTS.entries()) {
    it(`${name}: 2 and 3 shards, 16 greedy tokens + forced 16-token logits within 1e-4`, async () => {
      const src = join(FIXTURES, name);
      const whole = await OnnxLocalLlm.loadWhole(dirSource(src), WASM);
      let ref: Run;
      try {
        expect(whole.info().layers).toBe(4);
        ref = await runModel(whole, 100 + k);
      } finally {
        await whole.close();
      }
      // not degenerate: the forced sequence's logits change from step to step
      expect(maxRel([ref.forced[1]!], [ref.forced[2]!])).toBeGreaterThan(1e-3);
      const extSrc = readdirSync(src).filter((f) => /\.onnx[._]data$/.test(f));
      for (const ranges of PLANS) {
        const out = join(dir, `${name}-${ranges.length}`);
        const m = await splitModelFile(join(src, 'model.onnx'), { ranges, outDir: out });
        expect(m.validation!.max_rel_logit_diff).toBeLessThanOrEqual(TOL);
        expect(m.dims).toMatchObject({ total_layers: 4, hidden_size: 64, num_kv_heads: 2, head_dim: 16 });
        expect(m.dims.vocab_size).toBe(1000);
        expect(m.shards.map((s) => s.layer_range)).toEqual(ranges);
        // identity covers the graph and every data file of the source
        expect((m.source.external_data ?? []).map((f) => f.file)).toEqual(extSrc);
        expect(m.weights_sha256).toBe(weightsIdentity(m.source, m.source.external_data ?? []));
        if (extSrc.length) expect(m.weights_sha256).not.toBe(m.source.sha256);
        checkSelfContained(out, m);
        const llm = await OnnxLocalLlm.loadSplit(dirSource(out), WASM);
        try {
          expect(llm.info().mode).toBe('split');
          const got = await runModel(llm, 100 + k);
          expect(got.tokens).toEqual(ref.tokens);
          expect(maxRel(ref.logits, got.logits)).toBeLessThanOrEqual(TOL);
          expect(maxRel(ref.forced, got.forced)).toBeLessThanOrEqual(TOL);
        } finally {
          await llm.close();
        }
      }
    }, 180_000);
  }
});

describe('identity and refusals', () => {
  const extSrc = (): string => join(FIXTURES, 'optimum-qwen2-extdata');

  it('equal graphs with different weights get different identities (split and whole)', async () => {
    const a = join(dir, 'id-a');
    const b = join(dir, 'id-b');
    cpSync(extSrc(), a, { recursive: true });
    cpSync(extSrc(), b, { recursive: true });
    const data = readFileSync(join(b, 'model.onnx_data'));
    const f = new Float32Array(data.buffer, data.byteOffset, 16);
    f[3] = f[3]! + 0.5; // one weight of the embedding table
    writeFileSync(join(b, 'model.onnx_data'), data);
    const ranges = PLANS[0]!;
    const ma = await splitModelFile(join(a, 'model.onnx'), { ranges, outDir: join(a, 'split') });
    const mb = await splitModelFile(join(b, 'model.onnx'), { ranges, outDir: join(b, 'split') });
    expect(ma.source.sha256).toBe(mb.source.sha256); // the graph files are byte-identical
    expect(ma.weights_sha256).not.toBe(mb.weights_sha256);
    const wa = await OnnxLocalLlm.loadWhole(dirSource(a), WASM);
    const wb = await OnnxLocalLlm.loadWhole(dirSource(b), WASM);
    try {
      expect(wa.info().weights_sha256).toBe(ma.weights_sha256);
      expect(wb.info().weights_sha256).toBe(mb.weights_sha256);
      // a whole model checked against its split manifest refuses different data
      await expect(
        OnnxLocalLlm.loadWhole(dirSource(b), {
          ...WASM,
          expectedSha256: ma.source.sha256,
          expectedExternal: ma.source.external_data!,
        }),
      ).rejects.toMatchObject({ code: 'shard_unavailable' });
    } finally {
      await wa.close();
      await wb.close();
    }
  }, 120_000);

  it('a part whose data file is missing or altered is refused with shard_unavailable', async () => {
    const good = join(dir, 'parts-good');
    const m = await splitModelFile(join(extSrc(), 'model.onnx'), {
      ranges: PLANS[0]!,
      outDir: good,
      validate: false,
    });
    const dataFile = m.shards[1]!.external_data![0]!.file;
    expect(dataFile).toBe('shard-2-3.onnx.data');
    const missing = join(dir, 'parts-missing');
    cpSync(good, missing, { recursive: true });
    rmSync(join(missing, dataFile));
    const e1 = await OnnxLocalLlm.loadSplit(dirSource(missing), WASM).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(e1).toBeInstanceOf(HnError);
    expect((e1 as HnError).code).toBe('shard_unavailable');
    expect((e1 as HnError).details?.['reason']).toBe('data_missing');
    expect((e1 as HnError).message).toMatch(/shard-2-3\.onnx\.data is missing/);
    const altered = join(dir, 'parts-altered');
    cpSync(good, altered, { recursive: true });
    const b = readFileSync(join(altered, dataFile));
    b[100]! ^= 0x10;
    writeFileSync(join(altered, dataFile), b);
    const e2 = await OnnxLocalLlm.loadSplit(dirSource(altered), WASM).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((e2 as HnError).code).toBe('shard_unavailable');
    expect((e2 as HnError).details?.['reason']).toBe('weights_mismatch');
    expect((e2 as HnError).message).toMatch(/shard-2-3\.onnx\.data/);
    // the manifest itself is consistent; a manifest whose identity does not cover its data is refused
    const mj = JSON.parse(readFileSync(join(good, 'manifest.json'), 'utf8')) as ModelManifest;
    expect(() => parseManifest(mj)).not.toThrow();
    const forged = { ...mj, weights_sha256: mj.source.sha256 };
    expect(() => parseManifest(forged)).toThrow(/weights_sha256/);
    // the untouched copy loads
    const llm = await OnnxLocalLlm.loadSplit(dirSource(good), WASM);
    expect(llm.info().weights_sha256).toBe(m.weights_sha256);
    await llm.close();
  }, 120_000);

  it('a source whose data file is missing or truncated is refused by name; nothing is written', async () => {
    const src = join(dir, 'src-missing');
    cpSync(extSrc(), src, { recursive: true });
    rmSync(join(src, 'model.onnx_data'));
    const out = join(dir, 'out-missing');
    await expect(splitModelFile(join(src, 'model.onnx'), { ranges: PLANS[0]!, outDir: out })).rejects.toThrow(
      /model\.onnx_data', which is missing: copy it next to the model/,
    );
    expect(existsSync(out)).toBe(false);
    await expect(OnnxLocalLlm.loadWhole(dirSource(src), WASM)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/model\.onnx_data, which is missing/),
    });
    const trunc = join(dir, 'src-trunc');
    cpSync(extSrc(), trunc, { recursive: true });
    const d = readFileSync(join(trunc, 'model.onnx_data'));
    writeFileSync(join(trunc, 'model.onnx_data'), d.subarray(0, d.length - 4096));
    const out2 = join(dir, 'out-trunc');
    const err = await splitModelFile(join(trunc, 'model.onnx'), { ranges: PLANS[0]!, outDir: out2 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SplitError);
    expect((err as Error).message).toMatch(/outside 'model\.onnx_data'.*truncated/);
    expect(existsSync(out2)).toBe(false);
    // a config that does not belong to the graph is refused before anything is written
    const wrongCfg = join(dir, 'src-cfg');
    cpSync(join(FIXTURES, 'optimum-llama'), wrongCfg, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(wrongCfg, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(wrongCfg, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 6 }));
    const out3 = join(dir, 'out-cfg');
    await expect(
      splitModelFile(join(wrongCfg, 'model.onnx'), { ranges: PLANS[0]!, outDir: out3 }),
    ).rejects.toThrow(/num_hidden_layers 6 but the graph has 4/);
    expect(existsSync(out3)).toBe(false);
  }, 60_000);

  it('the CLI refuses with one line and exit code 2, never a stack trace', async () => {
    const src = join(dir, 'cli-missing');
    cpSync(extSrc(), src, { recursive: true });
    rmSync(join(src, 'model.onnx_data'));
    const out = join(dir, 'cli-out');
    const err = await promisify(execFile)(
      'npx',
      ['tsx', 'tools/model/split-model.ts', join(src, 'model.onnx'), '--ranges', '0-1,2-3', '--out', out],
      { cwd: repoRoot },
    ).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr.trim()).toMatch(/^split-model: initializer .*'model\.onnx_data', which is missing/);
    expect(err?.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
