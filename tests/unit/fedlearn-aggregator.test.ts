/** M28 aggregation, privacy and init (digest §7, §10.4–10.6): hand-derived expectations, properties, robustness, FFA-LoRA. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  aggregate,
  combine,
  encodeAdapter,
  loraWeightDelta,
  type AggSubmission,
} from '../../engine/fedlearn/aggregator.js';
import { l2norm, type Tensors } from '../../engine/fedlearn/delta.js';
import { addNoise, clip, epsilon, privatize, seededNormal } from '../../engine/fedlearn/privacy.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { HnError } from '../../engine/core/errors.js';
import { FEDLEARN_CLIP_NORM_DEFAULT } from '../../engine/core/constants.js';
import { BASE_SHA, TINY_CARD, randomDelta } from './fedlearn-helpers.js';

const t2 = (a: number[], b: number[]): Tensors =>
  new Map([
    ['layers.0.m.lora_A', { shape: [1, a.length], data: Float32Array.from(a) }],
    ['layers.0.m.lora_B', { shape: [b.length, 1], data: Float32Array.from(b) }],
  ]);
const INIT = t2([0.5, -0.5], [0, 0]);
const sub = (p: string, n: number, a: number[], b: number[]): AggSubmission => ({
  participant: p,
  num_samples: n,
  tensors: t2(a, b),
});
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as HnError).code;
  }
};

describe('M28 aggregation', () => {
  it('§10.4 FedAvg matches a hand calculation (weights 1,2,3) to 1e-6; A = A₀ + mean ΔA, B = mean ΔB', () => {
    const S = [
      sub('n3', 3, [4, 0], [0.9, 0]),
      sub('n1', 1, [1, 0], [0.3, 0]),
      sub('n2', 2, [2, 0], [0.6, -3]),
    ];
    const out = aggregate(S, { method: 'fedavg', min_participants: 3, init: INIT });
    // ΔA₀ = (1·1 + 2·2 + 3·4)/6 = 17/6; A₀ = 0.5 → 0.5 + 17/6; ΔB₀ = (0.3 + 1.2 + 2.7)/6 = 0.7; ΔB₁ = −6/6 = −1
    expect(out.get('layers.0.m.lora_A')!.data[0]).toBeCloseTo(0.5 + 17 / 6, 6);
    expect(out.get('layers.0.m.lora_A')!.data[1]).toBe(-0.5);
    expect(out.get('layers.0.m.lora_B')!.data[0]).toBeCloseTo(0.7, 6);
    expect(out.get('layers.0.m.lora_B')!.data[1]).toBe(-1);
    // median and trimmed mean by hand: values {1,2,4} → median 2; β=0.34 drops one each end → 2
    expect(
      aggregate(S, { method: 'median', min_participants: 3, init: INIT }).get('layers.0.m.lora_A')!.data[0],
    ).toBe(2.5);
    expect(combine([1, 2, 4, 10], [1, 1, 1, 1], 'median')).toBe(3);
    expect(combine([1, 2, 4, 10, -7], [1, 1, 1, 1, 1], 'trimmed_mean', 0.2)).toBeCloseTo(7 / 3, 12);
  });

  it('§10.4 fedavg([d,d,d]) == d bit-exact; finite in → finite out (property)', () => {
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 1, maxLength: 16, noNaN: true, noDefaultInfinity: true }),
        fc.array(fc.integer({ min: 1, max: 256_000 }), { minLength: 3, maxLength: 8 }),
        fc.constantFrom('fedavg', 'median', 'trimmed_mean'),
        (d, ns, method) => {
          const n = d.length;
          const init = new Map([['x.lora_B', { shape: [n, 1], data: new Float32Array(n) }]]);
          const S = ns.map((k, i) => ({
            participant: `p${i}`,
            num_samples: k,
            tensors: new Map([['x.lora_B', { shape: [n, 1], data: d }]]),
          }));
          const out = aggregate(S, { method, min_participants: 3, init }).get('x.lora_B')!.data;
          for (let i = 0; i < n; i++) expect(out[i] === d[i]).toBe(true); // == (−0 == 0), bit-exact otherwise
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.float32Array({ minLength: 4, maxLength: 4, noNaN: true, noDefaultInfinity: true }), {
          minLength: 3,
          maxLength: 6,
        }),
        fc.constantFrom('fedavg', 'median', 'trimmed_mean'),
        (ds, method) => {
          const init = new Map([['x.lora_B', { shape: [4, 1], data: new Float32Array(4) }]]);
          const S = ds.map((d, i) => ({
            participant: `p${i}`,
            num_samples: i + 1,
            tensors: new Map([['x.lora_B', { shape: [4, 1], data: d }]]),
          }));
          for (const v of aggregate(S, { method, min_participants: 3, init }).get('x.lora_B')!.data)
            expect(Number.isFinite(v)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('§10.6 one submission ×1e6: median and trimmed_mean(0.2) stay in the honest range, FedAvg does not', () => {
    const names = ['q_proj'];
    const S = [0, 1, 2, 3, 4].map((i) => ({
      participant: `n${i}`,
      num_samples: 10,
      tensors: randomDelta(100 + i, names),
    }));
    for (const t of S[4]!.tensors.values())
      for (let j = 0; j < t.data.length; j++) t.data[j] = t.data[j]! * 1e6;
    const zeroInit = new Map(
      [...S[0]!.tensors].map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }]),
    );
    const honest = S.slice(0, 4);
    const inRange = (out: Tensors) => {
      for (const [k, t] of out)
        for (let j = 0; j < t.data.length; j++) {
          const hv = honest.map((s) => s.tensors.get(k)!.data[j]!);
          if (t.data[j]! < Math.min(...hv) - 1e-9 || t.data[j]! > Math.max(...hv) + 1e-9) return false;
        }
      return true;
    };
    expect(inRange(aggregate(S, { method: 'median', min_participants: 3, init: zeroInit }))).toBe(true);
    expect(
      inRange(
        aggregate(S, { method: 'trimmed_mean', trim_fraction: 0.2, min_participants: 3, init: zeroInit }),
      ),
    ).toBe(true);
    expect(inRange(aggregate(S, { method: 'fedavg', min_participants: 3, init: zeroInit }))).toBe(false);
  });

  it('§10.9 fewer than min → fedlearn_min_participants_unmet; overflow → fedlearn_aggregation_failed', () => {
    const S = [sub('a', 1, [1, 1], [1, 1]), sub('b', 1, [1, 1], [1, 1])];
    expect(codeOf(() => aggregate(S, { method: 'fedavg', min_participants: 3, init: INIT }))).toBe(
      'fedlearn_min_participants_unmet',
    );
    const big = [0, 1, 2].map((i) => sub(`p${i}`, 1, [3e38, 0], [0, 0]));
    const init = t2([3e38, 0], [0, 0]);
    expect(codeOf(() => aggregate(big, { method: 'fedavg', min_participants: 3, init }))).toBe(
      'fedlearn_aggregation_failed',
    );
  });

  it('FFA-LoRA: A frozen, only B averaged — the merged update equals the mean of the updates exactly; plain A,B FedAvg does not', () => {
    const targets = ['q_proj'];
    const init = loraInit(TINY_CARD, targets, 4, 7);
    const parts = [1, 2, 3].map((s) => ({
      participant: `p${s}`,
      num_samples: 10 * s,
      tensors: randomDelta(s, targets, 4, 0.05, true),
    }));
    const out = aggregate(parts, { method: 'fedavg', min_participants: 3, init, freeze_a: true });
    const A0 = init.get('layers.0.q_proj.lora_A')!.data;
    expect(Buffer.from(out.get('layers.0.q_proj.lora_A')!.data.buffer)).toEqual(Buffer.from(A0.buffer));
    const W = 60;
    const meanUpd = new Float64Array(48 * 48);
    for (const p of parts) {
      const u = loraWeightDelta(A0, p.tensors.get('layers.0.q_proj.lora_B')!.data, 4, 48, 48, 8);
      for (let i = 0; i < u.length; i++) meanUpd[i]! += (p.num_samples / W) * u[i]!;
    }
    const merged = loraWeightDelta(A0, out.get('layers.0.q_proj.lora_B')!.data, 4, 48, 48, 8);
    let err = 0;
    for (let i = 0; i < merged.length; i++) err = Math.max(err, Math.abs(merged[i]! - meanUpd[i]!));
    expect(err).toBeLessThan(1e-6);
    // plain FedAvg of A and B: B·A of the means ≠ mean of B·A
    const plain = [1, 2, 3].map((s) => ({
      participant: `p${s}`,
      num_samples: 10 * s,
      tensors: randomDelta(s + 10, targets, 4, 0.05),
    }));
    const z = new Map(
      [...init].map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }]),
    );
    const o2 = aggregate(plain, { method: 'fedavg', min_participants: 3, init: z });
    const mean2 = new Float64Array(48 * 48);
    for (const p of plain) {
      const u = loraWeightDelta(
        p.tensors.get('layers.0.q_proj.lora_A')!.data,
        p.tensors.get('layers.0.q_proj.lora_B')!.data,
        4,
        48,
        48,
        8,
      );
      for (let i = 0; i < u.length; i++) mean2[i]! += (p.num_samples / W) * u[i]!;
    }
    const m2 = loraWeightDelta(
      o2.get('layers.0.q_proj.lora_A')!.data,
      o2.get('layers.0.q_proj.lora_B')!.data,
      4,
      48,
      48,
      8,
    );
    let err2 = 0;
    for (let i = 0; i < m2.length; i++) err2 = Math.max(err2, Math.abs(m2[i]! - mean2[i]!));
    expect(err2).toBeGreaterThan(1e-4);
  });

  it('adapter SHA is reproducible (no timestamp, no aggregator id) and input order does not matter', () => {
    const S = [1, 2, 3].map((s) => ({ participant: `p${s}`, num_samples: s, tensors: randomDelta(s) }));
    const init = loraInit(TINY_CARD, ['q_proj', 'v_proj'], 4, 1);
    const meta = {
      card: TINY_CARD,
      base_model_sha: BASE_SHA,
      rank: 4,
      alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
      round_id: 'R',
      manifest_sha: 'M',
      method: 'fedavg',
    };
    const a = encodeAdapter(aggregate(S, { method: 'fedavg', min_participants: 3, init }), meta);
    const b = encodeAdapter(
      aggregate([...S].reverse(), { method: 'fedavg', min_participants: 3, init }),
      meta,
    );
    expect(a.sha).toBe(b.sha);
    expect(a.sha).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('M28 privacy and init', () => {
  it('§10.5 clipping bounds the norm by C(1+1e-6); σ=0 is byte-identical; seeded noise is reproducible with std σC', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.double({ min: 1e-3, max: 100, noNaN: true }),
        (seed, C) => {
          const d = randomDelta(seed, ['q_proj'], 4, 1);
          expect(l2norm(clip(d, C))).toBeLessThanOrEqual(C * (1 + 1e-6));
        },
      ),
      { numRuns: 100 },
    );
    const d = randomDelta(9, ['q_proj'], 4, 0.001);
    const same = addNoise(d, 0, 1);
    for (const [k, t] of d) expect(Buffer.from(same.get(k)!.data.buffer)).toEqual(Buffer.from(t.data.buffer));
    expect(l2norm(clip(d, FEDLEARN_CLIP_NORM_DEFAULT))).toBe(l2norm(d)); // small Δ is not scaled
    const n1 = privatize(d, 1, 0.5, seededNormal(42));
    const n2 = privatize(d, 1, 0.5, seededNormal(42));
    expect(n1).toEqual(n2);
    let s = 0;
    let c = 0;
    for (const [k, t] of n1)
      for (let j = 0; j < t.data.length; j++) {
        const e = t.data[j]! - d.get(k)!.data[j]!;
        s += e * e;
        c++;
      }
    expect(Math.sqrt(s / c)).toBeGreaterThan(0.45);
    expect(Math.sqrt(s / c)).toBeLessThan(0.55);
    // the CSPRNG default differs between calls
    expect(addNoise(d, 0.5, 1)).not.toEqual(addNoise(d, 0.5, 1));
  });

  it('ε = 2√(2 ln(1.25/δ))/σ at δ=1e-5; σ=0 → no privacy (∞)', () => {
    expect(epsilon(1).epsilon).toBeCloseTo(2 * Math.sqrt(2 * Math.log(125000)), 12);
    expect(epsilon(1).epsilon).toBeCloseTo(9.6896, 3);
    expect(epsilon(0).epsilon).toBe(Infinity);
  });

  it('xoshiro128** matches an independent BigInt implementation; LoRA init is bounded, deterministic, B = 0', () => {
    // independent reference: splitmix32 (golden gamma, murmur3 finalizer) → xoshiro128** with BigInt arithmetic
    const M = 0xffffffffn;
    let st = 12345n;
    const s: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      st = (st + 0x9e3779b9n) & M;
      let z = st;
      z = ((z ^ (z >> 16n)) * 0x85ebca6bn) & M;
      z = ((z ^ (z >> 13n)) * 0xc2b2ae35n) & M;
      s.push((z ^ (z >> 16n)) & M);
    }
    const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M;
    const ref: number[] = [];
    for (let i = 0; i < 8; i++) {
      ref.push(Number((rotl((s[1]! * 5n) & M, 7n) * 9n) & M));
      const t = (s[1]! << 9n) & M;
      s[2] = s[2]! ^ s[0]!;
      s[3] = s[3]! ^ s[1]!;
      s[1] = s[1]! ^ s[2]!;
      s[0] = s[0]! ^ s[3]!;
      s[2] = s[2]! ^ t;
      s[3] = rotl(s[3]!, 11n);
    }
    const r = xoshiro128ss(12345);
    expect(ref.map(() => r.u32())).toEqual(ref);
    const a = loraInit(TINY_CARD, ['q_proj', 'up_proj'], 4, 99);
    const b = loraInit(TINY_CARD, ['q_proj', 'up_proj'], 4, 99);
    expect(a).toEqual(b);
    expect(loraInit(TINY_CARD, ['q_proj', 'up_proj'], 4, 98)).not.toEqual(a);
    for (const [k, t] of a) {
      if (k.endsWith('lora_B')) expect(t.data.every((v) => v === 0)).toBe(true);
      else for (const v of t.data) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(48));
    }
  });
});
