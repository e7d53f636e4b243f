import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxLocalLlm, type LocalLlm } from '../../engine/llm/local.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { SeededRng } from '../../engine/llm/rng.js';
import { sampleToken } from '../../engine/llm/sampling.js';
import { dirSource } from '../../tools/model/node-source.js';
import { writeTinyModel } from '../../tools/model/tiny-model.js';

configureOrt({ numThreads: 1 });
let dir: string;
let llm: OnnxLocalLlm;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hn-model-gen-'));
  const m = writeTinyModel(join(dir, 'tiny'));
  llm = await OnnxLocalLlm.loadWhole(dirSource(m.dir), { executionProviders: ['wasm'] });
});
afterAll(async () => {
  await llm.close();
  rmSync(dir, { recursive: true, force: true });
});

async function collect(
  l: LocalLlm,
  input: Parameters<LocalLlm['generate']>[0],
  opts: Parameters<LocalLlm['generate']>[1],
) {
  const it = l.generate(input, opts);
  const tokens: number[] = [];
  let text = '';
  for (;;) {
    const r = await it.next();
    if (r.done) return { tokens, text, summary: r.value };
    tokens.push(r.value.token_id);
    text += r.value.text;
  }
}

describe('sampling', () => {
  it('greedy picks the lowest id on ties; top_p → 0 equals greedy; temperature sampling follows the distribution', () => {
    const rng = new SeededRng(1);
    expect(sampleToken(Float32Array.of(1, 3, 3, 2), { temperature: 0, top_p: 1 }, rng)).toBe(1);
    expect(sampleToken(Float32Array.of(0.5, 0.1, 2, 1.9), { temperature: 1, top_p: 1e-6 }, rng)).toBe(2);
    const counts = [0, 0, 0];
    const logits = Float32Array.of(Math.log(0.2), Math.log(0.3), Math.log(0.5));
    for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, top_p: 1 }, rng)]!++;
    expect(counts[0]! / 20000).toBeCloseTo(0.2, 1);
    expect(counts[2]! / 20000).toBeCloseTo(0.5, 1);
    // top_p 0.7 keeps {2, 1} only
    const kept = new Set<number>();
    for (let i = 0; i < 2000; i++) kept.add(sampleToken(logits, { temperature: 1, top_p: 0.7 }, rng));
    expect([...kept].sort()).toEqual([1, 2]);
  });
});

describe('LocalLlm (ONNX engine)', () => {
  it('info() describes the model', () => {
    const i = llm.info();
    expect(i).toMatchObject({
      engine: 'onnx',
      model_id: 'hn-tiny-llama',
      layers: 4,
      vocab_size: 259,
      max_seq_len: 256,
      mode: 'whole',
    });
    expect(i.weights_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(i.execution_providers).toEqual(['wasm']);
  });

  it('seeded sampling is reproducible and differs across seeds; greedy is deterministic', async () => {
    const msgs = [{ role: 'user', content: 'Tell me a story.' }];
    const a = await collect(llm, msgs, {
      max_tokens: 24,
      temperature: 1,
      top_p: 0.95,
      seed: 11,
      eos_token_ids: [],
    });
    const b = await collect(llm, msgs, {
      max_tokens: 24,
      temperature: 1,
      top_p: 0.95,
      seed: 11,
      eos_token_ids: [],
    });
    const c = await collect(llm, msgs, {
      max_tokens: 24,
      temperature: 1,
      top_p: 0.95,
      seed: 12,
      eos_token_ids: [],
    });
    expect(a.tokens).toHaveLength(24);
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const g1 = await collect(llm, 'abc', { max_tokens: 16, eos_token_ids: [] });
    const g2 = await collect(llm, 'abc', { max_tokens: 16, eos_token_ids: [] });
    expect(g2.tokens).toEqual(g1.tokens);
    expect(g1.summary.stop_reason).toBe('max_tokens');
    expect(g1.summary.tokens_out).toBe(16);
  });

  it('stop strings end generation before the stop text, which is never emitted', async () => {
    const free = await collect(llm, 'Hello', { max_tokens: 40, eos_token_ids: [] });
    // pick a stop string from the middle of the free-running output
    const full = free.text;
    expect(full.length).toBeGreaterThan(12);
    const stop = full.slice(8, 11);
    const cut = full.indexOf(stop);
    const r = await collect(llm, 'Hello', { max_tokens: 40, stop: [stop], eos_token_ids: [] });
    expect(r.summary.stop_reason).toBe('stop');
    expect(r.text).toBe(full.slice(0, cut));
  });

  it('EOS ends generation', async () => {
    const free = await collect(llm, 'Hi', { max_tokens: 10, eos_token_ids: [] });
    const eos = free.tokens[3]!;
    const r = await collect(llm, 'Hi', { max_tokens: 10, eos_token_ids: [eos] });
    expect(r.summary.stop_reason).toBe('eos');
    expect(r.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(eos)));
  });

  it('rejects bad options with bad_request', async () => {
    await expect(collect(llm, 'x', { temperature: -1 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(collect(llm, 'x', { top_p: 0 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(collect(llm, 'x'.repeat(400), {})).rejects.toMatchObject({ code: 'bad_request' });
  });
});
