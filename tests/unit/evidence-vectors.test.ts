import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import vectors from '../../conformance/vectors/evidence/claim_ids.json' with { type: 'json' };
import { canonicalString } from '../../engine/core/canonical.js';
import { HnError } from '../../engine/core/errors.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import {
  buildClaim,
  claimPreimage,
  normaliseDraft,
  verifyAttestation,
  verifyClaimRecord,
  verifyDispute,
  type ClaimRecord,
} from '../../engine/evidence/claim.js';
import type { NodeID } from '../../engine/core/types.js';

interface Vec {
  name: string;
  input: { draft: Record<string, unknown>; asserted_by: string; asserted_at: string };
  expect: { result: string; preimage_jcs?: string; claim_id?: string; code?: string };
}
const cases = (vectors as { cases: Vec[] }).cases;

describe('conformance/vectors/evidence/claim_ids.json (derived independently in Python)', () => {
  it('holds at least five ok drafts', () => {
    expect(cases.filter((c) => c.expect.result === 'ok').length).toBeGreaterThanOrEqual(5);
  });
  for (const v of cases)
    it(v.name, () => {
      const { draft, asserted_by, asserted_at } = v.input;
      if (v.expect.result === 'error') {
        expect(() => normaliseDraft(draft, asserted_at)).toThrow(
          expect.objectContaining({ code: v.expect.code }),
        );
        return;
      }
      const u = buildClaim(normaliseDraft(draft, asserted_at), asserted_by as NodeID, asserted_at);
      expect(canonicalString(claimPreimage(u))).toBe(v.expect.preimage_jcs);
      expect(u.claim_id).toBe(v.expect.claim_id);
    });
});

// ---------------------------------------------------------------- properties
const kp = keyPairFromSeed(new Uint8Array(32).fill(5));
const AT = '2026-03-01T12:00:00Z';
const word = fc.stringMatching(/^[A-Za-z0-9äöüé][A-Za-z0-9 äöüé.,-]{0,20}$/);
const spaces = fc.constantFrom(' ', '  ', '\t', ' \n ', '\u00a0');
const source = fc.record(
  {
    source_id: fc.oneof(
      word.map((w) => `doc:${w.replace(/\s/g, '_')}`),
      fc.constantFrom('url:https://a.example/x', 'url:http://b.example', 'ebkh:urn:x'),
    ),
    excerpt: fc.option(word, { nil: undefined }),
    content_sha: fc.option(fc.constantFrom('sha256:' + 'a'.repeat(64), 'blake3:' + 'b'.repeat(64)), {
      nil: undefined,
    }),
  },
  { requiredKeys: ['source_id'] },
);
const draftArb = fc.record({
  subject: word,
  predicate: fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/),
  object: word,
  sources: fc.array(source, { maxLength: 6 }),
  confidence: fc.double({ min: 0, max: 1, noNaN: true }),
  modifiers: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), word, { maxKeys: 4 }),
});
const idOf = (d: unknown) => buildClaim(normaliseDraft(d, AT), kp.nodeId, AT).claim_id;

describe('properties (fast-check)', () => {
  it('normalisation is idempotent and the ID ignores source order and whitespace runs', () => {
    fc.assert(
      fc.property(draftArb, spaces, fc.nat(), (d, sp, rot) => {
        const n = normaliseDraft(d, AT);
        expect(normaliseDraft(n, AT)).toEqual(n);
        const id = idOf(d);
        expect(id).toMatch(/^[A-Z2-7]{51}[AQ]$/);
        const k = d.sources.length ? rot % d.sources.length : 0;
        const rotated = [...d.sources.slice(k), ...d.sources.slice(0, k)].reverse();
        const spaced = {
          ...d,
          subject: sp + d.subject.replace(/ /g, sp) + sp,
          object: d.object + sp,
          sources: rotated,
        };
        expect(idOf(spaced)).toBe(id);
      }),
      { numRuns: 150 },
    );
  });
  it('any change of a preimage field changes the ID', () => {
    fc.assert(
      fc.property(draftArb, word, (d, w) => {
        fc.pre(normaliseDraft({ ...d, object: w }, AT).object !== normaliseDraft(d, AT).object);
        expect(idOf({ ...d, object: w })).not.toBe(idOf(d));
      }),
      { numRuns: 100 },
    );
  });
  it('signed records round-trip; any single mutation is refused with an HnError, never a crash', () => {
    const rec = (d: unknown) =>
      signObject(kp, buildClaim(normaliseDraft(d, AT), kp.nodeId, AT) as never) as unknown as ClaimRecord;
    const mutate = fc.oneof(
      fc.constant((r: Record<string, unknown>) => (r.object = `${String(r.object)}x`)),
      fc.constant((r: Record<string, unknown>) => (r.confidence = 2)),
      fc.constant((r: Record<string, unknown>) => (r.schema_version = 2)),
      fc.constant((r: Record<string, unknown>) => delete r.sources),
      fc.constant((r: Record<string, unknown>) => (r.sources = 'x')),
      fc.constant((r: Record<string, unknown>) => (r.modifiers = [])),
      fc.constant((r: Record<string, unknown>) => (r.extra = 1)),
      fc.constant((r: Record<string, unknown>) => {
        const sig = String(r.signature);
        r.signature = sig.slice(0, 12) + (sig[12] === 'A' ? 'B' : 'A') + sig.slice(13);
      }),
      fc.constant((r: Record<string, unknown>) => (r.asserted_at = '2026-03-01T12:00:00.5Z')),
      fc.constant((r: Record<string, unknown>) => (r.ttl_days = 1e20)),
      fc.constant((r: Record<string, unknown>) => (r.derived_from = [null])),
    );
    fc.assert(
      fc.property(draftArb, mutate, (d, m) => {
        const r = rec(d);
        expect(verifyClaimRecord(structuredClone(r))).toEqual(r);
        const x = structuredClone(r) as unknown as Record<string, unknown>;
        m(x);
        let err: unknown;
        try {
          verifyClaimRecord(x);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(HnError);
        expect(['bad_request', 'claim_signature_invalid']).toContain((err as HnError).code);
      }),
      { numRuns: 60 },
    );
  });
  it('random values never crash the record verifiers (only HnError)', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        for (const f of [verifyClaimRecord, verifyAttestation, verifyDispute]) {
          try {
            f(v);
          } catch (e) {
            expect(e).toBeInstanceOf(HnError);
          }
        }
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          verifyClaimRecord(
            JSON.parse(
              JSON.stringify({
                ...(typeof v === 'object' && v && !Array.isArray(v) ? v : {}),
                schema_version: 1,
              }),
            ),
          );
        } catch (e) {
          expect(e).toBeInstanceOf(HnError);
        }
      }),
      { numRuns: 200 },
    );
  });
});
