/**
 * Issue #18 against engine nodes linked in memory, shaped like the attacks and scaled to run in
 * seconds: remote capability names that would become keys and labels, a call flood to distinct
 * names, sync amplification, deep input. Every loop is bounded; no wall-clock speed asserts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { HnError, type HearthNode } from '../../engine/index.js';
import { createNode } from '../../engine/index.js';
import { descriptor } from '../../engine/modules/registry.js';
import type { ControlMessage } from '../../engine/net/control.js';
import { STREAM_RECEIVE_QUEUE_MAX } from '../../engine/net/budget.js';
import { link, linkedPair } from './helpers.js';

const run = promisify(execFile);
const nodes: HearthNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'fulfilled' ? 'ok' : r.reason instanceof HnError ? r.reason.code : `raw:${String(r.reason)}`;

describe('nodes under attack (issue #18)', () => {
  it('2. 100 KiB and many distinct capability names: heap back within 10 % after GC, /metrics bounded', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'tests/unit/hostile-names.child.ts'],
      { timeout: 120_000, maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
      base: number;
      rounds: number[];
      codes: Record<string, number>;
      metricsBytes: number;
      longestLine: number;
      linkOpen: boolean;
    };
    for (const h of r.rounds) expect(h).toBeLessThanOrEqual(r.base * 1.1);
    // every call was answered with a code (none timed out, none raw)
    expect(r.codes.timeout ?? 0).toBe(0);
    expect(r.codes.other ?? 0).toBe(0);
    expect(r.codes.bad_request).toBeGreaterThan(0); // names no one can register
    expect(r.metricsBytes).toBeLessThan(64 * 1024);
    expect(r.longestLine).toBeLessThan(400);
    expect(r.linkOpen).toBe(true);
  }, 150_000);

  it('4. a signed-call flood to distinct names is answered rate_limited before signatures; an honest peer keeps its link and calls', async () => {
    // default heartbeats (5 s, gone after 3 missed): attacker, victim and honest peer share this
    // process, so the attacker's own signing must not be what starves the honest link
    const [victim, attacker] = await linkedPair();
    const honest = await createNode({ config: { community: { community_id: victim.id } } });
    nodes.push(victim, attacker, honest);
    await link(victim, honest);
    const s = attacker.session(victim.id)!;
    const sigFailBefore = victim.metrics.total('hearthnet_signature_failures_total');
    let stop = false;
    const honestCodes: string[] = [];
    const honestLoop = (async () => {
      while (!stop && honestCodes.length < 200) {
        const r = await Promise.allSettled([
          honest.call('protocol.version.list', {}, { peer: victim.id, timeout_ms: 20_000 }),
        ]);
        honestCodes.push(codeOf(r[0]!));
        await sleep(100);
      }
    })();
    // 3,000 signed calls to distinct names, 100 per tick (bounded)
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = s.call({ name: `flood.n${i}`, version: '1.0' }, { i }, { timeout_ms: 30_000 });
      p.catch(() => undefined); // settled below; rejections are the expected answers
      pending.push(p);
      if (i % 100 === 99) await sleep(0);
    }
    const flood = await Promise.allSettled(pending);
    stop = true;
    await honestLoop;
    const codes = flood.map(codeOf);
    const limited = flood.filter(
      (r) => r.status === 'rejected' && r.reason instanceof HnError && r.reason.code === 'rate_limited',
    ) as PromiseRejectedResult[];
    expect(limited.length).toBeGreaterThan(2000);
    expect(limited.every((r) => (r.reason as HnError).retry_after_ms! > 0)).toBe(true);
    expect(codes.filter((c) => c === 'timeout')).toEqual([]); // never silence
    expect(codes.filter((c) => c.startsWith('raw:'))).toEqual([]);
    // the honest peer: every call answered ok, its link still open (not marked gone)
    expect(honestCodes.length).toBeGreaterThan(0);
    expect(honestCodes.every((c) => c === 'ok')).toBe(true);
    expect(victim.peers().find((p) => p.id === honest.id)?.state).toBe('open');
    expect(victim.metrics.total('hearthnet_signature_failures_total')).toBe(sigFailBefore);
    expect(victim.metrics.seriesCount('hearthnet_rate_limited_total')).toBeLessThan(10);
  }, 120_000);

  it('5. repeated sync.heads with an empty author map: replies ≤ new data + 10 × request bytes; excess refused rate_limited', async () => {
    const [victim, attacker] = await linkedPair({ heartbeatMs: 1000 }, { heartbeatMs: 1000 });
    nodes.push(victim, attacker);
    for (let i = 0; i < 300; i++) await victim.events.append('test.item.added', { i, pad: 'p'.repeat(200) });
    await sleep(500); // live pushes settle
    const s = attacker.session(victim.id)!;
    const logBytes = (await victim.events.list({ limit: 10_000 })).reduce(
      (n, ev) => n + JSON.stringify(ev).length,
      0,
    );
    const inBefore = s.mux.bytesIn;
    let reqBytes = 0;
    for (let i = 0; i < 200; i++) {
      const msg = {
        type: 'sync.heads',
        id: `atk${i}`,
        heads: { community_id: victim.id, authors: {} },
      };
      reqBytes += JSON.stringify(msg).length;
      await s.mux.sendControl(msg);
    }
    await sleep(3000); // replies drain
    const replyBytes = s.mux.bytesIn - inBefore;
    // the log once (new data for this peer) plus at most 10× what was asked
    expect(replyBytes).toBeLessThanOrEqual(logBytes * 1.2 + 10 * reqBytes);
    expect(
      victim.metrics.get('hearthnet_rate_limited_total', { capability: '_sync', reason: 'sync' }),
    ).toBeGreaterThan(0);
    // an honest sync still works afterwards (its budget refills)
    await sleep(2100);
    await expect(attacker.session(victim.id)!.sync()).resolves.toBeTruthy();
  }, 60_000);

  it('lower: 10,000-deep input gives the caller an HnError, locally and towards a peer', async () => {
    const [a, b] = await linkedPair();
    nodes.push(a, b);
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const e = await a.call('protocol.version.list', deep, { peer: b.id }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HnError);
    expect((e as HnError).code).toBe('bad_request');
    // locally: answered or refused with an HnError, never a raw RangeError
    const local = await a.call('protocol.version.list', deep).catch((x: unknown) => x);
    if (local instanceof Error) expect(local).toBeInstanceOf(HnError);
    await expect(a.events.append('test.item.added', { deep })).rejects.toBeInstanceOf(HnError);
  });

  it('lower: a peer that streams past the ack window fails its own stream; the receive queue stays bounded', async () => {
    const [victim, attacker] = await linkedPair();
    nodes.push(victim, attacker);
    attacker.bus.register({
      descriptor: descriptor('llm.count', 'core', {
        stream_schema: { type: 'object', required: ['event', 'data'] },
        trust_required: 'member',
      }),
      handler: async function* () {
        for (let i = 1; i <= 3; i++) yield { event: 'tick', data: { i } };
        return { total: 3 };
      },
    });
    // the attacker's link sends 2,000 frames past the first one, ignoring the receiver's window
    const s = attacker.session(victim.id)!;
    const send = s.send.bind(s);
    let flooded = 0;
    s.send = (m: ControlMessage) => {
      const f = m as ControlMessage & { type: string; seq?: number };
      const out = send(m);
      if (f.type === 'frame' && flooded === 0)
        for (let i = 1; i <= 2000; i++, flooded++) void send({ ...f, seq: f.seq! + i } as ControlMessage);
      return out;
    };
    const got: unknown[] = [];
    const consumed = (async () => {
      const frames = victim.stream('llm.count', {}, { peer: attacker.id });
      await sleep(300); // the victim is slow to read: the frames pile up in its receive queue
      for await (const f of frames) got.push(f);
    })();
    const r = await Promise.allSettled([consumed]);
    expect(flooded).toBe(2000);
    expect(codeOf(r[0]!)).toBe('bad_request');
    expect(got.length).toBeLessThanOrEqual(STREAM_RECEIVE_QUEUE_MAX);
    // the victim's link and calls go on
    expect(await victim.call('protocol.version.list', {}, { peer: attacker.id })).toMatchObject({
      current: '3.0.0',
    });
  });
});
