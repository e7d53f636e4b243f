import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { configureOrt } from '../../engine/llm/ort.js';
import { DecoderPart, WholeModelRunner } from '../../engine/llm/runtime.js';
import { LlmTokenizer } from '../../engine/llm/tokenizer.js';
import { ReferenceModel } from '../../tools/model/reference.js';
import { writeTinyModel, type WrittenTinyModel } from '../../tools/model/tiny-model.js';

configureOrt({ numThreads: 1 });
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hn-model-ref-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function maxDiff(got: Float32Array, ref: Float64Array[], V: number): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  ref.forEach((row, s) => {
    for (let v = 0; v < V; v++) {
      diff = Math.max(diff, Math.abs(got[s * V + v]! - row[v]!));
      scale = Math.max(scale, Math.abs(row[v]!));
    }
  });
  return { diff, scale };
}

async function checkAgainstReference(m: WrittenTinyModel): Promise<number> {
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
    'tiny',
    { executionProviders: ['wasm'] },
  );
  const ref = new ReferenceModel(c, m.weights);
  const sess = new WholeModelRunner(part).openSession();
  let worst = 0;
  try {
    // prefill 11 positions, then a 3-token chunk, then 4 single-token decode steps
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
      const { diff, scale } = maxDiff(got, want, c.vocab_size);
      expect(scale).toBeGreaterThan(1); // logits are not trivially small
      worst = Math.max(worst, diff);
    }
  } finally {
    sess.close();
    await part.release();
  }
  return worst;
}

describe('tiny model generator vs float64 reference', () => {
  it('standard graph matches the reference within 1e-4 (prefill, chunk, decode)', async () => {
    const m = writeTinyModel(join(dir, 'std'));
    const worst = await checkAgainstReference(m);
    expect(worst).toBeLessThan(1e-4);
  });

  it('fused-operator graph (SkipSimplifiedLayerNorm, RotaryEmbedding, GroupQueryAttention) matches within 1e-4', async () => {
    const m = writeTinyModel(join(dir, 'fused'), { fused: true });
    const bytes = readFileSync(m.modelPath);
    for (const op of ['SkipSimplifiedLayerNormalization', 'RotaryEmbedding', 'GroupQueryAttention'])
      expect(bytes.includes(Buffer.from(op))).toBe(true);
    const worst = await checkAgainstReference(m);
    expect(worst).toBeLessThan(1e-4);
  });

  it('a different shape (6 layers, MHA without grouping) also matches', async () => {
    const m = writeTinyModel(join(dir, 'mha'), {
      num_hidden_layers: 6,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      hidden_size: 32,
      head_dim: 8,
      intermediate_size: 64,
    });
    expect(await checkAgainstReference(m)).toBeLessThan(1e-4);
  });

  it('weights are deterministic per seed', () => {
    const a = writeTinyModel(join(dir, 'seed-a'));
    const b = writeTinyModel(join(dir, 'seed-b'));
    const c = writeTinyModel(join(dir, 'seed-c'), { seed: 7 });
    expect(a.sha256).toBe(b.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    expect(createHash('sha256').update(readFileSync(a.modelPath)).digest('hex')).toBe(a.sha256);
  });
});

describe('tokenizer', () => {
  it('round-trips text through tokenizer.json and encodes chat specials as single tokens', () => {
    const m = writeTinyModel(join(dir, 'tok'));
    const tk = new LlmTokenizer(
      JSON.parse(readFileSync(join(m.dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(m.dir, 'tokenizer_config.json'), 'utf8')),
    );
    for (const s of ['Hello, world!', '  leading spaces and\ttabs\n', 'Grüße, 東京 🚀', '']) {
      const ids = tk.encode(s);
      expect(ids.length).toBe(new TextEncoder().encode(s).length); // byte-level, no merges
      expect(tk.decode(ids)).toBe(s);
    }
    expect(tk.format).toBe('chatml');
    const ids = tk.encode(tk.formatChat([{ role: 'user', content: 'hi' }]));
    expect(ids[0]).toBe(257); // <|im_start|>
    expect(ids.filter((i) => i === 258)).toHaveLength(1); // <|im_end|>
    expect(tk.eosIds).toContain(258);
    expect(tk.decode([257, 104, 105, 258])).toBe('hi');
  });
});
