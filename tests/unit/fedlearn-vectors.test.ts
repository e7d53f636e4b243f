/** The engine agrees with the independently derived X09 vectors (conformance/vectors/fedlearn, derive.py). */
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifestBytes, manifestSha, type RoundManifest } from '../../engine/fedlearn/manifest.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { aggregate } from '../../engine/fedlearn/aggregator.js';
import { validateDelta, type ModelCard, type Tensors } from '../../engine/fedlearn/delta.js';

const vec = (f: string) => JSON.parse(readFileSync(`conformance/vectors/fedlearn/${f}`, 'utf8'));
const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe('M28 X09 vectors (engine side)', () => {
  it('manifest: JCS bytes and manifest_sha', () => {
    for (const c of vec('manifest.json').cases) {
      const m = c.manifest as RoundManifest;
      expect(new TextDecoder().decode(manifestBytes(m))).toBe(c.jcs);
      expect(manifestSha(m)).toBe(c.manifest_sha);
    }
  });

  it('init: PRNG outputs and A₀/B₀ bit-exact', () => {
    const v = vec('init.json');
    const card: ModelCard = { base_model_id: 'x', ...v.card };
    for (const c of v.cases) {
      const r = xoshiro128ss(c.seed);
      expect([r.u32(), r.u32(), r.u32(), r.u32()]).toEqual(c.first_u32);
      const t = loraInit(card, Object.keys(card.modules), c.rank, c.seed);
      expect([...t.keys()]).toEqual(Object.keys(c.tensors).sort());
      for (const [n, want] of Object.entries(c.tensors) as [
        string,
        { shape: number[]; values: number[] },
      ][]) {
        expect(t.get(n)!.shape).toEqual(want.shape);
        expect(Array.from(t.get(n)!.data)).toEqual(want.values);
      }
    }
  });

  it('aggregation: fedavg, trimmed mean, median (F32-exact)', () => {
    const v = vec('aggregation.json');
    const name = 'layers.0.q_proj.lora_B';
    const subs = v.submissions.map((s: { participant: string; num_samples: number; values: number[] }) => ({
      participant: s.participant,
      num_samples: s.num_samples,
      tensors: new Map([[name, { shape: [4, 1], data: Float32Array.from(s.values) }]]) as Tensors,
    }));
    const init: Tensors = new Map([[name, { shape: [4, 1], data: new Float32Array(4) }]]);
    for (const c of v.cases) {
      const out = aggregate(subs, {
        method: c.method,
        trim_fraction: c.trim_fraction,
        min_participants: 3,
        init,
      });
      expect(Array.from(out.get(name)!.data)).toEqual(c.expected_f32);
    }
  });

  it('delta validation: every case gives the expected code', () => {
    const v = vec('delta_validation.json');
    const e = { ...v.expectation, card: { base_model_id: 'x', ...v.expectation.card } };
    for (const c of v.cases) {
      const bytes = Uint8Array.from(Buffer.from(c.bytes_b64, 'base64'));
      expect([c.name, code(() => validateDelta(bytes, e))]).toEqual([c.name, c.expect]);
    }
  });
});

describe('X09 experimental/fedlearn, in-process', () => {
  it('every case passes on a real node with M28 on', async () => {
    const { createNode } = await import('../../engine/index.js');
    const { HnError } = await import('../../engine/core/errors.js');
    const { section } = await import('../../conformance/suites/experimental/fedlearn.js');
    const { drbgIdentity } = await import('../../conformance/lib/drbg.js');
    const { seedOf } = await import('./helpers.js');
    const node = await createNode({ seed: seedOf(140), config: { fedlearn: { enabled: true } } });
    const call = async (cap: string, input: unknown) => {
      try {
        return { output: structuredClone(await node.call(cap, input)) };
      } catch (e) {
        const h = e instanceof HnError ? e : new HnError('internal_error', String(e));
        return { error: { code: h.code, message: h.message } };
      }
    };
    const { runVector } = await import('../../conformance/harness/vector-ops.js');
    const target = {
      config: async (_p: number, m: Record<string, boolean>) =>
        m.fedlearn ? node.enable('fedlearn') : node.disable('fedlearn'),
      // harness op vector, as the in-process target answers it (fedlearn.vector.aggregation)
      vector: async (_p: number, family: string, op: string, input: unknown) => {
        try {
          return { output: structuredClone(await runVector(family, op, input)) };
        } catch (e) {
          return { error: { code: String((e as { code?: string }).code), message: String(e) } };
        }
      },
    };
    for (const c of section.cases) {
      const ctx = {
        caseId: c.id,
        call,
        target,
        identity: (n: string) => drbgIdentity(7, `${c.id}/${n}`),
        vectors: () => undefined,
      };
      expect(await c.run(ctx as never), c.id).toEqual({ status: 'pass' });
    }
    await node.close();
  }, 60_000);
});
