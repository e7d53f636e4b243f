import { describe, expect, it } from 'vitest';
import {
  buildClaim,
  claimPreimage,
  confidence5dp,
  normaliseDraft,
  verifyClaimRecord,
  type ClaimRecord,
} from '../../engine/evidence/claim.js';
import { signObject, keyPairFromSeed } from '../../engine/identity/identity.js';
import { canonicalString } from '../../engine/core/canonical.js';
import { HnError } from '../../engine/core/errors.js';
import { actor, deliver, newWorld, T0 } from './evidence-helpers.js';

const AT = '2026-03-01T12:00:00Z';
const kp = keyPairFromSeed(new Uint8Array(32).fill(7));
const base = {
  subject: 'Well  No. 3',
  predicate: 'water_quality',
  object: 'safe to drink',
  sources: [
    { source_id: 'url:https://b.example/report' },
    { source_id: 'url:https://a.example/x', excerpt: 'tested 2026-02' },
  ],
};
const idOf = (d: unknown) => buildClaim(normaliseDraft(d, AT), kp.nodeId, AT).claim_id;
const signed = (d: unknown) =>
  signObject(kp, buildClaim(normaliseDraft(d, AT), kp.nodeId, AT) as never) as unknown as ClaimRecord;
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as HnError).code;
  }
  return 'ok';
};

describe('M30 §7.1 ClaimID', () => {
  it('is unchanged by source order and whitespace in subject or object', () => {
    const id = idOf(base);
    expect(id).toMatch(/^[A-Z2-7]{51}[AQ]$/);
    expect(idOf({ ...base, sources: [...base.sources].reverse() })).toBe(id);
    expect(idOf({ ...base, subject: '  Well No.\t3 ', object: 'safe\n to   drink' })).toBe(id);
    expect(idOf({ ...base, sources: [...base.sources, base.sources[0]] })).toBe(id); // exact duplicate dropped
    // an excerpt is not in the preimage
    expect(idOf({ ...base, sources: [base.sources[0], { ...base.sources[1], excerpt: 'other' }] })).toBe(id);
  });
  it('changes when any preimage field changes', () => {
    const id = idOf(base);
    const variants: unknown[] = [
      { ...base, subject: 'Well No. 4' },
      { ...base, predicate: 'water_quality_x' },
      { ...base, object: 'unsafe' },
      { ...base, claim_type: 'opinion' },
      { ...base, modifiers: { season: 'winter' } },
      { ...base, sources: [base.sources[0]] },
      {
        ...base,
        sources: [{ ...base.sources[0], content_sha: 'sha256:' + 'a'.repeat(64) }, base.sources[1]],
      },
      { ...base, sources: [{ ...base.sources[0], accessed_at: '2026-01-01T00:00:00Z' }, base.sources[1]] },
      { ...base, confidence: 0.5 },
      { ...base, ttl_days: 30 },
      { ...base, derived_from: [id] },
      { ...base, supersedes: [id] },
    ];
    const ids = variants.map(idOf);
    expect(new Set([id, ...ids]).size).toBe(variants.length + 1);
    expect(buildClaim(normaliseDraft(base, AT), kp.nodeId, '2026-03-01T12:00:01Z').claim_id).not.toBe(id);
    expect(
      buildClaim(normaliseDraft(base, AT), keyPairFromSeed(new Uint8Array(32).fill(8)).nodeId, AT).claim_id,
    ).not.toBe(id);
  });
  it('uses the 5-dp confidence string and floors fractional times', () => {
    expect(confidence5dp(1)).toBe('1.00000');
    expect(confidence5dp(0)).toBe('0.00000');
    expect(confidence5dp(0.123456)).toBe('0.12346');
    expect(confidence5dp(0.5)).toBe('0.50000');
    const n = normaliseDraft(
      {
        ...base,
        confidence: 0.123456,
        sources: [{ source_id: 'doc:x', accessed_at: '2026-01-01T00:00:00.999Z' }],
      },
      AT,
    );
    expect(n.confidence).toBe(0.12346);
    expect(n.sources[0]!.accessed_at).toBe('2026-01-01T00:00:00Z');
    const pre = claimPreimage({ ...n, schema_version: 1, asserted_by: kp.nodeId, asserted_at: AT });
    expect(Object.keys(pre).sort()).toEqual([
      'asserted_at',
      'asserted_by',
      'claim_type',
      'confidence_5dp',
      'derived_from',
      'modifiers',
      'object',
      'predicate',
      'schema_version',
      'sources',
      'subject',
      'supersedes',
      'ttl_days',
    ]);
    expect(canonicalString(pre)).not.toMatch(/excerpt/);
  });
  it('refuses bad drafts with bad_request', () => {
    const cases: unknown[] = [
      null,
      { ...base, subject: '' },
      { ...base, subject: 'x'.repeat(513) },
      { ...base, subject: 'a\u0000b' },
      { ...base, subject: 'a\uD800b' },
      { ...base, predicate: 'Water' },
      { ...base, object: 'x'.repeat(2049) },
      { ...base, claim_type: 'Bad-Type' },
      { ...base, modifiers: Object.fromEntries([...Array(9)].map((_, i) => [`k${i}`, 'v'])) },
      { ...base, modifiers: { K: 'v' } },
      { ...base, modifiers: { k: 'v'.repeat(129) } },
      { ...base, sources: [...Array(17)].map((_, i) => ({ source_id: `doc:${i}` })) },
      { ...base, sources: [{ source_id: 'ftp://x' }] },
      { ...base, sources: [{ source_id: 'url:ftp://x' }] },
      { ...base, sources: [{ source_id: 'node:ed25519:short' }] },
      { ...base, sources: [{ source_id: 'doc:x', content_sha: 'md5:00' }] },
      { ...base, sources: [{ source_id: 'doc:x', excerpt: 'e'.repeat(281) }] },
      { ...base, sources: [{ source_id: 'doc:x', accessed_at: '2026-01-01 00:00:00' }] },
      { ...base, confidence: NaN },
      { ...base, confidence: 1.5 },
      { ...base, confidence: '1' },
      { ...base, ttl_days: 0 },
      { ...base, ttl_days: 3651 },
      { ...base, ttl_days: 1.5 },
      { ...base, derived_from: ['abc'] },
      { ...base, derived_from: [idOf(base).toLowerCase()] },
      { ...base, supersedes: [...Array(9)].map(() => idOf(base)) },
      { ...base, predicate: 'retracted', object: 'not an id' },
      { ...base, unknown_field: 1 },
    ];
    for (const c of cases)
      expect(
        code(() => normaliseDraft(c, AT)),
        JSON.stringify(c)?.slice(0, 80),
      ).toBe('bad_request');
  });
});

describe('M30 §7.2 sign and verify', () => {
  it('round-trips and rejects any change with claim_signature_invalid', () => {
    const r = signed(base);
    expect(verifyClaimRecord(structuredClone(r))).toEqual(r);
    const forged = (f: (x: Record<string, unknown>) => void) => {
      const x = structuredClone(r) as unknown as Record<string, unknown>;
      f(x);
      return code(() => verifyClaimRecord(x));
    };
    // a changed signed field, with the ID recomputed by the forger → bad signature
    const resigned = (mut: (d: Record<string, unknown>) => void) => {
      const x = structuredClone(r) as unknown as Record<string, unknown>;
      mut(x);
      const { claim_id: _c, signature: _s, ...rest } = x;
      x.claim_id = buildClaim(
        normaliseDraft(
          {
            subject: rest.subject,
            predicate: rest.predicate,
            object: rest.object,
            claim_type: rest.claim_type,
            modifiers: rest.modifiers,
            sources: rest.sources,
            confidence: rest.confidence,
            derived_from: rest.derived_from,
            supersedes: rest.supersedes,
            ttl_days: rest.ttl_days,
          },
          AT,
        ),
        kp.nodeId,
        AT,
      ).claim_id;
      return code(() => verifyClaimRecord(x));
    };
    expect(resigned((x) => (x.object = 'unsafe'))).toBe('claim_signature_invalid');
    expect(forged((x) => (x.object = 'unsafe'))).toBe('claim_signature_invalid'); // id_mismatch
    expect(forged((x) => ((x.sources as { excerpt: string }[])[0]!.excerpt = 'edited'))).toBe(
      'claim_signature_invalid',
    );
    expect(forged((x) => (x.claim_id = 'A'.repeat(51) + 'Q'))).toBe('claim_signature_invalid');
    expect(forged((x) => (x.asserted_by = 'ed25519:xyz'))).toBe('claim_signature_invalid');
    expect(forged((x) => (x.signature = 'ed25519:' + 'A'.repeat(86)))).toBe('claim_signature_invalid');
    expect(forged((x) => (x.claim_id = r.claim_id.toLowerCase()))).toBe('bad_request');
    expect(forged((x) => (x.subject = ' ' + r.subject))).toBe('bad_request'); // not in normal form
    try {
      verifyClaimRecord({ ...r, object: 'unsafe' });
    } catch (e) {
      expect((e as HnError).details).toMatchObject({ detail: 'id_mismatch' });
    }
  });
});

describe('M30 service: store stays unchanged on bad input and tampered records', () => {
  it('§7.2 and §5: tampered received records are counted and change nothing', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    await A.svc.assert({ ...base });
    const [ev] = await A.events();
    const before = await B.svc.store.dump();
    const tamper = [
      (r: Record<string, unknown>) => (r.object = 'unsafe'),
      (r: Record<string, unknown>) => ((r.sources as { excerpt: string }[])[1]!.excerpt = 'edited'),
      (r: Record<string, unknown>) => (r.claim_id = 'B'.repeat(51) + 'A'),
      (r: Record<string, unknown>) => (r.asserted_by = 'nobody'),
      (r: Record<string, unknown>) => delete r.signature,
    ];
    for (const t of tamper) {
      const e2 = structuredClone(ev!);
      t(e2.data.record as Record<string, unknown>);
      expect(await B.svc.ingest(e2)).toBe('rejected');
    }
    expect(await B.svc.store.dump()).toBe(before);
    expect(B.svc.rejected.claim_signature_invalid).toBe(4);
    expect(await B.svc.ingest(ev!)).toBe('stored');
    expect(await B.svc.ingest(ev!)).toBe('duplicate');
  });
  it('§5: every bad call gets its code and leaves every store byte-for-byte unchanged', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const { claim_id } = await A.svc.assert(base);
    await deliver(A, B);
    const { claim_id: bId } = await B.svc.assert({ subject: 'x', predicate: 'p', object: 'o' });
    await deliver(B, A);
    const before = await A.svc.store.dump();
    const evBefore = (await A.events()).length;
    const cases: [() => Promise<unknown>, string][] = [
      [() => A.svc.assert({ ...base, subject: 'x'.repeat(600) }), 'bad_request'],
      [() => A.svc.assert({ ...base, confidence: NaN }), 'bad_request'],
      [() => A.svc.assert({ ...base, derived_from: ['Z'.repeat(52)] }), 'bad_request'],
      [() => A.svc.assert({ ...base, derived_from: ['A'.repeat(52)] }), 'claim_not_found'],
      [() => A.svc.assert({ ...base, supersedes: [bId] }), 'bad_request'],
      [() => A.svc.assert({ subject: 'x', predicate: 'retracted', object: bId }), 'bad_request'],
      [
        () => A.svc.assert({ subject: 'x', predicate: 'retracted', object: 'A'.repeat(52) }),
        'claim_not_found',
      ],
      [() => A.svc.attest({ claim_id, role: 'expert', rationale: 'mine' }), 'bad_request'],
      [() => A.svc.attest({ claim_id: bId, role: 'bystander', rationale: 'r' }), 'bad_request'],
      [() => A.svc.attest({ claim_id: bId, role: 'expert', rationale: '' }), 'bad_request'],
      [() => A.svc.attest({ claim_id: 'A'.repeat(52), role: 'expert', rationale: 'r' }), 'claim_not_found'],
      [() => A.svc.dispute({ claim_id: bId, rationale: 'r' }), 'bad_request'],
      [
        () =>
          A.svc.dispute({
            claim_id: bId,
            counterclaim: { subject: 'x', predicate: 'p', object: 'q' },
            rationale: 'r'.repeat(1001),
          }),
        'bad_request',
      ],
      [
        () =>
          A.svc.dispute({
            claim_id: 'A'.repeat(52),
            counterclaim: { subject: 'x', predicate: 'p', object: 'q' },
            rationale: 'r',
          }),
        'claim_not_found',
      ],
      [
        () =>
          A.svc.dispute({
            claim_id: bId,
            counterclaim: { subject: 'x', predicate: 'p', object: 'q', ttl_days: 0 },
            rationale: 'r',
          }),
        'bad_request',
      ],
      [() => A.svc.get({ claim_id: 'A'.repeat(52) }), 'claim_not_found'],
      [() => A.svc.get({ claim_id: 'abc' }), 'bad_request'],
      [() => A.svc.query({}), 'bad_request'],
      [() => A.svc.query({ subject: 'x', min_evidence: 'gold' }), 'bad_request'],
      [() => A.svc.query({ subject: 'x', limit: 201 }), 'bad_request'],
      [() => A.svc.query({ subject: 'x', cursor: '!!' }), 'bad_request'],
      [() => A.svc.trace({ claim_id, max_depth: -1 }), 'bad_request'],
      [() => A.svc.trace({ claim_id: 'A'.repeat(52) }), 'claim_not_found'],
      [() => A.svc.ebkhSync({}), 'ebkh_unavailable'],
      [() => A.svc.ebkhSync({ direction: 'sideways' }), 'bad_request'],
    ];
    for (const [f, c] of cases) await expect(f(), c).rejects.toMatchObject({ code: c });
    expect(await A.svc.store.dump()).toBe(before);
    expect((await A.events()).length).toBe(evBefore);
  });
});

describe('M30 §7.3–7.5 evidence levels', () => {
  it('§7.3 two sources + dispute → disputed; retracting the dispute → attested / cross_referenced', async () => {
    for (const withAttestation of [true, false]) {
      const w = newWorld();
      const A = await actor(w, 1);
      const B = await actor(w, 2);
      const C = await actor(w, 3);
      w.levels.set(C.id, 'trusted');
      const { claim_id, evidence_level } = await A.svc.assert(base);
      expect(evidence_level).toBe('cross_referenced');
      await deliver(A, B);
      await deliver(A, C);
      if (withAttestation) {
        await C.svc.attest({ claim_id, role: 'official record holder', rationale: 'registry entry 12' });
        await deliver(C, A);
        expect((await A.svc.get({ claim_id })).evidence_level).toBe('attested');
      }
      const d = await B.svc.dispute({
        claim_id,
        counterclaim: { subject: base.subject, predicate: 'water_quality', object: 'contaminated' },
        rationale: 'my test kit says no',
      });
      expect(d.target_evidence_level).toBe('disputed');
      await deliver(B, A);
      const v = await A.svc.get({ claim_id });
      expect(v.evidence_level).toBe('disputed');
      expect(v.base_level).toBe(withAttestation ? 'attested' : 'cross_referenced');
      // dispute of the dispute: B retracts its counterclaim
      const r = await B.svc.dispute({
        claim_id: d.counterclaim_id,
        counterclaim: { subject: base.subject, predicate: 'retracted', object: d.counterclaim_id },
        rationale: 'kit was faulty',
      });
      expect(r.target_evidence_level).toBe('disputed'); // the retracted counterclaim itself reads disputed
      const evs = await B.events();
      expect(evs.map((e) => e.event_type)).toContain('evidence.dispute.retracted');
      const rt = evs.find((e) => e.event_type === 'evidence.dispute.retracted')!;
      expect(rt.data).toEqual({
        claim_id,
        counterclaim_id: d.counterclaim_id,
        retraction_id: r.counterclaim_id,
      });
      await deliver(B, A);
      expect((await A.svc.get({ claim_id })).evidence_level).toBe(
        withAttestation ? 'attested' : 'cross_referenced',
      );
      const tr = await A.svc.trace({ claim_id });
      expect(tr.disputes).toHaveLength(1);
      expect(tr.disputes[0]!.retracted).toBe(true);
    }
  });
  it('§7.4 attestations: first-hand witness, 2 vs 3 experts, self and below-trusted do not count', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const others = await Promise.all([2, 3, 4, 5, 6].map((i) => actor(w, i)));
    for (const o of others) w.levels.set(o.id, 'trusted');
    w.levels.set(others[4]!.id, 'member');
    const { claim_id } = await A.svc.assert({ subject: 's', predicate: 'p', object: 'o' });
    const { claim_id: c2 } = await A.svc.assert({ subject: 's', predicate: 'q', object: 'o' });
    for (const o of others) await deliver(A, o);
    // one first-hand witness → attested
    const [W, E1, E2, E3, M] = others as [typeof A, typeof A, typeof A, typeof A, typeof A];
    await W.svc.attest({ claim_id: c2, role: 'first-hand witness', rationale: 'I saw it' });
    await deliver(W, A);
    expect((await A.svc.get({ claim_id: c2 })).evidence_level).toBe('attested');
    // experts: a member's does not count, 2 trusted → not yet, 3 → attested
    await M.svc.attest({ claim_id, role: 'first-hand witness', rationale: 'member' });
    await E1.svc.attest({ claim_id, role: 'expert', rationale: 'e1' });
    await E2.svc.attest({ claim_id, role: 'expert', rationale: 'e2' });
    for (const o of [M, E1, E2]) await deliver(o, A);
    let v = await A.svc.get({ claim_id });
    expect(v.evidence_level).toBe('unverified');
    expect(v.attestation_count).toBe(2);
    await E3.svc.attest({ claim_id, role: 'expert', rationale: 'e3' });
    await deliver(E3, A);
    v = await A.svc.get({ claim_id });
    expect(v.evidence_level).toBe('attested');
    // a repeat returns the old receipt and emits nothing
    const n = (await E3.events()).length;
    w.clock.t += 5000;
    const again = await E3.svc.attest({ claim_id, role: 'expert', rationale: 'again' });
    expect(again.attested_at).toBe('2026-03-01T12:00:00Z');
    expect((await E3.events()).length).toBe(n);
  });
  it('§7.4 a forged self-attestation arriving by gossip does not count', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    w.levels.set(A.id, 'anchor');
    const B = await actor(w, 2);
    const { claim_id } = await A.svc.assert({ subject: 's', predicate: 'p', object: 'o' });
    await deliver(A, B);
    const self = signObject(A.kp, {
      claim_id,
      attester: A.id,
      attested_at: '2026-03-01T12:00:00Z',
      role: 'first-hand witness',
      rationale: 'me',
    });
    expect(
      await B.svc.ingest({
        event_type: 'evidence.claim.attested',
        event_id: 'x',
        author: A.id,
        data: { attestation: self },
      }),
    ).toBe('stored');
    expect((await B.svc.get({ claim_id })).evidence_level).toBe('unverified');
  });
  it('§7.5 a dispute by a blocklisted node does not make the claim disputed but shows in the trace', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const { claim_id } = await A.svc.assert({
      subject: 's',
      predicate: 'p',
      object: 'o',
      sources: [{ source_id: 'doc:one' }],
    });
    await deliver(A, B);
    await B.svc.dispute({
      claim_id,
      counterclaim: { subject: 's', predicate: 'p', object: 'other' },
      rationale: 'no',
    });
    await deliver(B, A);
    expect((await A.svc.get({ claim_id })).evidence_level).toBe('disputed');
    await A.svc.setTrustOverride('node', B.id, 'block');
    expect(await A.svc.reader.scoreAsserter(B.id)).toBe(0);
    const v = await A.svc.get({ claim_id });
    expect(v.evidence_level).toBe('cited');
    const tr = await A.svc.trace({ claim_id });
    expect(tr.disputes).toHaveLength(1);
    expect(tr.disputes[0]!.disputer).toBe(B.id);
  });
});

describe('M30 §7.7–7.11 graph rules', () => {
  it('§7.7 asserting with cyclic ancestry → evidence_cycle_detected; trace of a crafted cycle terminates', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const { claim_id: p1 } = await A.svc.assert({ subject: 's', predicate: 'p', object: '1' });
    const { claim_id: p2 } = await A.svc.assert({
      subject: 's',
      predicate: 'p',
      object: '2',
      derived_from: [p1],
    });
    // craft a cycle in the store: rewrite p1's stored row so it derives from p2 (a hash collision in real life)
    const row = await A.svc.store.db.get<{ record: ClaimRecord }>('evidence_claims', p1);
    row!.record.derived_from = [p2];
    await A.svc.store.db.put('evidence_claims', row);
    await expect(
      A.svc.assert({ subject: 's', predicate: 'p', object: '3', derived_from: [p2] }),
    ).rejects.toMatchObject({
      code: 'evidence_cycle_detected',
    });
    const tr = await A.svc.trace({ claim_id: p2, max_depth: 20 });
    expect(tr.cycle_detected).toBe(true);
    expect(tr.max_depth_applied).toBe(8);
    expect(tr.nodes.map((n) => n.claim_id)).toEqual([p2, p1]);
  });
  it('§7.6 a diamond lists each ancestor once, in topological order', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const a = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'root-src' })).claim_id;
    const b = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'b', derived_from: [a] })).claim_id;
    const c = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'c', derived_from: [a] })).claim_id;
    const d = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'd', derived_from: [b, c] }))
      .claim_id;
    const tr = await A.svc.trace({ claim_id: d });
    const ids = tr.nodes.map((n) => n.claim_id);
    expect(ids).toHaveLength(4);
    expect(ids[0]).toBe(d);
    expect(ids[3]).toBe(a);
    expect(tr.nodes.find((n) => n.claim_id === a)!.depth).toBe(2);
    expect(tr.cycle_detected).toBe(false);
    const t1 = await A.svc.trace({ claim_id: d, max_depth: 1 });
    expect(t1.nodes.map((n) => n.claim_id).sort()).toEqual([b, c, d].sort());
    expect(t1.truncated).toBe(true);
  });
  it('§7.8 self-retraction → disputed; a retraction by another node → bad_request; received one dropped', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const { claim_id } = await A.svc.assert({ subject: 's', predicate: 'p', object: 'o' });
    await deliver(A, B);
    await expect(
      B.svc.assert({ subject: 's', predicate: 'retracted', object: claim_id }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    // a retraction by B crafted by hand and gossiped is dropped
    const forged = signObject(
      B.kp,
      buildClaim(
        normaliseDraft({ subject: 's', predicate: 'retracted', object: claim_id }, AT),
        B.id,
        AT,
      ) as never,
    );
    expect(
      await A.svc.ingest({
        event_type: 'evidence.claim.asserted',
        event_id: 'x',
        author: B.id,
        data: { record: forged },
      }),
    ).toBe('rejected');
    const r = await A.svc.assert({ subject: 's', predicate: 'retracted', object: claim_id });
    const v = await A.svc.get({ claim_id });
    expect(v.evidence_level).toBe('disputed');
    expect(v.retracted).toBe(true);
    expect((await A.svc.reader.selfRetractions(v.record)).map((x) => x.claim_id)).toEqual([r.claim_id]);
  });
  it('§7.9 supersession hides the old claim from query; another node’s claim → bad_request', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const O = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'old' })).claim_id;
    w.clock.t += 1000;
    const N = (await A.svc.assert({ subject: 's', predicate: 'p', object: 'new', supersedes: [O] })).claim_id;
    expect((await A.svc.query({ subject: 's' })).claims.map((c) => c.record.claim_id)).toEqual([N]);
    expect((await A.svc.query({ subject: 's', include_superseded: true })).claims).toHaveLength(2);
    expect((await A.svc.get({ claim_id: O })).superseded_by).toEqual([N]);
    await deliver(A, B);
    await expect(
      B.svc.assert({ subject: 's', predicate: 'p', object: 'b', supersedes: [O] }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    // a gossiped supersession of another node's claim is stored but has no effect
    const bad = signObject(
      B.kp,
      buildClaim(
        normaliseDraft(
          { subject: 's', predicate: 'p', object: 'b', supersedes: [N] },
          '2026-03-01T13:00:00Z',
        ),
        B.id,
        '2026-03-01T13:00:00Z',
      ) as never,
    );
    expect(
      await A.svc.ingest({
        event_type: 'evidence.claim.asserted',
        event_id: 'y',
        author: B.id,
        data: { record: bad },
      }),
    ).toBe('stored');
    expect((await A.svc.get({ claim_id: N })).superseded_by).toEqual([]);
  });
  it('§7.10 past the TTL: stale, hidden from query, still returned by get, record intact', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const { claim_id } = await A.svc.assert({ subject: 's', predicate: 'p', object: 'o', ttl_days: 2 });
    const rec = await A.svc.record(claim_id);
    w.clock.t = T0 + 2 * 86_400_000 - 1000;
    expect((await A.svc.get({ claim_id })).stale).toBe(false);
    w.clock.t = T0 + 2 * 86_400_000;
    const v = await A.svc.get({ claim_id });
    expect(v.stale).toBe(true);
    expect(v.record).toEqual(rec);
    expect((await A.svc.query({ subject: 's' })).claims).toHaveLength(0);
    expect((await A.svc.query({ subject: 's', include_stale: true })).claims).toHaveLength(1);
  });
  it('§7.11 contradictions are advisory flags: functional predicate flagged; modifiers or multi-valued not', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const x = await A.svc.assert({ subject: 'bridge', predicate: 'status', object: 'open' });
    await deliver(A, B);
    const y = await B.svc.assert({ subject: 'bridge', predicate: 'status', object: 'closed' });
    expect(y.contradictions).toEqual([x.claim_id]);
    await deliver(B, A);
    expect((await A.svc.get({ claim_id: x.claim_id })).contradictions).toEqual([y.claim_id]);
    const q = await A.svc.query({ subject: 'bridge', predicate: 'status' });
    expect(q.contradictions).toEqual([
      { subject: 'bridge', predicate: 'status', claim_ids: [x.claim_id, y.claim_id].sort() },
    ]);
    const m = await A.svc.assert({
      subject: 'bridge',
      predicate: 'status',
      object: 'closed',
      modifiers: { lane: 'north' },
    });
    expect(m.contradictions).toEqual([]);
    await A.svc.assert({ subject: 'node:a', predicate: 'serves_shard', object: 'one' });
    const mv = await A.svc.assert({ subject: 'node:a', predicate: 'serves_shard', object: 'two' });
    expect(mv.contradictions).toEqual([]);
  });
  it('query: ranking, min_evidence on base level, disputed filter, cursor pages, dedupe', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const srcs = [...Array(i % 3)].map((_, j) => ({ source_id: `doc:d${j}` }));
      ids.push(
        (await A.svc.assert({ subject: 'q', predicate: 'n', object: `v${i}`, sources: srcs })).claim_id,
      );
    }
    const dd = await A.svc.assert({ subject: 'q', predicate: 'n', object: 'v0' });
    expect(dd.deduplicated).toBe(true);
    expect((await A.events()).filter((e) => e.event_type === 'evidence.claim.asserted')).toHaveLength(5);
    await deliver(A, B);
    await B.svc.dispute({
      claim_id: ids[0]!,
      counterclaim: { subject: 'q', predicate: 'n', object: 'zzz' },
      rationale: 'no',
    });
    await deliver(B, A);
    const all = await A.svc.query({ subject: 'q', limit: 2 });
    expect(all.claims[0]!.evidence_level).toBe('disputed');
    const p2 = await A.svc.query({ subject: 'q', limit: 2, cursor: all.next_cursor });
    const p3 = await A.svc.query({ subject: 'q', limit: 2, cursor: p2.next_cursor });
    expect(p3.next_cursor).toBeNull();
    const seen = [...all.claims, ...p2.claims, ...p3.claims].map((c) => c.record.claim_id);
    expect(new Set(seen).size).toBe(6);
    expect(
      (await A.svc.query({ subject: 'q', min_evidence: 'disputed' })).claims.map((c) => c.record.claim_id),
    ).toEqual([ids[0]]);
    const cross = await A.svc.query({ subject: 'q', min_evidence: 'cross_referenced' });
    expect(cross.claims.every((c) => c.base_level === 'cross_referenced')).toBe(true);
    expect(cross.claims).toHaveLength(1);
    // indexed match equals the scan oracle
    for (const p of [
      { subject: 'q' },
      { predicate: 'n' },
      { object: 'v1' },
      { subject: 'q', object: 'v2' },
      { predicate: 'n', object: 'zzz' },
    ])
      expect((await A.svc.store.match(p)).map((r) => r.claim_id).sort()).toEqual(
        (await A.svc.store.scan(p)).map((r) => r.claim_id).sort(),
      );
  });
  it('summary: predicates by count, best is current, distinct sources; empty for an unknown subject', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    await A.svc.assert({ subject: 'w', predicate: 'a', object: '1', sources: [{ source_id: 'doc:x' }] });
    await A.svc.assert({ subject: 'w', predicate: 'b', object: '1', ttl_days: 1 });
    await A.svc.assert({
      subject: 'w',
      predicate: 'b',
      object: '2',
      ttl_days: 1,
      sources: [{ source_id: 'doc:x' }, { source_id: 'doc:y' }],
    });
    w.clock.t += 2 * 86_400_000;
    const s = await A.svc.summary({ subject: 'w' });
    expect(s.predicates.map((p) => p.predicate)).toEqual(['b', 'a']);
    expect(s.predicates[0]!.best).toBeNull(); // both stale
    expect(s.predicates[1]!.best).not.toBeNull();
    expect(s.sources).toEqual(['doc:x', 'doc:y']);
    expect(s.claim_count).toBe(3);
    expect(await A.svc.summary({ subject: 'nothing' })).toMatchObject({ predicates: [], claim_count: 0 });
  });
});
