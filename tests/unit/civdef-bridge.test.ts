/**
 * M31 §4.3 / §7.12 bridges: community X (A publishes, Bx the bridge's X side) → bridge → community Y
 * (By the bridge's Y side, D a resident, E with other trust roots). D receives the alert with
 * `federation_hops=[By]` and received_via `federation`; E gets it as a foreign role (event, never a
 * loud notification); the bridge audits `forwarded` and emits `civdef.alert.forwarded`. Not forwarded:
 * no `federation` channel, a role-restricted alert, federation_forward off, a destination without civdef,
 * a tampered envelope (nothing stored).
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { startBridge } from '../../engine/civdef/bridge.js';
import type { HearthNode } from '../../engine/index.js';
import { PUB, ROGUE, ROOT, cert, civNode, draft, dump, link, settle, svcOf } from './civdef-helpers.js';

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
});
