/**
 * M31 §4.3 / §7.12 bridges: community X (A publishes, Bx the bridge's X side) → bridge → community Y
 * (By the bridge's Y side, D a resident, E with other trust roots). D receives the alert with
 * `federation_hops=[By]` and received_via `federation`; E gets it as a foreign role (event, never a
 * loud notification); the bridge audits `forwarded` and emits `civdef.alert.forwarded`. Not forwarded:
 * no `federation` channel, a role-restricted alert, federation_forward off, a destination without civdef,
 * a tampered envelope (nothing stored). Cancels and revocations cross the same bridge (audit `forwarded`,
 * re-emitted with the hops); tampered or unauthorized ones are refused with the seed code and change no
 * store; loops and the hop limit stop them, and a two-way bridge does not ping-pong.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { startBridge } from '../../engine/civdef/bridge.js';
import { iso, signRevocation } from '../../engine/civdef/role.js';
import { createNode, type HearthNode } from '../../engine/index.js';
import {
  PUB,
  ROGUE,
  ROOT,
  cert,
  civNode,
  draft,
  dump,
  link,
  settle,
  signer,
  svcOf,
} from './civdef-helpers.js';

const ISSUM = 'DE.NRW.Kleve.Issum';
const WEHR = `${ISSUM}.Feuerwehr.Wehrleiter`;
const P = 'experimental.civdef.';
const FED = { region: ISSUM, bbox: null, roles: [], channels: ['local', 'push', 'federation'] };
const quiet = { info: () => {}, warn: (m: string) => console.warn(m) };

async function has(n: HearthNode, id: string): Promise<boolean> {
  return (await n.call(`${P}alert.list`, { active_only: false })).alerts.some(
    (a: { alert_id: string }) => a.alert_id === id,
  );
}
const rec = (n: HearthNode, id: string) => (svcOf(n) as any).d.db.get('civdef_alerts', id);
const fwdRows = async (n: HearthNode) =>
  (await svcOf(n).auditRows()).filter((x) => x.entry.event === 'forwarded').map((x) => x.payload as any);
async function waitFor(cond: () => Promise<boolean>, ...ns: HearthNode[]): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await cond()) return true;
    await settle(...ns);
  }
  return cond();
}

describe('M31 bridge between two communities', () => {
  it('forwards a federation alert with hops=[bridge]; foreign role at E; the rules that stop it', async () => {
    const A = await civNode(161, { home_region: ISSUM });
    const Bx = await civNode(162, { home_region: ISSUM }, A.id);
    const By = await civNode(163, { home_region: 'DE.NRW.Kleve', federation_forward: true });
    const D = await civNode(164, { home_region: ISSUM }, By.id);
    const E = await civNode(165, { home_region: ISSUM, trust_roots_extra: [ROGUE.nodeId] }, By.id);
    await link(A, Bx);
    await link(By, D);
    await link(By, E);
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call(`${P}role.register`, { cert: wc });
    const bridge = startBridge(Bx, { id: By.id, communityId: By.communityId }, quiet);
    const all = [A, Bx, By, D, E];

    const r = await A.call(`${P}alert.publish`, draft(wc.cert_id, { target: FED }));
    expect(await waitFor(() => has(D, r.alert_id), ...all)).toBe(true);
    const atD = await D.call(`${P}alert.get`, { alert_id: r.alert_id });
    expect(atD.envelope.federation_hops).toEqual([By.id]);
    expect(atD.envelope.received_via).toBe('federation');
    expect(atD.foreign_role).toBe(false);
    const fwdAudit = (await svcOf(By).auditRows()).filter((x) => x.entry.event === 'forwarded');
    expect(fwdAudit).toHaveLength(1);
    expect(fwdAudit[0]!.payload).toMatchObject({ alert_id: r.alert_id, to_community: By.communityId });
    expect(await By.events.list({ type: 'civdef.alert.forwarded' })).toHaveLength(1);
    // E trusts other roots: delivered as a foreign role, never loud
    expect(await waitFor(() => has(E, r.alert_id), ...all)).toBe(true);
    const atE = await E.call(`${P}alert.get`, { alert_id: r.alert_id });
    expect(atE.foreign_role).toBe(true);
    expect(
      (await E.events.list({ type: 'civdef.alert.foreign_role' })).filter((ev) => ev.author === E.id),
    ).toHaveLength(1);
    const recE = await (svcOf(E) as any).d.db.get('civdef_alerts', r.alert_id);
    expect(recE.foreign_role).toBe(true);
    expect(svcOf(E).shouldNotify(recE)).toBe(false);

    // no federation channel, and a role-restricted alert: not forwarded
    const local = await A.call(`${P}alert.publish`, draft(wc.cert_id, { title: 'Nur lokal' }));
    const restricted = await A.call(
      `${P}alert.publish`,
      draft(wc.cert_id, { title: 'Nur THW', target: { ...FED, roles: ['DE.NRW.Kleve.THW'] } }),
    );
    expect(await waitFor(() => has(Bx, restricted.alert_id), ...all)).toBe(true);
    await settle(...all);
    expect(await has(D, local.alert_id)).toBe(false);
    expect(await has(D, restricted.alert_id)).toBe(false);
    expect(
      await svcOf(By).forwardIn((await Bx.call(`${P}alert.get`, { alert_id: local.alert_id })).envelope, 'y'),
    ).toEqual({
      forwarded: false,
      reason: 'no federation channel',
    });

    // a tampered envelope is not forwarded and leaves the bridge's stores untouched
    const r2 = await A.call(`${P}alert.publish`, draft(wc.cert_id, { title: 'Zweite Warnung', target: FED }));
    expect(await waitFor(() => has(Bx, r2.alert_id), ...all)).toBe(true);
    bridge.stop();
    await bridge.done;
    const env2 = (await Bx.call(`${P}alert.get`, { alert_id: r2.alert_id })).envelope;
    const before = await dump(By);
    const bad = { ...env2, alert: { ...env2.alert, body: env2.alert.body + '!' } };
    expect((await svcOf(By).forwardIn(bad, 'y')).forwarded).toBe(false);
    // the bridge itself already in the hops (a loop), and too many hops
    expect(await svcOf(By).forwardIn({ ...env2, federation_hops: [By.id] }, 'y')).toMatchObject({
      reason: 'loop',
    });
    expect(await svcOf(By).forwardIn({ ...env2, federation_hops: Array(8).fill(A.id) }, 'y')).toMatchObject({
      reason: 'too many hops',
    });
    expect(await dump(By)).toBe(before);
    for (const n of all) await n.close();
  }, 120_000);

  it('a bridge whose destination side has federation_forward off, or no civdef, forwards nothing', async () => {
    const A = await civNode(171, { home_region: ISSUM });
    const Bx = await civNode(172, { home_region: ISSUM }, A.id);
    const Off = await civNode(173, { home_region: 'DE.NRW.Kleve', federation_forward: false });
    const NoCiv = await civNode(174, { home_region: 'DE.NRW.Kleve', federation_forward: true });
    await NoCiv.disable('civdef');
    await link(A, Bx);
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call(`${P}role.register`, { cert: wc });
    const b1 = startBridge(Bx, { id: Off.id, communityId: Off.communityId }, quiet);
    const b2 = startBridge(Bx, { id: NoCiv.id, communityId: NoCiv.communityId }, quiet);
    const r = await A.call(`${P}alert.publish`, draft(wc.cert_id, { target: FED }));
    expect(await waitFor(() => has(Bx, r.alert_id), A, Bx)).toBe(true);
    await settle(A, Bx);
    expect(await has(Off, r.alert_id)).toBe(false);
    expect(await Off.events.list({ type: 'civdef.alert.forwarded' })).toHaveLength(0);
    expect(await NoCiv.events.list({ type: 'civdef.alert.forwarded' })).toHaveLength(0);
    for (const b of [b1, b2]) b.stop();
    await Promise.all([b1.done, b2.done]);
    for (const n of [A, Bx, Off, NoCiv]) await n.close();
  }, 120_000);

  it('carries a cancel across the bridge: audited forwarded, re-emitted with hops; refused when tampered or unauthorized; loops and hop limit', async () => {
    const A = await civNode(181, { home_region: ISSUM });
    const Bx = await civNode(182, { home_region: ISSUM, federation_forward: true }, A.id);
    const By = await civNode(183, { home_region: 'DE.NRW.Kleve', federation_forward: true });
    const D = await civNode(184, { home_region: ISSUM }, By.id);
    await link(A, Bx);
    await link(By, D);
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call(`${P}role.register`, { cert: wc });
    // a two-way bridge: what By forwards into Y comes back to Bx and must stop there
    const there = startBridge(Bx, By, quiet);
    const back = startBridge(By, Bx, quiet);
    const all = [A, Bx, By, D];
    const r = await A.call(`${P}alert.publish`, draft(wc.cert_id, { target: FED }));
    const r2 = await A.call(`${P}alert.publish`, draft(wc.cert_id, { title: 'Zweite Warnung', target: FED }));
    expect(await waitFor(async () => (await has(D, r.alert_id)) && has(D, r2.alert_id), ...all)).toBe(true);

    // the publisher cancels in X: the cancel reaches D in Y
    await A.call(`${P}alert.cancel`, { alert_id: r.alert_id, reason: 'Entwarnung', cert_id: wc.cert_id });
    expect(await waitFor(async () => (await rec(D, r.alert_id))?.state === 'cancelled', ...all)).toBe(true);
    await settle(...all);
    const cancel = (await rec(Bx, r.alert_id)).cancel;
    expect((await rec(D, r.alert_id)).cancel).toEqual(cancel);
    expect((await rec(By, r.alert_id)).state).toBe('cancelled');
    const listD = (await D.call(`${P}alert.list`, { active_only: true })).alerts.map((a: any) => a.alert_id);
    expect(listD).not.toContain(r.alert_id);
    expect(listD).toContain(r2.alert_id);
    // audited at the bridge's Y side as a forward-hop record; re-emitted in Y with the hops
    const hopRecs = (await fwdRows(By)).filter((p) => p.cancel_sha);
    expect(hopRecs).toHaveLength(1);
    expect(hopRecs[0]).toMatchObject({ alert_id: r.alert_id, to_community: By.communityId, hops: [By.id] });
    const evs = (await By.events.list({ type: 'civdef.alert.cancelled' })).filter((e) => e.author === By.id);
    expect(evs).toHaveLength(1);
    expect((evs[0]!.data as any).federation_hops).toEqual([By.id]);
    // no ping-pong: Bx (the way back) forwarded nothing; By's chain still verifies
    expect(await fwdRows(Bx)).toHaveLength(0);
    expect((await svcOf(By).verifyAudit()).ok).toBe(true);

    // refused, nothing stored: a cancel moved to another alert (signature broken), a cancel by a
    // Wehrleiter cert without alert.cancel, a cancel claiming a cert held by another node
    const before = [await dump(By), await dump(D)];
    const moved = { cancel: { ...cancel, alert_id: r2.alert_id }, by_cert_bundle: [wc] };
    await expect(svcOf(By).forwardCancelIn(moved, 'y')).rejects.toMatchObject({
      code: 'civdef_cert_invalid',
    });
    const rc = cert(ROOT, ROGUE.nodeId, WEHR, ISSUM, ['alert.publish']);
    const rogue = (by_cert: string) =>
      signer(ROGUE)({
        alert_id: r2.alert_id,
        reason: 'gefälscht',
        cancelled_at: iso(Date.now()),
        by: ROGUE.nodeId,
        by_cert,
      });
    await expect(
      svcOf(By).forwardCancelIn({ cancel: rogue(rc.cert_id), by_cert_bundle: [rc] }, 'y'),
    ).rejects.toMatchObject({ code: 'civdef_cert_out_of_scope' });
    await expect(
      svcOf(By).forwardCancelIn({ cancel: rogue(wc.cert_id), by_cert_bundle: [wc] }, 'y'),
    ).rejects.toMatchObject({ code: 'civdef_cert_not_owned' });
    await settle(...all);
    expect([await dump(By), await dump(D)]).toEqual(before);
    expect((await rec(D, r2.alert_id)).state).toBe('active');

    // with the bridge down, A cancels r2: the frame with the bridge already in the hops is a loop,
    // eight hops are too many (nothing stored); without them it is forwarded once, then idempotent
    there.stop();
    back.stop();
    await Promise.all([there.done, back.done]);
    await A.call(`${P}alert.cancel`, { alert_id: r2.alert_id, reason: 'Entwarnung', cert_id: wc.cert_id });
    expect(await waitFor(async () => (await rec(Bx, r2.alert_id))?.state === 'cancelled', A, Bx)).toBe(true);
    const frame = { cancel: (await rec(Bx, r2.alert_id)).cancel, by_cert_bundle: [wc] };
    const b2 = await dump(By);
    expect(await svcOf(By).forwardCancelIn({ ...frame, federation_hops: [By.id] }, 'y')).toMatchObject({
      reason: 'loop',
    });
    expect(
      await svcOf(By).forwardCancelIn({ ...frame, federation_hops: Array(8).fill(A.id) }, 'y'),
    ).toMatchObject({ reason: 'too many hops' });
    expect(await dump(By)).toBe(b2);
    expect(await svcOf(By).forwardCancelIn({ ...frame, federation_hops: [A.id] }, 'y')).toEqual({
      forwarded: true,
    });
    expect(await svcOf(By).forwardCancelIn(frame, 'y')).toMatchObject({ reason: 'already cancelled' });
    expect(await waitFor(async () => (await rec(D, r2.alert_id))?.state === 'cancelled', By, D)).toBe(true);
    expect((await fwdRows(By)).filter((p) => p.cancel_sha).map((p) => p.hops)).toEqual([
      [By.id],
      [A.id, By.id],
    ]);
    for (const n of all) await n.close();
  }, 120_000);

  it('carries a revocation across the bridge: applied and audited in Y; forged or tampered refused; loops and hop limit', async () => {
    const A = await civNode(191, { home_region: ISSUM });
    const Bx = await civNode(192, { home_region: ISSUM }, A.id);
    const By = await civNode(193, { home_region: 'DE.NRW.Kleve', federation_forward: true });
    const D = await civNode(194, { home_region: ISSUM }, By.id);
    // the root's own node in X revokes (as in §7.10)
    const R = await createNode({
      seed: ROOT.seed,
      config: {
        civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId] },
        community: { community_id: A.id },
      } as never,
    });
    await link(A, Bx);
    await link(A, R);
    await link(By, D);
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call(`${P}role.register`, { cert: wc });
    const bridge = startBridge(Bx, By, quiet);
    const all = [A, Bx, R, By, D];
    const r = await A.call(`${P}alert.publish`, draft(wc.cert_id, { target: FED }));
    expect(await waitFor(() => has(D, r.alert_id), ...all)).toBe(true);

    // refused before any write: a revocation signed by a key outside the cert's chain, a tampered one
    const rev0 = { cert_id: wc.cert_id, revoked_at: iso(Date.now()), reason: 'Schlüssel verloren' };
    const forged = signRevocation(signer(ROGUE), { ...rev0, revoked_by: ROGUE.nodeId });
    const genuine = signRevocation(signer(ROOT), { ...rev0, revoked_by: ROOT.nodeId });
    const before = await dump(By);
    await expect(svcOf(By).forwardRevocationIn({ revocation: forged, cert: wc }, 'y')).rejects.toMatchObject({
      code: 'civdef_cert_out_of_scope',
    });
    await expect(
      svcOf(By).forwardRevocationIn({ revocation: { ...genuine, reason: 'anders' }, cert: wc }, 'y'),
    ).rejects.toMatchObject({ code: 'civdef_cert_invalid' });
    const other = cert(ROOT, ROGUE.nodeId, WEHR, ISSUM, PUB);
    await expect(
      svcOf(By).forwardRevocationIn({ revocation: { ...genuine, cert_id: other.cert_id }, cert: wc }, 'y'),
    ).rejects.toMatchObject({ code: 'civdef_cert_invalid' });
    // loop and hop limit, also for a genuine revocation
    expect(
      await svcOf(By).forwardRevocationIn({ revocation: genuine, cert: wc, federation_hops: [By.id] }, 'y'),
    ).toMatchObject({ reason: 'loop' });
    expect(
      await svcOf(By).forwardRevocationIn(
        { revocation: genuine, cert: wc, federation_hops: Array(8).fill(A.id) },
        'y',
      ),
    ).toMatchObject({ reason: 'too many hops' });
    expect(await dump(By)).toBe(before);
    expect(
      svcOf(By)
        .listRoles({ include_inactive: true })
        .some((c: any) => c.state === 'revoked'),
    ).toBe(false);

    // the root revokes in X: the revocation crosses the bridge and reaches D
    await R.call(`${P}role.register`, { cert: wc });
    await R.call(`${P}role.revoke`, { cert_id: wc.cert_id, reason: 'Schlüssel verloren' });
    const revokedAt = async (n: HearthNode) =>
      svcOf(n)
        .listRoles({ include_inactive: true })
        .some((c: any) => c.cert.cert_id === wc.cert_id && c.state === 'revoked');
    expect(await waitFor(() => revokedAt(D), ...all)).toBe(true);
    expect(await revokedAt(By)).toBe(true);
    expect((await rec(D, r.alert_id)).publisher_revoked).toBe(true);
    // audited in Y: role_revoked at the bridge and at D, plus the bridge's forward-hop record
    for (const n of [By, D])
      expect((await svcOf(n).auditRows()).filter((x) => x.entry.event === 'role_revoked')).toHaveLength(1);
    expect((await fwdRows(By)).filter((p) => p.revocation_sha)).toEqual([
      expect.objectContaining({ cert_id: wc.cert_id, to_community: By.communityId, hops: [By.id] }),
    ]);
    const evs = (await By.events.list({ type: 'civdef.role.revoked' })).filter((e) => e.author === By.id);
    expect(evs.map((e) => (e.data as any).federation_hops)).toEqual([[By.id]]);
    for (const n of [By, D]) expect((await svcOf(n).verifyAudit()).ok).toBe(true);
    // the same revocation again is not forwarded twice
    const real = (await svcOf(Bx).listRoles({ include_inactive: true })).find(
      (c: any) => c.cert.cert_id === wc.cert_id,
    )!.revocation;
    expect(await svcOf(By).forwardRevocationIn({ revocation: real, cert: wc }, 'y')).toMatchObject({
      reason: 'already here',
    });
    // an alert of the revoked cert is no longer bridged
    const env = (await Bx.call(`${P}alert.get`, { alert_id: r.alert_id })).envelope;
    const fresh = await civNode(195, { home_region: 'DE.NRW.Kleve', federation_forward: true });
    await svcOf(fresh).forwardRevocationIn({ revocation: real, cert: wc }, 'z');
    expect(await svcOf(fresh).forwardIn(env, 'z')).toMatchObject({ reason: 'publisher revoked' });
    bridge.stop();
    await bridge.done;
    for (const n of [...all, fresh]) await n.close();
  }, 120_000);
});
