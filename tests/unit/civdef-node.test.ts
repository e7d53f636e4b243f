/** M31 as a module of real nodes linked in memory: certs, publish checks, distribution, cancel, acks,
 * revocation propagation, audit tamper/export/verify, flag off and reload. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { CAPABILITIES } from '../../engine/civdef/index.js';
import { cosign } from '../../engine/civdef/alert.js';
import { verifyExport } from '../../engine/civdef/audit.js';
import {
  ROGUE,
  ROOT,
  PUB,
  cert,
  civNode,
  draft,
  dump,
  link,
  settle,
  signer,
  svcOf,
} from './civdef-helpers.js';
import { seedOf } from './helpers.js';
import type { HearthNode } from '../../engine/index.js';

const WEHR = 'DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter';
const ISSUM = 'DE.NRW.Kleve.Issum';

async function exportText(n: HearthNode, input: Record<string, unknown> = {}): Promise<string> {
  const lines: string[] = [];
  try {
    for await (const f of n.stream('experimental.civdef.audit.export', input))
      lines.push((f.data as { line: string }).line);
  } catch (e) {
    (lines as unknown as { err: unknown }).err = e;
  }
  return lines.join('\n') + '\n';
}

async function world() {
  const A = await civNode(111, { home_region: ISSUM });
  const B = await civNode(112, { home_region: ISSUM }, A.id);
  const C = await civNode(113, { home_region: 'DE.NRW.Wesel' }, A.id);
  await link(A, B);
  await link(A, C);
  const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
  await A.call('experimental.civdef.role.register', { cert: wc });
  return { A, B, C, wc };
}

describe('M31 civdef on real nodes', () => {
  it('§7.15 flag off: every capability answers experimental_disabled; on: registered', async () => {
    const N = await createNode({ seed: seedOf(110) });
    for (const cap of CAPABILITIES)
      await expect(N.call(cap, {})).rejects.toMatchObject({ code: 'experimental_disabled' });
    await N.enable('civdef');
    expect((await N.call('experimental.civdef.role.list', {})).certs).toEqual([]);
    await N.disable('civdef');
    await expect(N.call('experimental.civdef.alert.list', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await N.close();
  });

  it('§7.1 certs: valid chain accepted; forged, expired, revoked, out-of-region; intermediate revocation → unrecognised', async () => {
    const A = await civNode(114);
    const reg = (c: unknown, chain_certs?: unknown[]) =>
      A.call('experimental.civdef.role.register', { cert: c, ...(chain_certs ? { chain_certs } : {}) });
    const before = await dump(A);
    await expect(reg(cert(ROGUE, A.id, WEHR, ISSUM, PUB))).rejects.toMatchObject({
      code: 'civdef_cert_unrecognised',
    });
    const expired = cert(ROOT, A.id, WEHR, ISSUM, PUB, {
      issued: Date.now() - 400 * 86400_000,
      expires: Date.now() - 86400_000,
    });
    await expect(reg(expired)).rejects.toMatchObject({ code: 'civdef_cert_invalid' });
    const tampered = {
      ...cert(ROOT, A.id, WEHR, ISSUM, PUB),
      role: 'DE.NRW.Kleve.KatS.Stabsleiter',
      region: 'DE.NRW.Kleve',
    };
    await expect(reg(tampered)).rejects.toMatchObject({ code: 'civdef_cert_invalid' });
    await expect(
      reg(cert(ROOT, A.id, 'DE.BY.Muenchen.KatS.Stabsleiter', 'DE.BY.Muenchen', PUB)),
    ).rejects.toMatchObject({ code: 'civdef_region_unsupported' });
    await expect(
      reg(cert(ROOT, A.id, 'DE.NRW.Kleve.Issum.Feuerwehr.Kaiser', ISSUM, PUB)),
    ).rejects.toMatchObject({ code: 'civdef_cert_unrecognised' });
    await expect(reg(cert(ROOT, A.id, WEHR, 'DE.NRW.Wesel', PUB))).rejects.toMatchObject({
      code: 'civdef_cert_unrecognised',
    });
    expect(await dump(A)).toBe(before);
    // chain: ROOT → K (Stabsleiter, role.issue) → A
    const K = await civNode(115);
    const kc = cert(ROOT, K.id, 'DE.NRW.Kleve.KatS.Stabsleiter', 'DE.NRW.Kleve', PUB);
    const kp = (K as unknown as { identity?: unknown }) && null;
    void kp;
    const { keyPairFromSeed } = await import('../../engine/identity/identity.js');
    const Kkey = keyPairFromSeed(seedOf(115));
    const ac = cert(Kkey, A.id, WEHR, ISSUM, PUB, { chain: [K.id, ROOT.nodeId] });
    expect((await reg(ac, [kc])).state).toBe('active');
    expect((await reg(ac, [kc])).cert_id).toBe(ac.cert_id); // idempotent
    // ROOT revokes the intermediate: A's cert reads unrecognised; a revoked cert → civdef_role_revoked
    await K.enable('civdef').catch(() => undefined);
    const { signRevocation } = await import('../../engine/civdef/role.js');
    const { iso } = await import('../../engine/civdef/role.js');
    const rev = signRevocation(signer(ROOT), {
      cert_id: kc.cert_id,
      revoked_by: ROOT.nodeId,
      revoked_at: iso(Date.now()),
      reason: 'test',
    });
    await svcOf(A).ingestNow({
      event_type: 'civdef.role.revoked',
      data: { revocation: rev, cert: kc },
    } as never);
    const states = (await A.call('experimental.civdef.role.list', { include_inactive: true })).certs;
    expect(states.find((x: any) => x.cert.cert_id === ac.cert_id).state).toBe('unrecognised');
    expect(states.find((x: any) => x.cert.cert_id === kc.cert_id).state).toBe('revoked');
    await expect(reg(kc)).rejects.toMatchObject({ code: 'civdef_role_revoked' });
    await A.close();
    await K.close();
  });

  it('§7.3/§7.4 publish: reaches the matching resident, not the one elsewhere; caps, regions, lengths; nothing stored', async () => {
    const { A, B, C, wc } = await world();
    const before = await dump(A);
    const bad = async (d: Record<string, unknown>, code: string) =>
      expect(A.call('experimental.civdef.alert.publish', d)).rejects.toMatchObject({ code });
    await bad(draft(wc.cert_id, { severity: 'extreme' }), 'civdef_cert_out_of_scope');
    await bad(
      draft(wc.cert_id, { target: { region: 'DE.BY.Muenchen', bbox: null, roles: [], channels: ['local'] } }),
      'civdef_alert_target_invalid',
    );
    await bad(
      draft(wc.cert_id, { target: { region: 'DE.NRW.Wesel', bbox: null, roles: [], channels: ['local'] } }),
      'civdef_alert_target_invalid',
    );
    await bad(
      draft(wc.cert_id, { target: { region: 'DE..NRW', bbox: null, roles: [], channels: ['local'] } }),
      'civdef_alert_target_invalid',
    );
    await bad(
      draft(wc.cert_id, { target: { region: ISSUM, bbox: [7, 51, 6, 52], roles: [], channels: ['local'] } }),
      'civdef_alert_target_invalid',
    );
    await bad(
      draft(wc.cert_id, {
        target: { region: ISSUM, bbox: [13, 52, 13.5, 52.6], roles: [], channels: ['local'] },
      }),
      'civdef_alert_target_invalid',
    );
    await bad(
      draft(wc.cert_id, { target: { region: ISSUM, bbox: null, roles: [], channels: [] } }),
      'civdef_alert_target_invalid',
    );
    await bad(draft(wc.cert_id, { title: 'x'.repeat(81) }), 'bad_request');
    await bad(draft(wc.cert_id, { body: 'ü'.repeat(1001) }), 'bad_request');
    await bad(draft(wc.cert_id, { title: 'a\u0007b' }), 'bad_request');
    await bad(draft(wc.cert_id, { severity: 'alert' }), 'bad_request');
    await bad(draft('A'.repeat(52)), 'civdef_cert_invalid');
    const other = cert(ROOT, B.id, WEHR, ISSUM, PUB);
    await A.call('experimental.civdef.role.register', { cert: other });
    const afterReg = await dump(A);
    await bad(draft(other.cert_id), 'civdef_cert_not_owned');
    expect(await dump(A)).toBe(afterReg);
    expect(before).not.toBe(afterReg);
    // 80 / 1000 code points are fine (NFC counted)
    const ok = await A.call(
      'experimental.civdef.alert.publish',
      draft(wc.cert_id, {
        title: 'ä'.repeat(80),
        body: 'b'.repeat(1000),
        target: {
          region: ISSUM,
          bbox: [6.3, 51.5, 6.5, 51.6],
          roles: [],
          channels: ['local', 'push', 'lora'],
        },
      }),
    );
    expect(ok.channels_skipped).toEqual(['lora']);
    await settle(A, B, C);
    const lb = (await B.call('experimental.civdef.alert.list', {})).alerts;
    expect(lb.map((x: any) => x.alert_id)).toEqual([ok.alert_id]);
    expect(lb[0].matched).toBe(true);
    expect(svcOf(B).shouldNotify(await (svcOf(B) as any).d.db.get('civdef_alerts', ok.alert_id))).toBe(true);
    const lc = (await C.call('experimental.civdef.alert.list', {})).alerts;
    expect(lc[0].matched).toBe(false);
    for (const n of [A, B, C]) await n.close();
  });

  it('§7.5 emergency needs a cosign: refused without, published with a root attestation or cosign.waived', async () => {
    const { A, B, wc } = await world();
    await expect(
      A.call('experimental.civdef.alert.publish', draft(wc.cert_id, { severity: 'emergency' })),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    const body = svcOf(A).prepare(draft(wc.cert_id, { severity: 'emergency' }));
    const att = cosign(signer(ROOT), ROOT.nodeId, body, null);
    // a forged attestation (signed by someone else) is refused
    const forged = cosign(signer(ROGUE), ROOT.nodeId, body, null);
    await expect(
      A.call('experimental.civdef.alert.publish', {
        ...draft(wc.cert_id, { severity: 'emergency' }),
        alert_id: body.alert_id,
        published_at: body.published_at,
        issuer_attestation: forged,
      }),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    const r = await A.call('experimental.civdef.alert.publish', {
      ...draft(wc.cert_id, { severity: 'emergency' }),
      alert_id: body.alert_id,
      published_at: body.published_at,
      issuer_attestation: att,
    });
    expect(r.alert_id).toBe(body.alert_id);
    await settle(A, B);
    const got = await B.call('experimental.civdef.alert.get', { alert_id: r.alert_id });
    expect(got.uncosigned).toBe(false);
    expect(got.envelope.alert.issuer_attestation.by).toBe(ROOT.nodeId);
    const waived = cert(ROOT, A.id, WEHR, ISSUM, [...PUB, 'cosign.waived']);
    await A.call('experimental.civdef.role.register', { cert: waived });
    expect(
      (await A.call('experimental.civdef.alert.publish', draft(waived.cert_id, { severity: 'emergency' })))
        .alert_id,
    ).toMatch(/^[0-9A-Z]{26}$/);
    for (const n of [A, B]) await n.close();
  });

  it('§7.2 a flipped byte anywhere in a received alert → dropped, nothing stored', async () => {
    const { A, B, wc } = await world();
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    const env = (await A.call('experimental.civdef.alert.get', { alert_id: r.alert_id })).envelope;
    const B2 = await civNode(119, { home_region: ISSUM });
    const s = svcOf(B2);
    const before = await dump(B2);
    const text = JSON.stringify(env.alert);
    for (let i = 0; i < text.length; i += 7) {
      const flipped = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
      let alert: unknown;
      try {
        alert = JSON.parse(flipped);
      } catch {
        continue;
      }
      expect(await s.receiveEnvelope({ ...env, alert })).toBe('dropped');
    }
    expect(await dump(B2)).toBe(before);
    expect(await s.receiveEnvelope(env)).toBe('stored');
    for (const n of [A, B, B2]) await n.close();
  });

  it('§4.6 cancel: idempotent, reaches peers, drops the alert from active lists; foreign cancel refused', async () => {
    const { A, B, C, wc } = await world();
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await settle(A, B);
    const c1 = await A.call('experimental.civdef.alert.cancel', {
      alert_id: r.alert_id,
      reason: 'Entwarnung',
      cert_id: wc.cert_id,
    });
    const c2 = await A.call('experimental.civdef.alert.cancel', {
      alert_id: r.alert_id,
      reason: 'again',
      cert_id: wc.cert_id,
    });
    expect(c2.cancelled_at).toBe(c1.cancelled_at);
    await settle(A, B);
    expect((await B.call('experimental.civdef.alert.list', {})).alerts).toEqual([]);
    expect((await B.call('experimental.civdef.alert.get', { alert_id: r.alert_id })).state).toBe('cancelled');
    await expect(
      A.call('experimental.civdef.alert.cancel', {
        alert_id: 'X'.repeat(26),
        reason: 'x',
        cert_id: wc.cert_id,
      }),
    ).rejects.toMatchObject({ code: 'civdef_alert_not_found' });
    // a DRK Bereitschaftsleiter (rank 20, other org) may not cancel a Wehrleiter's alert
    const r2 = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await settle(A, C);
    const drk = cert(ROOT, C.id, 'DE.NRW.Kleve.DRK.Ortsverein.Bereitschaftsleiter', 'DE.NRW.Kleve', PUB);
    await C.call('experimental.civdef.role.register', { cert: drk });
    await expect(
      C.call('experimental.civdef.alert.cancel', {
        alert_id: r2.alert_id,
        reason: 'x',
        cert_id: drk.cert_id,
      }),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    for (const n of [A, B, C]) await n.close();
  });

  it('§7.9 acks: public ack refused by default; restricted alert: stub for non-holders, sixth ack rate-limited', async () => {
    const { A, B, C, wc } = await world();
    const pub = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await settle(A, B);
    await expect(
      B.call('experimental.civdef.alert.ack', { alert_id: pub.alert_id, status: 'received' }),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    // C holds THW.Helfer; a restricted alert to THW roles
    const helfer = cert(ROOT, C.id, 'DE.NRW.Kleve.THW.Helfer', 'DE.NRW.Kleve', ['alert.ack']);
    await C.call('experimental.civdef.role.register', { cert: helfer });
    await settle(A, B, C);
    const restricted = await A.call(
      'experimental.civdef.alert.publish',
      draft(wc.cert_id, {
        target: { region: ISSUM, bbox: null, roles: ['DE.NRW.Kleve.THW'], channels: ['local'] },
      }),
    );
    await settle(A, B, C);
    const onB = (await B.call('experimental.civdef.alert.list', {})).alerts.find(
      (x: any) => x.alert_id === restricted.alert_id,
    );
    expect(onB.envelope).toBeNull();
    expect(onB.stub.alert_id).toBe(restricted.alert_id);
    await expect(
      B.call('experimental.civdef.alert.get', { alert_id: restricted.alert_id }, { peer: A.id }),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    // C pulled the full alert from the publisher
    const onC = await C.call('experimental.civdef.alert.get', { alert_id: restricted.alert_id });
    expect(onC.envelope.alert.title).toBe('Hochwasser Issum');
    for (let i = 0; i < 5; i++)
      expect(
        (
          await C.call('experimental.civdef.alert.ack', {
            alert_id: restricted.alert_id,
            status: 'acting',
            note: `n${i}`,
          })
        ).status,
      ).toBe('acting');
    const before = await dump(C);
    await expect(
      C.call('experimental.civdef.alert.ack', { alert_id: restricted.alert_id, status: 'acting' }),
    ).rejects.toMatchObject({ code: 'civdef_ack_rate_limited' });
    await expect(
      C.call('experimental.civdef.alert.ack', { alert_id: restricted.alert_id, status: 'bogus' }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    expect(await dump(C)).toBe(before);
    await settle(A, B, C);
    const acks = (await A.call('experimental.civdef.alert.acks', { alert_id: restricted.alert_id })).acks;
    expect(acks.length).toBe(5);
    expect(acks.every((a: any) => a.acker === C.id && a.note === undefined)).toBe(true); // gossip copy has no note
    for (const n of [A, B, C]) await n.close();
  });

  it('§7.10 revocation propagates: B drops the next alert from the revoked cert with an audit entry', async () => {
    const { A, B, wc } = await world();
    // the root revokes through a node that holds the root key: use ROOT as a node
    const R = await createNode({
      seed: ROOT.seed,
      config: {
        civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId] },
        community: { community_id: A.id },
      } as never,
    });
    await link(A, R);
    await R.call('experimental.civdef.role.register', { cert: wc });
    await R.call('experimental.civdef.role.revoke', { cert_id: wc.cert_id, reason: 'Schlüssel verloren' });
    await settle(R, A, B);
    await expect(A.call('experimental.civdef.alert.publish', draft(wc.cert_id))).rejects.toMatchObject({
      code: 'civdef_role_revoked',
    });
    // a forged late alert from the revoked cert, delivered to B directly
    const { alertBodyOf } = await import('../../engine/civdef/alert.js');
    void alertBodyOf;
    const body = { ...svcOf(A).prepare(draft(wc.cert_id)) };
    const { signObject, keyPairFromSeed } = await import('../../engine/identity/identity.js');
    const alert = signObject(keyPairFromSeed(seedOf(111)), body as never);
    const out = await svcOf(B).receiveEnvelope({
      alert,
      cert_bundle: [wc],
      federation_hops: [],
      received_at: body.published_at,
      received_via: 'bus',
    });
    expect(out).toBe('dropped');
    const rows = await svcOf(B).auditRows();
    expect(rows.map((r) => r.entry.event)).toContain('dropped_revoked');
    expect(rows.map((r) => r.entry.event)).toContain('role_revoked');
    expect((await B.events.list({ type: 'civdef.alert.dropped.revoked' })).length).toBe(1);
    for (const n of [A, B, R]) await n.close();
  });

  it('§7.6/§7.7 audit: export verifies; filtered export verifies; tamper → first bad seq, degraded, recheckpoint', async () => {
    const { A, B, wc } = await world();
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await A.call('experimental.civdef.alert.publish', draft(wc.cert_id, { title: 'Zweite' }));
    await A.call('experimental.civdef.alert.cancel', {
      alert_id: r.alert_id,
      reason: 'Entwarnung',
      cert_id: wc.cert_id,
    });
    await svcOf(A).checkpoint();
    const full = await exportText(A);
    expect(verifyExport(full, { trustedChains: [A.id] })).toMatchObject({ ok: true });
    const filtered = await exportText(A, { alert_id: r.alert_id });
    expect(verifyExport(filtered)).toMatchObject({ ok: true });
    const lines = full.trim().split('\n');
    // removing or reordering a line names the seq
    const removed = [...lines.slice(0, 3), ...lines.slice(4)].join('\n');
    expect(verifyExport(removed)).toMatchObject({ ok: false, first_bad_seq: 2 });
    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    expect(verifyExport(swapped.join('\n'))).toMatchObject({ ok: false, first_bad_seq: 1 });
    expect(verifyExport(lines.slice(0, -1).join('\n'))).toMatchObject({ ok: false });
    // a flipped byte in any line (of the entry frames) fails at that line's seq
    for (let li = 1; li < lines.length - 1; li++) {
      const seq = JSON.parse(lines[li]!).entry.seq;
      const L = lines[li]!;
      const pos = L.indexOf('"signature":"ed25519:') + 25;
      const f = L.slice(0, pos) + (L[pos] === 'A' ? 'B' : 'A') + L.slice(pos + 1);
      const t = [...lines];
      t[li] = f;
      expect(verifyExport(t.join('\n'))).toMatchObject({ ok: false, first_bad_seq: seq });
    }
    // tamper in storage: flip the middle entry's `at`
    const db = (svcOf(A) as any).d.db;
    const rows = await svcOf(A).auditRows();
    const mid = rows[2]!;
    await db.put('civdef_audit', {
      ...mid,
      entry: { ...mid.entry, at: mid.entry.at.replace(/\d(?=Z$)/, (d: string) => String((+d + 1) % 10)) },
    });
    const rep = await svcOf(A).verifyAudit();
    expect(rep).toMatchObject({ ok: false, first_bad_seq: 2 });
    expect((await A.events.list({ type: 'civdef.audit.broken' })).length).toBe(1);
    await expect(A.call('experimental.civdef.alert.publish', draft(wc.cert_id))).rejects.toMatchObject({
      code: 'civdef_audit_chain_broken',
    });
    // reads and cancels still work
    expect((await A.call('experimental.civdef.alert.list', {})).alerts.length).toBe(1);
    const second = (await A.call('experimental.civdef.alert.list', {})).alerts[0].alert_id;
    await A.call('experimental.civdef.alert.cancel', {
      alert_id: second,
      reason: 'Fehler',
      cert_id: wc.cert_id,
    });
    await svcOf(A).recheckpoint('Eintrag 2 manipuliert, geprüft');
    expect((await A.call('experimental.civdef.alert.publish', draft(wc.cert_id))).alert_id).toBeTruthy();
    // the break stays visible in the export
    const after = await exportText(A);
    expect(verifyExport(after)).toMatchObject({ ok: false, first_bad_seq: 2 });
    for (const n of [A, B]) await n.close();
  });

  it('§7.8 a rewritten chain is caught by a witnessed checkpoint head', async () => {
    const { A, B, wc } = await world();
    await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await svcOf(A).checkpoint();
    await settle(A, B);
    const heads = await svcOf(B).witnessedHeads(A.id);
    expect(heads.length).toBe(1);
    const good = await exportText(A);
    expect(verifyExport(good, { witnesses: heads })).toMatchObject({ ok: true });
    const forgedHeads = heads.map((h) => ({
      ...h,
      head_hash: h.head_hash.replace(/^./, (c) => (c === '0' ? '1' : '0')),
    }));
    expect(verifyExport(good, { witnesses: forgedHeads })).toMatchObject({
      ok: false,
      first_bad_seq: heads[0]!.seq,
    });
    for (const n of [A, B]) await n.close();
  });

  it('§7.15 reload: alerts, certs and the audit survive and verify', async () => {
    const name = `civdef-reload-${Math.random()}`;
    const mk = () =>
      createNode({
        seed: seedOf(118),
        storage: 'indexeddb',
        name,
        config: { civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId], home_region: ISSUM } } as never,
      } as never);
    const A = await mk();
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call('experimental.civdef.role.register', { cert: wc });
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await A.close();
    const A2 = await mk();
    expect((await A2.call('experimental.civdef.alert.get', { alert_id: r.alert_id })).state).toBe('active');
    expect((await A2.call('experimental.civdef.role.list', {})).certs.length).toBe(1);
    expect(await svcOf(A2).verifyAudit()).toMatchObject({ ok: true });
    expect(verifyExport(await exportText(A2))).toMatchObject({ ok: true });
    await A2.close();
  });
});

describe('verify-audit CLI', () => {
  it('passes a real export and names the first bad seq of a tampered one', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { A, B, wc } = await world();
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await A.call('experimental.civdef.alert.cancel', {
      alert_id: r.alert_id,
      reason: 'Entwarnung',
      cert_id: wc.cert_id,
    });
    const text = await exportText(A);
    const dir = mkdtempSync(join(tmpdir(), 'civdef-'));
    writeFileSync(join(dir, 'ok.jsonl'), text);
    const lines = text.trim().split('\n');
    expect(lines[3]).toContain('"event":"published"');
    lines[3] = lines[3]!.replace('"event":"published"', '"event":"forwarded"');
    writeFileSync(join(dir, 'bad.jsonl'), lines.join('\n') + '\n');
    const run = (f: string, extra: string[] = []) => {
      try {
        return {
          code: 0,
          out: JSON.parse(
            execFileSync('npx', ['tsx', 'tools/verify-audit.ts', join(dir, f), ...extra], {
              encoding: 'utf8',
            }),
          ),
        };
      } catch (e) {
        const x = e as { status: number; stdout: string };
        return { code: x.status, out: JSON.parse(x.stdout) };
      }
    };
    expect(run('ok.jsonl', ['--roots', A.id])).toMatchObject({ code: 0, out: { ok: true } });
    expect(run('bad.jsonl')).toMatchObject({ code: 1, out: { ok: false, first_bad_seq: 2 } });
    expect(run('ok.jsonl', ['--roots', B.id])).toMatchObject({ code: 1, out: { ok: false } });
    for (const n of [A, B]) await n.close();
  }, 120_000);
});

describe('alert.subscribe', () => {
  it('replays active alerts, then streams live alerts and cancels; a fifth stream → capacity_exceeded', async () => {
    const { A, B, wc } = await world();
    const first = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await settle(A, B);
    const ac = new AbortController();
    const frames: any[] = [];
    const it = B.stream('experimental.civdef.alert.subscribe', { filter: { region: 'DE.NRW.Kleve' } }, {
      signal: ac.signal,
    } as never)[Symbol.asyncIterator]();
    frames.push((await it.next()).value);
    expect(frames[0].data).toMatchObject({
      type: 'alert',
      envelope: { alert: { alert_id: first.alert_id } },
    });
    const second = await A.call(
      'experimental.civdef.alert.publish',
      draft(wc.cert_id, { title: 'Zweite Warnung' }),
    );
    frames.push((await it.next()).value);
    expect(frames[1].data.envelope.alert.alert_id).toBe(second.alert_id);
    await A.call('experimental.civdef.alert.cancel', {
      alert_id: second.alert_id,
      reason: 'Entwarnung',
      cert_id: wc.cert_id,
    });
    frames.push((await it.next()).value);
    expect(frames[2].data).toMatchObject({ type: 'cancelled', alert_id: second.alert_id });
    await expect(
      (async () => {
        const its = [1, 2, 3, 4].map(() =>
          B.stream('experimental.civdef.alert.subscribe', { replay_active: false })[Symbol.asyncIterator](),
        );
        const p = its.map((x) => Promise.race([x.next(), new Promise((r) => setTimeout(r, 50))]));
        await Promise.all(p);
      })(),
    ).rejects.toMatchObject({ code: 'capacity_exceeded' });
    ac.abort();
    for (const n of [A, B]) await n.close();
  });
});

describe('M30 through the bus', () => {
  it('evidence_claim must exist when M30 is on (claim_not_found); mirror_to_evidence asserts a claim and audits `mirrored`', async () => {
    const A = await createNode({
      seed: seedOf(121),
      config: {
        evidence: { enabled: true },
        civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId], mirror_to_evidence: true },
      } as never,
    });
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call('experimental.civdef.role.register', { cert: wc });
    const before = await dump(A);
    await expect(
      A.call(
        'experimental.civdef.alert.publish',
        draft(wc.cert_id, { evidence_claim: 'A'.repeat(51) + 'Q' }),
      ),
    ).rejects.toMatchObject({ code: 'claim_not_found' });
    expect(await dump(A)).toBe(before);
    const r = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    const rows = await svcOf(A).auditRows();
    const m = rows.find((x) => x.entry.event === 'mirrored')!;
    expect(m.entry.alert_id).toBe(r.alert_id);
    const claim = await A.call('experimental.evidence.claim.get', {
      claim_id: (m.payload as { claim_id: string }).claim_id,
    });
    expect(claim.record).toMatchObject({ subject: ISSUM, predicate: 'civdef_alert', object: r.alert_id });
    await A.close();
  });
});

describe('drills', () => {
  it('an Exercise alert is listed with exercise=true and never notified as Actual; an info alert is in-app only', async () => {
    const { A, B, wc } = await world();
    const ex = await A.call('experimental.civdef.alert.publish', draft(wc.cert_id, { status: 'exercise' }));
    const info = await A.call(
      'experimental.civdef.alert.publish',
      draft(wc.cert_id, { severity: 'info', title: 'Hinweis' }),
    );
    await settle(A, B);
    const rec = async (id: string) => (svcOf(B) as any).d.db.get('civdef_alerts', id);
    const got = await B.call('experimental.civdef.alert.get', { alert_id: ex.alert_id });
    expect(got).toMatchObject({ exercise: true, matched: true });
    expect(svcOf(B).shouldNotify(await rec(ex.alert_id))).toBe(false);
    expect(svcOf(B).shouldNotify(await rec(info.alert_id))).toBe(false);
    for (const n of [A, B]) await n.close();
  });
});
