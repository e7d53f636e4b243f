import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEbkhDouble, type EbkhDouble } from '../../tools/ebkh-double/server.js';
import { HttpEbkhAdapter } from '../../engine/evidence/ebkh_adapter.js';
import { actor, newWorld, type World } from './evidence-helpers.js';

let dbl: EbkhDouble;
beforeAll(async () => {
  dbl = await startEbkhDouble();
});
afterAll(async () => {
  await dbl.close();
});

const fast = { retryDelaysMs: [5, 10], timeoutMs: 500 };
async function pair(w: World) {
  w.settings = { ebkh_endpoint: dbl.url, ebkh_token: 'secret-token' };
  const A = await actor(w, 1, { ebkh: fast });
  const B = await actor(w, 2, { ebkh: fast });
  return [A, B] as const;
}
const reset = () => {
  dbl.fault = null;
  dbl.table.clear();
  dbl.pageSize = 2;
  dbl.pagesServed = 0;
  for (const k of Object.keys(dbl.calls)) delete dbl.calls[k];
};

describe('EBKH adapter against the local double (real HTTP, 127.0.0.1)', () => {
  it('push then pull round-trips a geo: claim; a bbox query finds it; a second sync adds nothing', async () => {
    reset();
    const w = newWorld();
    const [A, B] = await pair(w);
    const { claim_id } = await A.svc.assert({
      subject: 'Water point 7',
      predicate: 'located_at',
      object: 'geo:50.9375,6.9603',
    });
    for (let i = 0; i < 4; i++)
      await A.svc.assert({ subject: 'Water point 7', predicate: 'note', object: `n${i}` });
    const push = await A.svc.ebkhSync({ direction: 'push' });
    expect(push).toMatchObject({ pushed: 5, partial: false, error: null, ebkh_node_id: dbl.node_id });
    expect(dbl.auth.every((h) => h === 'Bearer secret-token')).toBe(true);
    // B knows the subject locally, so its pull asks for it (pages of 2)
    await B.svc.assert({ subject: 'Water point 7', predicate: 'status', object: 'open' });
    const pull = await B.svc.ebkhSync({ direction: 'pull' });
    expect(pull).toMatchObject({ pulled: 5, partial: false, rejected: [] });
    expect(dbl.calls['hn.claims.pull']).toBe(3);
    expect((await B.svc.get({ claim_id })).record).toEqual(await A.svc.record(claim_id));
    expect((await B.svc.store.bbox([6.9, 50.9, 7.0, 51.0])).map((r) => r.claim_id)).toEqual([claim_id]);
    expect(await B.svc.store.bbox([7.5, 50.9, 8.0, 51.0])).toEqual([]);
    const remote = await new HttpEbkhAdapter({ endpoint: dbl.url }).querySpatial(
      [6.9, 50.9, 7.0, 51.0],
      'located_at',
    );
    expect(remote.map((r) => (r as { claim_id: string }).claim_id)).toEqual([claim_id]);
    // pulled claims are not re-gossiped
    expect((await B.events()).filter((e) => e.event_type === 'evidence.claim.asserted')).toHaveLength(1);
    // again: nothing added on either side
    const dumpB = await B.svc.store.dumpRecords();
    const again = await B.svc.ebkhSync({ direction: 'bidi' });
    expect(again).toMatchObject({ pulled: 0, partial: false });
    expect(await B.svc.store.dumpRecords()).toBe(dumpB);
    // A's bidi pulls B's own claim (B pushed it in its bidi sync), then nothing more
    expect(await A.svc.ebkhSync({})).toMatchObject({ pushed: 0, pulled: 1, partial: false });
    const dumpA = await A.svc.store.dumpRecords();
    // `since` has whole-second granularity, so the double may resend records: they count as duplicates
    expect(await A.svc.ebkhSync({})).toMatchObject({ pushed: 0, pulled: 0, partial: false });
    expect(await A.svc.store.dumpRecords()).toBe(dumpA);
    const evs = (await A.events()).filter((e) => e.event_type === 'evidence.ebkh.synced');
    expect(evs).toHaveLength(3);
    expect(JSON.stringify(evs.map((e) => e.data))).not.toContain('secret-token');
  });

  it('double down → partial report with ebkh_unavailable, no throw, a sync_partial event', async () => {
    reset();
    const w = newWorld();
    const [A] = await pair(w);
    await A.svc.assert({ subject: 's', predicate: 'p', object: 'o' });
    dbl.fault = 'down';
    const r = await A.svc.ebkhSync({});
    expect(r.partial).toBe(true);
    expect(r.error?.code).toBe('ebkh_unavailable');
    expect(dbl.calls['hn.identity']).toBe(3); // first try + two retries on network errors
    const ev = (await A.events()).find((e) => e.event_type === 'evidence.ebkh.sync_partial');
    expect(ev?.data).toMatchObject({ partial: true, error: { code: 'ebkh_unavailable' } });
  });

  it('a bad-signature record lands in rejected and is not stored', async () => {
    reset();
    const w = newWorld();
    const [A, B] = await pair(w);
    await A.svc.assert({ subject: 'hub', predicate: 'p', object: 'o' });
    await A.svc.ebkhSync({ direction: 'push' });
    await B.svc.assert({ subject: 'hub', predicate: 'q', object: 'mine' });
    dbl.fault = 'bad_signature_record';
    const before = await B.svc.store.dumpRecords();
    const r = await B.svc.ebkhSync({ direction: 'pull' });
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0]!.code).toBe('claim_signature_invalid');
    expect(r.pulled).toBe(0);
    expect(await B.svc.store.dumpRecords()).toBe(before);
  });

  it('500 is retried then partial; 401 and malformed JSON are not retried; slow → timeout', async () => {
    const w = newWorld();
    const [A] = await pair(w);
    for (const [fault, tries] of [
      ['500', 3],
      ['401', 1],
      ['malformed_json', 1],
      ['slow', 3],
    ] as const) {
      reset();
      dbl.fault = fault;
      dbl.slowMs = 800;
      const r = await A.svc.ebkhSync({ direction: 'push' });
      expect(r.partial, fault).toBe(true);
      expect(r.error?.code).toBe('ebkh_unavailable');
      expect(dbl.calls['hn.identity'], fault).toBe(tries);
    }
  });

  it('fail after page N: partial, counts of completed pages kept, since not advanced; concurrent callers share', async () => {
    reset();
    const w = newWorld();
    const [A, B] = await pair(w);
    for (let i = 0; i < 5; i++) await A.svc.assert({ subject: 'paged', predicate: 'n', object: `v${i}` });
    await A.svc.ebkhSync({ direction: 'push' });
    await B.svc.assert({ subject: 'paged', predicate: 'm', object: 'x' });
    dbl.fault = { fail_after_page: 1 };
    dbl.pagesServed = 0;
    const [r1, r2] = await Promise.all([
      B.svc.ebkhSync({ direction: 'pull' }),
      B.svc.ebkhSync({ direction: 'pull' }),
    ]);
    expect(r1).toBe(r2);
    expect(r1).toMatchObject({ partial: true, pulled: 2 });
    dbl.fault = null;
    const r3 = await B.svc.ebkhSync({ direction: 'pull' });
    expect(r3).toMatchObject({ partial: false, pulled: 3, duplicates: 2 });
  });
});
