/**
 * M27 OrtEmbedder: a generated ONNX encoder (tools/model/tiny-encoder.ts) run by onnxruntime-web
 * (WASM). Its vectors equal a plain-JS reference of the same weights, are bit-identical across
 * sessions and batch neighbours, are L2-normalised, and route.query uses it behind the Embedder
 * interface (the hashed embedder stays the default). Bad model or tokenizer files → bad_request.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { manualClock } from '../../engine/core/vocab.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { HashedEmbedder } from '../../engine/moe/embedder.js';
import { MOE_INSTANCES } from '../../engine/moe/index.js';
import { meanPoolL2, OrtEmbedder } from '../../engine/moe/ort_embedder.js';
import { Tokenizer } from '@huggingface/tokenizers';
import { makeTinyEncoder } from '../../tools/model/tiny-encoder.js';
import { seedOf } from './helpers.js';

configureOrt({ numThreads: 1 });
const enc = makeTinyEncoder(7, 32);
let emb: OrtEmbedder;
beforeAll(async () => {
  emb = await OrtEmbedder.load(enc.bytes, enc.tokenizerJson);
});
afterAll(async () => {
  await emb?.close();
});

/** The same encoder in plain JS (float64): tanh(E[id]·W + b), mean over tokens, L2. */
function reference(text: string): Float64Array {
  const ids = new Tokenizer(enc.tokenizerJson, {}).encode(text, { add_special_tokens: true }).ids;
  const H = enc.hidden;
  const hidden = new Float64Array(ids.length * H);
  ids.forEach((id, t) => {
    for (let j = 0; j < H; j++) {
      let s = enc.b[j]!;
      for (let k = 0; k < H; k++) s += enc.embedding[id * H + k]! * enc.w[k * H + j]!;
      hidden[t * H + j] = Math.tanh(s);
    }
  });
  return meanPoolL2(
    hidden,
    ids.length,
    H,
    ids.map(() => 1),
  );
}

describe('M27 OrtEmbedder (generated ONNX encoder, onnxruntime-web WASM)', () => {
  it('matches the plain-JS reference; L2-normalised; id from the model hash; dim from the graph', async () => {
    expect(emb.id).toMatch(/^ort:[0-9a-f]{12}$/);
    expect(emb.dim).toBe(32);
    expect(emb.threshold).toBe(0.55);
    const texts = ['Sankt Martin', 'niederrhein history', 'Kochen mit Grünkohl', 'ü'];
    const vs = await emb.embed(texts);
    texts.forEach((t, i) => {
      const ref = reference(t);
      let n = 0;
      for (let j = 0; j < 32; j++) {
        expect(Math.abs(vs[i]![j]! - ref[j]!)).toBeLessThan(1e-5);
        n += vs[i]![j]! ** 2;
      }
      expect(Math.abs(n - 1)).toBeLessThan(1e-9);
    });
    // different texts, different vectors
    expect(vs[0]).not.toEqual(vs[1]);
  });

  it('is deterministic: bit-identical across sessions, repeats and batch neighbours', async () => {
    const other = await OrtEmbedder.load(enc.bytes, enc.tokenizerJson);
    try {
      const a = await emb.embed(['Laternenumzug in Kevelaer']);
      const b = await other.embed([
        'a much longer neighbour text in the same batch',
        'Laternenumzug in Kevelaer',
      ]);
      const c = await emb.embed(['Laternenumzug in Kevelaer']);
      expect(Array.from(b[1]!)).toEqual(Array.from(a[0]!));
      expect(Array.from(c[0]!)).toEqual(Array.from(a[0]!));
      expect(other.id).toBe(emb.id);
      // a different model gets a different id (the topic-vector cache is keyed by it)
      const m2 = makeTinyEncoder(8, 32);
      const e2 = await OrtEmbedder.load(m2.bytes, m2.tokenizerJson);
      expect(e2.id).not.toBe(emb.id);
      await e2.close();
    } finally {
      await other.close();
    }
  });

  it('empty and over-long texts: a zero vector and truncation, no error', async () => {
    const short = await OrtEmbedder.load(enc.bytes, enc.tokenizerJson, {}, { maxLength: 4 });
    try {
      const [z] = await short.embed(['']);
      expect(Array.from(z!).every((x) => x === 0)).toBe(true);
      const [a, b] = await short.embed(['abcd', 'abcdefgh']);
      expect(Array.from(b!)).toEqual(Array.from(a!));
    } finally {
      await short.close();
    }
  });

  it('bad model or tokenizer files → bad_request', async () => {
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e) => e.code as string,
      );
    expect(await code(OrtEmbedder.load(new Uint8Array([1, 2, 3, 4]), enc.tokenizerJson))).toBe('bad_request');
    expect(await code(OrtEmbedder.load(enc.bytes, { model: { type: 'Nope' } }))).toBe('bad_request');
    expect(await code(OrtEmbedder.load(enc.bytes, enc.tokenizerJson, {}, { maxLength: 0 }))).toBe(
      'bad_request',
    );
  });

  it('route.query runs on it behind the Embedder interface, and switches back to hashed', async () => {
    const clock = manualClock(Date.UTC(2026, 11, 7, 12));
    const n: HearthNode = await createNode({
      seed: seedOf(71),
      clock,
      now: () => clock.now(),
      config: { moe: {} as never },
    });
    try {
      await n.enable('moe');
      for (const [id, topics] of [
        ['hist', ['niederrhein-history', 'sankt-martins']],
        ['cook', ['cooking']],
        ['bike', ['bicycle-repair']],
      ] as const)
        await n.call('experimental.moe.expert.register', {
          kind: 'model',
          model_id: id,
          topics: [...topics],
        });
      const svc = MOE_INSTANCES.get(n.id)!.svc;
      svc.useEmbedder(emb);
      const q = { request_summary: 'When does the lantern walk start?', tags: ['sankt-martins'] };
      const r1 = await n.call('experimental.moe.route.query', q);
      expect(r1.embedder).toBe(emb.id);
      expect(r1.candidates[0].expert_id).toBe(`model:hist@${n.id}`);
      const r2 = await n.call('experimental.moe.route.query', q);
      expect(r2.candidates.map((c: { score: number }) => c.score)).toEqual(
        r1.candidates.map((c: { score: number }) => c.score),
      );
      svc.useEmbedder(new HashedEmbedder());
      expect((await n.call('experimental.moe.route.query', q)).embedder).toBe('hashed-fnv1a-512');
    } finally {
      await n.close();
    }
  });
});
