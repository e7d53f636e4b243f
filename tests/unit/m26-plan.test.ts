/**
 * M26 planner (B6) vectors with hand-derived expectations, its determinism under any candidate order, and the
 * "serve automatically" range proposal (gaps first, then a replica of the least-replicated range).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planCover, keyOf, type PlanCandidate } from '../../engine/distributed_inference/plan.js';
import { ShardHost } from '../../engine/distributed_inference/shard.js';
import type { InstalledShardModel } from '../../engine/distributed_inference/types.js';
import { defaultConfig } from '../../engine/core/config.js';
import { HnError } from '../../engine/core/errors.js';

const c = (lo: number, hi: number, host = 'h', over: Partial<PlanCandidate> = {}): PlanCandidate => ({
  shard_id: `m:${lo}-${hi}`,
  host,
  layer_range: [lo, hi],
  path: 'direct',
  queue_depth: 0,
  p95_latency_ms: 0,
  ...over,
});
const ids = (r: ReturnType<typeof planCover>) => (r.ok ? r.shards.map(keyOf) : r);

describe('planCover (B6 vectors)', () => {
  it('{0-7, 4-11, 8-15} → {0-7, 8-15}', () => {
    expect(ids(planCover([c(0, 7), c(4, 11), c(8, 15)], 16))).toEqual(['m:0-7@h', 'm:8-15@h']);
  });
  it('{0-7, 0-3, 4-15} → {0-3, 4-15} (0-7 is tried first, dead-ends at 8, backtracks)', () => {
    expect(ids(planCover([c(0, 7), c(0, 3), c(4, 15)], 16))).toEqual(['m:0-3@h', 'm:4-15@h']);
  });
  it('a gap → uncovered, naming the first uncovered layer', () => {
    expect(planCover([c(0, 3), c(0, 5), c(8, 15)], 16)).toEqual({
      ok: false,
      reason: 'uncovered',
      first_uncovered_layer: 6,
    });
    expect(planCover([], 4)).toEqual({ ok: false, reason: 'uncovered', first_uncovered_layer: 0 });
  });
  it('17 one-layer shards for 17 layers → max_shards (16 reach layer 16, the 17th is beyond the limit)', () => {
    const all = Array.from({ length: 17 }, (_, i) => c(i, i));
    expect(planCover(all, 17)).toEqual({ ok: false, reason: 'max_shards', first_uncovered_layer: 16 });
    expect(planCover(all, 16 + 1, { max_shards: 16 }).ok).toBe(false);
    expect(planCover(all.slice(0, 16), 16).ok).toBe(true);
  });
  it('ordering: direct before relayed → lower queue → larger hi → lower p95 → lexicographic id@host', () => {
    const pick = (cs: PlanCandidate[]) => (planCover(cs, 4) as { shards: PlanCandidate[] }).shards[0]!;
    expect(keyOf(pick([c(0, 3, 'a', { path: 'relayed' }), c(0, 3, 'b')]))).toBe('m:0-3@b');
    expect(keyOf(pick([c(0, 3, 'a', { queue_depth: 2 }), c(0, 3, 'b', { path: 'relayed' })]))).toBe(
      'm:0-3@a',
    );
    expect(keyOf(pick([c(0, 3, 'a', { queue_depth: 2 }), c(0, 3, 'b', { queue_depth: 1 })]))).toBe('m:0-3@b');
    expect(keyOf(pick([c(0, 1, 'a'), c(2, 3, 'a'), c(0, 3, 'b', { p95_latency_ms: 50 })]))).toBe('m:0-3@b');
    expect(keyOf(pick([c(0, 3, 'a', { p95_latency_ms: 9 }), c(0, 3, 'b', { p95_latency_ms: 3 })]))).toBe(
      'm:0-3@b',
    );
    expect(keyOf(pick([c(0, 3, 'b'), c(0, 3, 'a')]))).toBe('m:0-3@a');
    // re-plan: shards already in the run rank first
    expect(
      keyOf(
        (
          planCover([c(0, 3, 'a'), c(0, 3, 'b')], 4, { prefer: new Set(['m:0-3@b']) }) as {
            shards: PlanCandidate[];
          }
        ).shards[0]!,
      ),
    ).toBe('m:0-3@b');
  });
  it('only lo == cursor qualifies: a shard starting earlier never re-runs layers', () => {
    expect(ids(planCover([c(0, 2), c(1, 3)], 4))).toMatchObject({ ok: false, first_uncovered_layer: 3 });
  });
  it('out-of-range candidates are ignored; bad total_layers / max_shards → bad_request', () => {
    expect(ids(planCover([c(0, 9), c(0, 3)], 4))).toEqual(['m:0-3@h']);
    expect(() => planCover([], 0)).toThrow(HnError);
    expect(() => planCover([], 4, { max_shards: 17 })).toThrow(/max_shards/);
  });
  it('property: deterministic in any candidate order, and every cover is contiguous from 0 to L−1', () => {
    const arb = fc.array(
      fc.record({
        lo: fc.integer({ min: 0, max: 11 }),
        len: fc.integer({ min: 0, max: 5 }),
        host: fc.constantFrom('a', 'b', 'c'),
      }),
      { maxLength: 14 },
    );
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 6 }), (raw, maxShards) => {
        const cs = raw.map((r) => c(r.lo, Math.min(11, r.lo + r.len), r.host));
        const a = planCover(cs, 12, { max_shards: maxShards });
        const b = planCover([...cs].reverse(), 12, { max_shards: maxShards });
        expect(a).toEqual(b);
        if (a.ok) {
          let cursor = 0;
          for (const s of a.shards) {
            expect(s.layer_range[0]).toBe(cursor);
            cursor = s.layer_range[1] + 1;
          }
          expect(cursor).toBe(12);
          expect(a.shards.length).toBeLessThanOrEqual(maxShards);
        }
      }),
    );
  });
});

describe('serve automatically (proposeRange)', () => {
  // 8 one-layer shards of 1 MiB each; KV reserve is tiny next to them
  const model: InstalledShardModel = {
    model_id: 'm',
    weights_sha256: 'a'.repeat(64),
    tier: 'fp32',
    total_layers: 8,
    hidden_size: 64,
    num_kv_heads: 1,
    head_dim: 4,
    max_seq_len: 16,
    compute_dtype: 'float32',
    ranges: Array.from({ length: 8 }, (_, i) => [i, i] as [number, number]),
    rangeBytes: (lo, hi) => (hi - lo + 1) * 1024 * 1024,
    load: () => Promise.reject(new Error('not loaded in this test')),
  };
  const host = (mb: number) => {
    const dl = { ...defaultConfig().distributed_llm, max_vram_mb: mb };
    return new ShardHost({
      self: 'ed25519:x' as never,
      config: () => dl,
      tensors: {
        authorise: () => {
          throw new Error('unused');
        },
        onSession: () => () => undefined,
      },
      events: { append: async () => undefined },
      models: () => [model],
    });
  };
  it('gaps first: the largest run of uncovered shards that fits the budget, from the first gap', () => {
    expect(host(4).proposeRange(model, [0, 0, 0, 0, 0, 0, 0, 0])).toEqual([0, 2]); // 3 MiB + KV ≤ 4 MiB
    expect(host(4).proposeRange(model, [1, 1, 1, 0, 0, 0, 0, 0])).toEqual([3, 5]);
    expect(host(100).proposeRange(model, [1, 1, 1, 0, 0, 1, 0, 0])).toEqual([3, 4]); // stops at the covered layer 5
  });
  it('full coverage: a replica of the least-replicated range (lowest index on ties)', () => {
    expect(host(100).proposeRange(model, [2, 2, 1, 1, 1, 2, 2, 1])).toEqual([2, 4]);
    expect(host(2).proposeRange(model, [2, 2, 1, 1, 1, 2, 2, 1])).toEqual([2, 2]);
  });
  it('three tabs opened one after the other cover 8 layers with a replica', () => {
    const cov = new Array<number>(8).fill(0);
    const add = (r: [number, number]) => {
      for (let l = r[0]; l <= r[1]; l++) cov[l]!++;
      return r;
    };
    expect(add(host(5).proposeRange(model, cov))).toEqual([0, 3]);
    expect(add(host(5).proposeRange(model, cov))).toEqual([4, 7]);
    expect(add(host(5).proposeRange(model, cov))).toEqual([0, 3]);
  });
  it('a budget smaller than one shard → capacity_exceeded', () => {
    expect(() => host(1).proposeRange(model, [])).toThrow(
      expect.objectContaining({ code: 'capacity_exceeded' }),
    );
  });
});

describe('shared planner vectors (conformance/vectors/distributed_inference/planner.json)', () => {
  it('the engine planner and the X09 suite planner both reproduce every vector', async () => {
    const { vectors } = (await import('../../conformance/vectors/distributed_inference/planner.json', {
      with: { type: 'json' },
    })) as unknown as {
      vectors: {
        name: string;
        total_layers: number;
        candidates: [string, string, number, number, string, number, number][];
        expected: string[] | { reason: string; first_uncovered_layer: number };
      }[];
    };
    expect(vectors.length).toBeGreaterThanOrEqual(9);
    for (const v of vectors) {
      const cs = v.candidates.map(([shard_id, host, lo, hi, path, q, p]) =>
        c(lo, hi, host, { shard_id, path: path as PlanCandidate['path'], queue_depth: q, p95_latency_ms: p }),
      );
      const r = planCover(cs, v.total_layers);
      expect(
        r.ok ? r.shards.map(keyOf) : { reason: r.reason, first_uncovered_layer: r.first_uncovered_layer },
      ).toEqual(v.expected);
    }
    const { section } = await import('../../conformance/suites/experimental/distributed_inference.js');
    const out = await section.cases.find((x) => x.id === 'M26-PLAN-01')!.run({} as never);
    expect(out).toEqual({ status: 'pass' });
  });
});
