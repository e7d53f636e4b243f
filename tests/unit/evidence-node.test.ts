/** M30 as a module of the node: gating, the bus surface, replication between linked nodes, reload, drafts. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { EVIDENCE_SERVICES, CAPABILITIES } from '../../engine/evidence/index.js';
import { link, seedOf } from './helpers.js';
import { actor, newWorld } from './evidence-helpers.js';

const svcOf = (n: HearthNode) => EVIDENCE_SERVICES.get(n.id)!;
async function settle(...ns: HearthNode[]) {
  for (const n of ns) await n.events.sync();
  for (const n of ns) await svcOf(n).idle();
}

describe('M30 module', () => {
  it('§7.15 with the flag off every capability answers experimental_disabled', async () => {
    const A = await createNode({ seed: seedOf(81) });
    for (const cap of CAPABILITIES)
      await expect(A.call(cap, { claim_id: 'A'.repeat(52) })).rejects.toMatchObject({
        code: 'experimental_disabled',
      });
    await expect(A.events.append('evidence.claim.asserted', { record: {} })).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await A.enable('evidence');
    expect(
      (await A.call('experimental.evidence.claim.assert', { subject: 's', predicate: 'p', object: 'o' }))
        .claim_id,
    ).toMatch(/^[A-Z2-7]{51}[AQ]$/);
    await A.disable('evidence');
    await expect(
      A.call('experimental.evidence.claim.get', { claim_id: 'A'.repeat(52) }),
    ).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await A.close();
  });

  it('§7.14 (in-process) B asserts, A reads via get and attests, B sees attested; remote reads; writes are self-only', async () => {
    const A = await createNode({ seed: seedOf(82), config: { evidence: { enabled: true } } });
    const B = await createNode({
      seed: seedOf(83),
      config: { evidence: { enabled: true }, community: { community_id: A.id } },
    });
    await link(A, B);
    // B asserts; A (the founder, anchor ≥ trusted) attests; both see `attested`
    const { claim_id } = await B.call('experimental.evidence.claim.assert', {
      subject: 'Well 3',
      predicate: 'water_quality',
      object: 'safe',
      sources: [{ source_id: 'url:https://lab.example/r1' }],
    });
    await settle(B, A);
    expect((await A.call('experimental.evidence.claim.get', { claim_id })).evidence_level).toBe('cited');
    // a peer can read on demand (member) ...
    expect(
      (await A.call('experimental.evidence.claim.get', { claim_id }, { peer: B.id })).record.claim_id,
    ).toBe(claim_id);
    // ... but never make the node sign (self)
    await expect(
      A.call(
        'experimental.evidence.claim.assert',
        { subject: 'x', predicate: 'p', object: 'o' },
        { peer: B.id },
      ),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    const att = await A.call('experimental.evidence.claim.attest', {
      claim_id,
      role: 'official record holder',
      rationale: 'lab report on file',
    });
    expect(att.evidence_level).toBe('attested');
    await settle(A, B);
    expect((await B.call('experimental.evidence.claim.get', { claim_id })).evidence_level).toBe('attested');
    // a member's attestation (B's, on A's claim) does not count
    const a2 = await A.call('experimental.evidence.claim.assert', {
      subject: 'Well 4',
      predicate: 'status',
      object: 'dry',
    });
    await settle(A, B);
    const r = await B.call('experimental.evidence.claim.attest', {
      claim_id: a2.claim_id,
      role: 'first-hand witness',
      rationale: 'saw it',
    });
    expect(r.evidence_level).toBe('unverified');
    // bad input through the bus: the seed code, nothing written
    const before = await svcOf(A).store.dump();
    await expect(A.call('experimental.evidence.claim.query', {})).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(
      A.call('experimental.evidence.claim.get', { claim_id: 'A'.repeat(52) }),
    ).rejects.toMatchObject({ code: 'claim_not_found' });
    await expect(A.call('experimental.evidence.ebkh.sync', {})).rejects.toMatchObject({
      code: 'ebkh_unavailable',
    });
    expect(await svcOf(A).store.dump()).toBe(before);
    await A.close();
    await B.close();
  });

  it('§4.9 a third node joining later receives the whole graph; a tampered inner record is counted and skipped', async () => {
    const A = await createNode({ seed: seedOf(84), config: { evidence: { enabled: true } } });
    const B = await createNode({
      seed: seedOf(85),
      config: { evidence: { enabled: true }, community: { community_id: A.id } },
    });
    await link(A, B);
    const c1 = await B.call('experimental.evidence.claim.assert', {
      subject: 'Bridge',
      predicate: 'status',
      object: 'open',
    });
    await settle(B, A);
    await A.call('experimental.evidence.claim.attest', {
      claim_id: c1.claim_id,
      role: 'expert',
      rationale: 'inspected',
    });
    await A.call('experimental.evidence.claim.dispute', {
      claim_id: c1.claim_id,
      counterclaim: { subject: 'Bridge', predicate: 'status', object: 'closed' },
      rationale: 'barrier up',
    });
    await settle(A, B);
    const C = await createNode({ seed: seedOf(86), config: { community: { community_id: A.id } } });
    await link(A, C);
    await C.events.sync();
    // the module was off while the records arrived: enabling it catches up from the log
    await C.enable('evidence');
    await svcOf(C).idle();
    expect(await svcOf(C).store.dumpRecords()).toBe(await svcOf(A).store.dumpRecords());
    const vA = await A.call('experimental.evidence.claim.get', { claim_id: c1.claim_id });
    const vC = await C.call('experimental.evidence.claim.get', { claim_id: c1.claim_id });
    expect(vC).toEqual(vA);
    expect(vC.evidence_level).toBe('disputed');
    // a peer's event carrying a forged record: the X02 envelope is valid, the inner record is not
    const rec = structuredClone(vA.record);
    rec.object = 'forged';
    await B.events.append('evidence.claim.asserted', { record: rec });
    await settle(B, A);
    expect(svcOf(A).rejected.claim_signature_invalid).toBe(1);
    expect(await svcOf(A).store.dumpRecords()).toBe(await svcOf(C).store.dumpRecords());
    for (const n of [A, B, C]) await n.close();
  });

  it('attestations and disputes arriving before their claim wait and then count', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const B = await actor(w, 2);
    const C = await actor(w, 3);
    w.levels.set(B.id, 'trusted');
    const { claim_id } = await A.svc.assert({ subject: 's', predicate: 'p', object: 'o' });
    for (const ev of await A.events()) await B.svc.ingest(ev);
    await B.svc.attest({ claim_id, role: 'first-hand witness', rationale: 'there' });
    const [att] = (await B.events()).filter((e) => e.event_type === 'evidence.claim.attested');
    expect(await C.svc.ingest(att!)).toBe('stored'); // no claim yet: held, indexed by claim
    await expect(C.svc.get({ claim_id })).rejects.toMatchObject({ code: 'claim_not_found' });
    for (const ev of await A.events()) await C.svc.ingest(ev);
    expect((await C.svc.get({ claim_id })).evidence_level).toBe('attested');
  });

  it('data survives closing and reopening the node (IndexedDB)', async () => {
    const name = `ev-reload-${Math.random()}`;
    const seed = seedOf(87);
    const A = await createNode({ seed, storage: 'indexeddb', name, config: { evidence: { enabled: true } } });
    const { claim_id } = await A.call('experimental.evidence.claim.assert', {
      subject: 'kept',
      predicate: 'p',
      object: 'o',
    });
    const before = await svcOf(A).store.dump();
    await A.close();
    const A2 = await createNode({ seed, storage: 'indexeddb', name });
    expect(A2.config.evidence.enabled).toBe(true);
    expect((await A2.call('experimental.evidence.claim.get', { claim_id })).record.subject).toBe('kept');
    expect(await svcOf(A2).store.dump()).toBe(before);
    await A2.close();
  });

  it('§7.12 a protocol-descriptor event makes a draft and stores nothing until asserted; a LoRa beacon makes none', async () => {
    const A = await createNode({ seed: seedOf(88), config: { evidence: { enabled: true } } });
    const X = await createNode({ seed: seedOf(89) });
    const s = svcOf(A);
    const records = await s.store.dumpRecords();
    await s.ingest({
      event_type: 'protocol.descriptor.announced',
      event_id: '01HZZZZZZZZZZZZZZZZZZZZZZZ',
      author: X.id,
      data: {
        node_id: X.id,
        name: 'hearthnet-web',
        vendor: 'HearthNet',
        version: '0.3.0',
        protocol_versions: ['1.0.0'],
        descriptor_cid: 'blake3:' + 'c'.repeat(64),
      },
    });
    await s.ingest({
      event_type: 'lora.beacon.received',
      event_id: 'x',
      author: X.id,
      data: { node_id: X.id, capabilities: ['a'] },
    });
    const drafts = await s.drafts();
    expect(drafts).toHaveLength(1);
    expect(drafts[0]!.draft).toMatchObject({ subject: `node:${X.id}`, predicate: 'advertises_capability' });
    expect(await s.store.dumpRecords()).toBe(records); // nothing stored
    expect((await A.events.list()).filter((e) => e.event_type.startsWith('evidence.'))).toHaveLength(0); // nothing gossiped
    await s.assertDraft(drafts[0]!.draft_id);
    const sum = await A.call('experimental.evidence.subject.summary', { subject: `node:${X.id}` });
    expect(sum.predicates.map((p: { predicate: string }) => p.predicate)).toEqual(['advertises_capability']);
    expect((await s.drafts())[0]!.status).toBe('asserted');
    await A.close();
    await X.close();
  });
});
