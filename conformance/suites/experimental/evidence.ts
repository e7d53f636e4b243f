/**
 * experimental/evidence (M30), black-box over the capability bus. The ClaimID vectors
 * (vectors/evidence/claim_ids.json, derived independently in Python) drive the checks: the SUT
 * asserts each draft, and the suite recomputes the ID of the returned record with its own JCS,
 * SHA-256 and base32 and compares the normalised fields with the vector's preimage.
 * Self-contained: it needs only `call` on peer 0 and the suite's own crypto helpers.
 */
import { base32nopad } from '@scure/base';
import vectors from '../../vectors/evidence/claim_ids.json' with { type: 'json' };
import { jcs, sha256, utf8 } from '../../lib/crypto.js';
import {
  all,
  expectError,
  expectOk,
  fail,
  pass,
  type CaseCtx,
  type CaseDef,
  type SectionDef,
  flagOffCase,
} from '../../runner/case.js';

const P = 'experimental.evidence.';
const REF = 'M30 digest';
interface Vec {
  name: string;
  input: { draft: Record<string, unknown>; asserted_by: string; asserted_at: string };
  expect: { result: 'ok'; preimage_jcs: string; claim_id: string } | { result: 'error'; code: string };
}
const CASES = (vectors as { cases: Vec[] }).cases;

/** The suite's own ClaimID computation over a returned record (§3.3). */
function idOfRecord(r: Record<string, any>): string {
  const n = Math.round(r.confidence * 100000);
  const pre = {
    asserted_at: r.asserted_at,
    asserted_by: r.asserted_by,
    claim_type: r.claim_type,
    confidence_5dp: n === 100000 ? '1.00000' : `0.${String(n).padStart(5, '0')}`,
    derived_from: r.derived_from,
    modifiers: r.modifiers,
    object: r.object,
    predicate: r.predicate,
    schema_version: 1,
    sources: (r.sources as Record<string, unknown>[]).map((s) => ({
      accessed_at: s.accessed_at,
      content_sha: s.content_sha,
      source_id: s.source_id,
    })),
    subject: r.subject,
    supersedes: r.supersedes,
    ttl_days: r.ttl_days,
  };
  return base32nopad.encode(sha256(utf8(jcs(pre))));
}

/** The fields of a vector preimage that do not depend on who asserts when. */
function portable(pre: Record<string, any>, at: string) {
  const { asserted_at: _a, asserted_by: _b, ...rest } = pre;
  rest.sources = (rest.sources as Record<string, unknown>[]).map((s) => ({
    ...s,
    accessed_at: s.accessed_at === at ? '<asserted_at>' : s.accessed_at,
  }));
  return rest;
}

const vectorCase = (v: Vec): CaseDef => ({
  id: `evidence.vector.${v.name}`,
  spec_ref: `${REF} §3.2, §3.3; vectors/evidence/claim_ids.json`,
  title: `ClaimID vector ${v.name}`,
  async run(ctx: CaseCtx) {
    const repro = { capability: `${P}claim.assert`, draft: v.input.draft };
    const r = await ctx.call(`${P}claim.assert`, v.input.draft);
    if (v.expect.result === 'error') return expectError(r, v.expect.code, repro) ?? pass();
    const refs = [
      ...((v.input.draft.derived_from as string[]) ?? []),
      ...((v.input.draft.supersedes as string[]) ?? []),
    ];
    if (v.input.draft.predicate === 'retracted') refs.push(v.input.draft.object as string);
    // drafts naming claims the SUT does not hold must be refused with claim_not_found
    if (refs.length) return expectError(r, 'claim_not_found', repro) ?? pass();
    const ok = expectOk(r, repro);
    if ('bad' in ok) return ok.bad;
    const g = expectOk(await ctx.call(`${P}claim.get`, { claim_id: ok.out.claim_id }), repro);
    if ('bad' in g) return g.bad;
    const rec = g.out.record as Record<string, any>;
    const pre = JSON.parse(v.expect.preimage_jcs) as Record<string, any>;
    return all(
      () =>
        rec.claim_id === ok.out.claim_id
          ? null
          : fail(ok.out.claim_id, rec.claim_id, 'get returns the asserted id', repro),
      () => {
        const got = idOfRecord(rec);
        return got === rec.claim_id
          ? null
          : fail(got, rec.claim_id, 'ClaimID is base32(SHA-256(JCS(preimage)))', repro);
      },
      () => {
        const want = jcs(portable(pre, v.input.asserted_at));
        const mine = {
          ...pickPre(rec),
          schema_version: 1,
          asserted_at: rec.asserted_at,
          asserted_by: rec.asserted_by,
        };
        const got = jcs(portable(mine, rec.asserted_at));
        return want === got ? null : fail(want, got, 'normalised fields equal the vector preimage', repro);
      },
    );
  },
});

function pickPre(r: Record<string, any>) {
  const n = Math.round(r.confidence * 100000);
  return {
    claim_type: r.claim_type,
    confidence_5dp: n === 100000 ? '1.00000' : `0.${String(n).padStart(5, '0')}`,
    derived_from: r.derived_from,
    modifiers: r.modifiers,
    object: r.object,
    predicate: r.predicate,
    sources: (r.sources as Record<string, unknown>[]).map((s) => ({
      accessed_at: s.accessed_at,
      content_sha: s.content_sha,
      source_id: s.source_id,
    })),
    subject: r.subject,
    supersedes: r.supersedes,
    ttl_days: r.ttl_days,
  };
}

const errCase = (
  id: string,
  ref: string,
  title: string,
  cap: string,
  input: unknown,
  code: string,
): CaseDef => ({
  id: `evidence.${id}`,
  spec_ref: `${REF} ${ref}`,
  title,
  async run(ctx) {
    return (
      expectError(await ctx.call(`${P}${cap}`, input), code, { capability: `${P}${cap}`, input }) ?? pass()
    );
  },
});

const ZERO_ID = 'A'.repeat(52);
const CAPS = [
  'claim.assert',
  'claim.dispute',
  'claim.attest',
  'claim.get',
  'claim.query',
  'provenance.trace',
  'subject.summary',
  'ebkh.sync',
].map((c) => `${P}${c}`);

export const section: SectionDef = {
  name: 'experimental/evidence',
  required: false,
  module: 'evidence',
  probe: { capability: `${P}claim.get`, input: { claim_id: ZERO_ID } },
  cases: [
    ...CASES.map(vectorCase),
    errCase(
      'get.unknown',
      '§2',
      'get of an unknown ClaimID → claim_not_found',
      'claim.get',
      { claim_id: ZERO_ID },
      'claim_not_found',
    ),
    errCase(
      'get.non_canonical_id',
      '§3.1',
      'a lower-case ClaimID → bad_request',
      'claim.get',
      { claim_id: ZERO_ID.toLowerCase() },
      'bad_request',
    ),
    errCase(
      'query.no_triple',
      '§5',
      'a query with no triple field → bad_request',
      'claim.query',
      {},
      'bad_request',
    ),
    errCase(
      'trace.negative_depth',
      '§5',
      'max_depth < 0 → bad_request',
      'provenance.trace',
      { claim_id: ZERO_ID, max_depth: -1 },
      'bad_request',
    ),
    {
      id: 'evidence.trace.depth_clamped',
      spec_ref: `${REF} §4.5, §7.7`,
      title: 'max_depth 20 is clamped to EVIDENCE_MAX_PROVENANCE_DEPTH (8)',
      async run(ctx) {
        const draft = { subject: `x09 ${ctx.caseId}`, predicate: 'conformance_probe', object: 'depth' };
        const a = expectOk(await ctx.call(`${P}claim.assert`, draft), { draft });
        if ('bad' in a) return a.bad;
        const t = expectOk(
          await ctx.call(`${P}provenance.trace`, { claim_id: a.out.claim_id, max_depth: 20 }),
          {},
        );
        if ('bad' in t) return t.bad;
        return t.out.max_depth_applied === 8
          ? pass()
          : fail('8', t.out.max_depth_applied, 'max_depth_applied', {});
      },
    },
    {
      id: 'evidence.attest.self',
      spec_ref: `${REF} §2`,
      title: 'attesting your own claim → bad_request; assert of the same draft deduplicates',
      async run(ctx) {
        const draft = { subject: `x09 ${ctx.caseId}`, predicate: 'conformance_probe', object: 'self' };
        const a = expectOk(await ctx.call(`${P}claim.assert`, draft), { draft });
        if ('bad' in a) return a.bad;
        const input = { claim_id: a.out.claim_id, role: 'expert', rationale: 'mine' };
        return expectError(await ctx.call(`${P}claim.attest`, input), 'bad_request', { input }) ?? pass();
      },
    },
    flagOffCase({
      id: 'evidence.flag_off',
      spec_ref: `${REF} §7.15; seed §2.5`,
      title: 'module off → every evidence capability answers experimental_disabled',
      module: 'evidence',
      capabilities: CAPS,
    }),
    errCase(
      'sync.no_endpoint',
      '§4.8',
      'ebkh.sync with no endpoint configured → ebkh_unavailable',
      'ebkh.sync',
      { direction: 'pull' },
      'ebkh_unavailable',
    ),
  ],
};
