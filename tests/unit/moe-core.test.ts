/** M27 pure parts: topic normalisation, hashed embedder, availability windows, scorers, feedback caps. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cosine, fnv1a32, HashedEmbedder, normalizeTopic } from '../../engine/moe/embedder.js';
import {
  availableAt,
  buildDescriptor,
  checkAvailability,
  ExpertRegistry,
} from '../../engine/moe/expert_registry.js';
import { auc, features, learnedScore, ruleScore, tagScore, trainLogistic } from '../../engine/moe/scorer.js';
import { FeedbackSet, labelOf, type Feedback } from '../../engine/moe/feedback.js';
import { wellFormedFeedback } from '../../engine/moe/router.js';

describe('topic normalisation', () => {
  it('sankt_martins, Sankt Martins and sankt-martins are one topic', () => {
    expect(normalizeTopic('sankt_martins')).toBe('sankt-martins');
    expect(normalizeTopic('Sankt Martins')).toBe('sankt-martins');
    expect(normalizeTopic('  sankt--martins ')).toBe('sankt-martins');
    expect(normalizeTopic('Ｋöln!')).toBe('köln'); // NFKC folds the full-width K; punctuation dropped
  });
  it('properties: idempotent, only letters/digits/-, no double dash', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const n = normalizeTopic(s);
        expect(normalizeTopic(n)).toBe(n);
        expect(/^[\p{L}\p{N}-]*$/u.test(n)).toBe(true);
        expect(n.includes('--')).toBe(false);
        expect(n).toBe(n.toLowerCase());
      }),
    );
  });
});

describe('hashed embedder', () => {
  const e = new HashedEmbedder();
  it('FNV-1a 32 matches the published test values', () => {
    // independent source: the FNV reference test suite (isthe.com/chongo/src/fnv/test_fnv.c)
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });
  it('is deterministic, unit length, and case/accent-insensitive', async () => {
    const [a, b, c] = await e.embed(['Sankt Martin Umzug', 'sankt martin umzug', 'Sänkt Martin Umzug']);
    expect([...a!]).toEqual([...b!]);
    expect(cosine(a!, a!)).toBeCloseTo(1, 12);
    expect(cosine(a!, c!)).toBeCloseTo(1, 12);
    const [d] = await e.embed(['quantum chromodynamics']);
    expect(cosine(a!, d!)).toBeLessThan(e.threshold);
  });
  it('property: every non-empty text embeds to unit length', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 60 }).filter((s) => /[\p{L}\p{N}]/u.test(s)),
        (s) => {
          const v = e.embedOne(s);
          expect(Math.abs(cosine(v, v) - 1)).toBeLessThan(1e-9);
        },
      ),
    );
  });
});

describe('availability windows', () => {
  // 2026-12-07 is a Monday
  const at = (iso: string) => Date.parse(iso);
  it('evaluates in the expert zone, across midnight', () => {
    const w = checkAvailability({
      tz: 'Europe/Berlin',
      slots: [{ days: [1], start: '22:00', end: '02:00' }],
    });
    expect(availableAt(w, at('2026-12-07T20:59:00Z'))).toBe(false); // 21:59 Berlin
    expect(availableAt(w, at('2026-12-07T21:00:00Z'))).toBe(true); // 22:00 Mon
    expect(availableAt(w, at('2026-12-08T00:30:00Z'))).toBe(true); // 01:30 Tue (crossed midnight)
    expect(availableAt(w, at('2026-12-08T01:00:00Z'))).toBe(false); // 02:00 Tue
    expect(availableAt(w, at('2026-12-08T21:30:00Z'))).toBe(false); // Tue 22:30 is not a slot day
  });
  it('a foreign zone: Tokyo morning is UTC night', () => {
    const w = checkAvailability({ tz: 'Asia/Tokyo', slots: [{ days: [2], start: '08:00', end: '10:00' }] });
    expect(availableAt(w, at('2026-12-07T23:30:00Z'))).toBe(true); // Tue 08:30 JST
    expect(availableAt(w, at('2026-12-08T08:30:00Z'))).toBe(false);
  });
  it('bad windows are bad_request', () => {
    for (const bad of [
      { weekdays_19_21_local: true },
      { tz: 'Mars/Olympus', always: true },
      { tz: 'UTC', slots: [{ days: [8], start: '10:00', end: '11:00' }] },
      { tz: 'UTC', slots: [{ days: [1], start: '25:00', end: '11:00' }] },
      { tz: 'UTC', slots: [] },
      { tz: 'UTC', slots: Array.from({ length: 15 }, () => ({ days: [1], start: '10:00', end: '11:00' })) },
    ])
      expect(() => checkAvailability(bad)).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });
});

describe('scorers', () => {
  it('rule-based weights (digest §5), clamped with bias', () => {
    const p = { tag: 1, sim: 0.5, rel: 0.5, rec: 1 };
    expect(ruleScore(p, true, 0)).toBeCloseTo(0.45 + 0.15 + 0.075 + 0.1, 12);
    expect(ruleScore(p, false, 0)).toBeCloseTo(0.375 + 0.075 + 0.1, 12);
    expect(ruleScore(p, true, 5)).toBe(1);
    expect(ruleScore(p, true, -5)).toBeCloseTo(0.275, 12);
    expect(ruleScore({ tag: 0, sim: 0, rel: 0, rec: 0 }, true, -1)).toBe(0);
    expect(tagScore(['a', 'b'], ['b', 'c'])).toBe(0.5);
    expect(tagScore([], ['b'])).toBe(0);
  });
  it('learned scorer: deterministic, learns the separating feature, beats rule AUC on a synthetic set', () => {
    const samples = Array.from({ length: 240 }, (_, i) => {
      const good = i % 3 === 0;
      const p = { tag: (i % 5) / 4, sim: ((i * 7) % 10) / 10, rel: 0.5, rec: good ? 1 : 0.2 };
      return {
        feedback_id: `f${String(i).padStart(4, '0')}`,
        features: features(p, good ? 'model' : 'human', 0),
        label: (good ? 1 : 0) as 0 | 1,
      };
    });
    const m1 = trainLogistic(samples, 0);
    const m2 = trainLogistic([...samples].reverse(), 0);
    expect(m2.weights).toEqual(m1.weights); // bit-identical whatever the input order
    expect(m2.bias).toBe(m1.bias);
    const learned = samples.map((s) => learnedScore(m1, s.features, 0));
    const labels = samples.map((s) => s.label);
    const rule = samples.map((s) =>
      ruleScore(
        { tag: s.features[0]!, sim: s.features[1]!, rel: s.features[2]!, rec: s.features[3]! },
        true,
        0,
      ),
    );
    expect(auc(learned, labels)).toBeGreaterThan(auc(rule, labels));
  });
});

describe('feedback labels and poisoning caps', () => {
  const fb = (n: number, over: Partial<Feedback> = {}): Feedback => ({
    feedback_id: `F${n}`,
    route_id: `R${n}`,
    expert_id: 'model:m@ed25519:host',
    kind: 'model',
    tags: [],
    helpful: true,
    user_rating: null,
    completion_time_seconds: null,
    handed_off_again: false,
    features: new Array(10).fill(0),
    feature_set: 'moe-f1',
    recorded_by: 'ed25519:rec' as never,
    recorded_at: 1000 + n,
    ...over,
  });
  it('labels', () => {
    expect(labelOf({ helpful: null, user_rating: 4, handed_off_again: false })).toBe(1);
    expect(labelOf({ helpful: null, user_rating: 2, handed_off_again: false })).toBe(0);
    expect(labelOf({ helpful: null, user_rating: 3, handed_off_again: true })).toBe(0);
    expect(labelOf({ helpful: null, user_rating: 3, handed_off_again: false })).toBe(null);
  });
  it('caps: below member, self-feedback, 3 per pair per day, 20 per recorder per day', () => {
    const set = new FeedbackSet((n) => (n === ('ed25519:stranger' as never) ? null : 'member'));
    expect(set.add(fb(0, { recorded_by: 'ed25519:stranger' as never }))).toBe(false);
    expect(set.add(fb(1, { recorded_by: 'ed25519:host' as never }))).toBe(false);
    expect([1, 2, 3, 4].map((n) => set.add(fb(n)))).toEqual([true, true, true, false]);
    const many = Array.from({ length: 20 }, (_, i) =>
      set.add(fb(10 + i, { expert_id: `model:m${i}@ed25519:h${i}` })),
    );
    expect(many.filter(Boolean)).toHaveLength(17); // 3 already counted today
  });
});

describe('registry view', () => {
  it('ignores forged registrations; latest wins; tombstones hold', () => {
    const reg = new ExpertRegistry(
      (n) => (n === ('ed25519:anchor' as never) ? 'anchor' : 'member'),
      () => false,
    );
    const d = {
      expert_id: 'human:ed25519:bob',
      kind: 'human',
      topics: ['cooking'],
      capabilities: [],
      availability: { tz: 'UTC', always: true, slots: [] },
      consent_to_route: true,
      score_bias: 0,
      host: 'ed25519:bob',
      registered_at: 10,
      expires_at: null,
    };
    const ev = (id: string, author: string, data: object, type = 'moe.expert.registered') => ({
      event_id: id,
      author: author as never,
      event_type: type,
      data: data as Record<string, unknown>,
    });
    expect(reg.apply(ev('e1', 'ed25519:mallory', { ...d, host: 'ed25519:mallory' }))).toBe(false); // not the owner
    expect(reg.apply(ev('e1', 'ed25519:anchor', d))).toBe(false); // anchor without a grant
    expect(reg.apply(ev('e2', 'ed25519:bob', { ...d, score_bias: 3 }))).toBe(false); // member bias > 1
    expect(reg.apply(ev('e3', 'ed25519:bob', d))).toBe(true);
    expect(reg.apply(ev('e4', 'ed25519:bob', { ...d, registered_at: 5, topics: ['old'] }))).toBe(false);
    expect(reg.get('human:ed25519:bob', 20)?.topics).toEqual(['cooking']);
    expect(
      reg.apply(
        ev(
          'e5',
          'ed25519:bob',
          { expert_id: d.expert_id, unregistered_at: 20, reason: 'withdrawn' },
          'moe.expert.unregistered',
        ),
      ),
    ).toBe(true);
    expect(reg.apply(ev('e3', 'ed25519:bob', d))).toBe(false); // replay of the older registration
    expect(reg.get('human:ed25519:bob', 30)).toBeNull();
  });
});

describe('fuzz: peer-supplied registry events and register requests', () => {
  const reg = () =>
    new ExpertRegistry(
      () => 'member',
      () => false,
    );
  it('registry.apply never throws on arbitrary event data and accepts nothing forged', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.constantFrom('moe.expert.registered', 'moe.expert.unregistered'),
        (data, type) => {
          const r = reg();
          const ok = r.apply({
            event_id: 'e',
            author: 'ed25519:someone' as never,
            event_type: type,
            data: data as Record<string, unknown>,
          });
          expect(typeof ok).toBe('boolean');
          if (type === 'moe.expert.registered') expect(ok).toBe(false); // random data never owns a valid id
        },
      ),
      { numRuns: 300 },
    );
  });
  it('buildDescriptor answers bad_request / unauthorized (never another error) on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.record({
          kind: fc.constantFrom('human', 'model', 'service', 'external', 'robot'),
          topics: fc.array(fc.string({ maxLength: 70 }), { maxLength: 34 }),
          score_bias: fc.oneof(fc.double(), fc.integer({ min: -10, max: 10 })),
          availability: fc.jsonValue(),
          consent_to_route: fc.jsonValue(),
          model_id: fc.string({ maxLength: 20 }),
        }),
        (input) => {
          try {
            const d = buildDescriptor(input, {
              self: 'ed25519:me' as never,
              callerIsAnchor: false,
              now: 0,
              verify: () => false,
            });
            expect(d.topics.length).toBeGreaterThan(0);
            expect(Math.abs(d.score_bias)).toBeLessThanOrEqual(1);
          } catch (e) {
            expect(['bad_request', 'unauthorized']).toContain((e as { code: string }).code);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('fuzz: peer feedback records', () => {
  it('malformed records are refused before they reach the caps or the trainer', () => {
    const set = new FeedbackSet(() => 'member');
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(
            'feedback_id',
            'expert_id',
            'recorded_at',
            'helpful',
            'user_rating',
            'handed_off_again',
            'features',
            'recorded_by',
          ),
          fc.jsonValue(),
        ),
        (f) => {
          if (wellFormedFeedback(f as never)) set.add(f as never);
          expect(set.labeled().every((s) => s.features.length === 10)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
