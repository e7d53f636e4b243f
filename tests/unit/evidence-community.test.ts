/**
 * M30 with the roles (A asserts, B attests, A sees the new level): the anchor promotes B through the
 * kit's community component, so B's attestation counts; a plain member's does not; bad promotions get
 * their codes and change nothing. VC export/import on the bus (the declared extras beyond the seed) and
 * the EBKH token kept in the module's own store.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { EVIDENCE_SERVICES } from '../../engine/evidence/index.js';
import { VC_CAPABILITIES } from '../../engine/evidence/capabilities.js';
import { link, seedOf } from './helpers.js';

const P = 'experimental.evidence.';
const svcOf = (n: HearthNode) => EVIDENCE_SERVICES.get(n.id)!;
async function settle(...ns: HearthNode[]) {
  for (const n of ns) await n.events.sync();
  for (const n of ns) await svcOf(n).idle();
}
const on = { evidence: { enabled: true } };

async function trio(base: number) {
  const A = await createNode({ seed: seedOf(base), config: on });
  const member = { ...on, community: { community_id: A.id } };
  const B = await createNode({ seed: seedOf(base + 1), config: member });
  const C = await createNode({ seed: seedOf(base + 2), config: member });
  await link(A, B);
  await link(A, C);
  return { A, B, C };
}

describe('M30 community levels (issue roles)', () => {
  it('A asserts; a plain member B attests (does not count); A promotes B; B attests again → A sees attested', async () => {
    const { A, B, C } = await trio(301);
    try {
      const { claim_id } = await A.call(`${P}claim.assert`, {
        subject: 'Well 3',
        predicate: 'water_quality',
        object: 'safe to drink',
      });
      await settle(A, B, C);
      // C, a plain member of the open community, attests first-hand: it does not count
      expect(B.levelOf(C.id)).toBe('member');
      const byC = await C.call(`${P}claim.attest`, { claim_id, role: 'first-hand witness', rationale: 'x' });
      expect(byC.evidence_level).toBe('unverified');
      // B may not promote anyone (a member)
      await expect(svcOf(B).promote(C.id)).rejects.toMatchObject({ code: 'unauthorized' });
      // the anchor promotes B; the promotion reaches every node's membership view
      expect(svcOf(A).levelOf(A.id)).toBe('anchor');
      await svcOf(A).promote(B.id, 'trusted');
      await settle(A, B, C);
      for (const n of [A, B, C]) expect(n.levelOf(B.id)).toBe('trusted');
      expect(svcOf(C).levelOf(B.id)).toBe('trusted');
      const [promo] = await A.events.list({ type: 'community.member.promoted' });
      expect(promo!.data).toMatchObject({
        target_node_id: B.id,
        new_level: 'trusted',
        co_signers: [{ node_id: A.id, signature: expect.any(String) }],
      });
      // B attests: now it counts, and A sees the new level
      const byB = await B.call(`${P}claim.attest`, {
        claim_id,
        role: 'first-hand witness',
        rationale: 'seen',
      });
      expect(byB.evidence_level).toBe('attested');
      await settle(B, A, C);
      expect((await A.call(`${P}claim.get`, { claim_id })).evidence_level).toBe('attested');
      expect((await C.call(`${P}claim.get`, { claim_id })).evidence_level).toBe('attested');
    } finally {
      for (const n of [A, B, C]) await n.close();
    }
  });

  it('bad promotions get their codes and append nothing; a member-authored promotion event changes no level', async () => {
    const { A, B, C } = await trio(311);
    try {
      const promotions = async () => (await A.events.list({ type: 'community.member.promoted' })).length;
      await expect(svcOf(A).promote(B.id, 'member')).rejects.toMatchObject({ code: 'bad_request' });
      await expect(svcOf(A).promote(B.id, 'bogus' as never)).rejects.toMatchObject({ code: 'bad_request' });
      await expect(svcOf(A).promote(A.id, 'anchor')).rejects.toMatchObject({ code: 'bad_request' });
      await expect(svcOf(A).promote('ed25519:nope' as never, 'trusted')).rejects.toMatchObject({
        code: 'bad_request',
      });
      await svcOf(A).promote(B.id, 'trusted');
      await expect(svcOf(A).promote(B.id, 'trusted')).rejects.toMatchObject({ code: 'bad_request' });
      await settle(A, B);
      // a trusted member cannot raise anyone above itself
      await expect(svcOf(B).promote(C.id, 'anchor')).rejects.toMatchObject({ code: 'unauthorized' });
      expect(await promotions()).toBe(1);
      // a plain member writing the event by hand changes no level, neither its own view nor its peers'
      await C.events.append('community.member.promoted', { target_node_id: C.id, new_level: 'anchor' });
      await settle(C, A);
      expect(C.levelOf(C.id)).toBe('member');
      expect(A.levelOf(C.id)).toBe('member');
      expect(svcOf(A).levelOf(C.id)).toBe('member');
    } finally {
      for (const n of [A, B, C]) await n.close();
    }
  });
});

describe('M30 VC 2.0 on the bus', () => {
  it('export an own claim, import it on another node (verified, stored once); bad credentials change nothing', async () => {
    const A = await createNode({ seed: seedOf(321), config: on });
    // not linked (yet): import is the only way in
    const D = await createNode({ seed: seedOf(322), config: { ...on, community: { community_id: A.id } } });
    try {
      const { claim_id } = await A.call(`${P}claim.assert`, {
        subject: 'Bridge 7',
        predicate: 'status',
        object: 'closed',
        sources: [{ source_id: 'url:https://council.example/notice' }],
      });
      const { credential } = await A.call(VC_CAPABILITIES.export, { claim_id });
      expect(credential.proof).toMatchObject({ type: 'DataIntegrityProof', cryptosuite: 'eddsa-jcs-2022' });
      expect(credential.id).toBe(`urn:hearthnet:claim:${claim_id}`);
      const dump = await svcOf(D).store.dump();
      // tampering: the object changed inside the credential → claim_signature_invalid, nothing stored
      const forged = structuredClone(credential);
      forged.credentialSubject.claim.object = 'open';
      await expect(D.call(VC_CAPABILITIES.import, { credential: forged })).rejects.toMatchObject({
        code: 'claim_signature_invalid',
      });
      const noProof = structuredClone(credential);
      delete noProof.proof;
      await expect(D.call(VC_CAPABILITIES.import, { credential: noProof })).rejects.toMatchObject({
        code: 'claim_signature_invalid',
      });
      await expect(D.call(VC_CAPABILITIES.import, { credential: 'nope' })).rejects.toMatchObject({
        code: 'schema_mismatch',
      });
      expect(await svcOf(D).store.dump()).toBe(dump);
      const got = await D.call(VC_CAPABILITIES.import, { credential });
      expect(got).toEqual({ claim_id, stored: true, evidence_level: 'cited' });
      expect((await D.call(VC_CAPABILITIES.import, { credential })).stored).toBe(false);
      expect((await D.call(`${P}claim.get`, { claim_id })).record.object).toBe('closed');
      // D cannot sign a credential for A's claim; unknown claims are claim_not_found
      await expect(D.call(VC_CAPABILITIES.export, { claim_id })).rejects.toMatchObject({
        code: 'unauthorized',
      });
      await expect(D.call(VC_CAPABILITIES.export, { claim_id: 'A'.repeat(52) })).rejects.toMatchObject({
        code: 'claim_not_found',
      });
      // self-only: a peer cannot make a node sign or store
      await link(A, D);
      await expect(A.call(VC_CAPABILITIES.export, { claim_id }, { peer: D.id })).rejects.toMatchObject({
        code: 'unauthorized',
      });
      await A.disable('evidence');
      await expect(A.call(VC_CAPABILITIES.export, { claim_id })).rejects.toMatchObject({
        code: 'experimental_disabled',
      });
    } finally {
      await A.close();
      await D.close();
    }
  });

  it('the EBKH token lives in the module store, never in the config; a bad token is refused', async () => {
    const A = await createNode({ seed: seedOf(331), config: on });
    try {
      await svcOf(A).ebkh.setToken('s3cret-token');
      expect(await svcOf(A).ebkh.storedToken()).toBe('s3cret-token');
      expect(JSON.stringify(A.config)).not.toContain('s3cret');
      const dump = await svcOf(A).store.dump();
      await expect(svcOf(A).ebkh.setToken('bad token\n')).rejects.toMatchObject({ code: 'bad_request' });
      expect(await svcOf(A).store.dump()).toBe(dump);
      await svcOf(A).ebkh.setToken(null);
      expect(await svcOf(A).ebkh.storedToken()).toBeNull();
      await expect(A.call(`${P}ebkh.sync`, {})).rejects.toMatchObject({ code: 'ebkh_unavailable' });
      expect(await svcOf(A).ebkh.lastReport()).toBeNull();
    } finally {
      await A.close();
    }
  });
});
