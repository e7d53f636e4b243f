/**
 * Relay revocations survive a restart (issue #18): a restarted relay keeps refusing a revoked
 * member's pass (and its invitees') before the founder rejoins; the file is written atomically,
 * bounded, and a corrupt or oversized one starts the relay with none and a logged warning.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../engine/identity/identity.js';
import {
  RELAY_CLOSE_POLICY,
  delegateRelayPass,
  issueRelayPass,
  revokeRelayPass,
} from '../../engine/net/relay-wire.js';
import {
  REVOCATIONS_FILE_MAX_BYTES,
  REVOCATIONS_PER_ROOM_MAX,
  createRevocationStore,
} from '../../relay/revocations.js';
import { createRelay } from '../../relay/server.js';
import { passClients } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'hn-revoke-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
};
const founder = generateKeyPair();
const room = founder.nodeId;

async function startRelay(file: string, logs: Record<string, unknown>[] = []) {
  const relay = await createRelay({ log: (r) => logs.push(r), revocationsFile: file });
  cleanups.push(() => relay.close());
  const { client, errorsOf } = passClients(relay.wsUrl, room, (f) => cleanups.push(f));
  return { relay, client, errorsOf };
}

describe('relay revocations across a restart', () => {
  it('a restarted relay refuses the revoked member and its invitee, admits the others', async () => {
    const file = path.join(tmp(), 'data', 'revocations.json');
    const now = Date.now();
    const [bK, cK, dK] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const bPass = issueRelayPass(founder, bK.nodeId, now);
    const cPass = delegateRelayPass(bK, bPass, cK.nodeId, now);
    const dPass = issueRelayPass(founder, dK.nodeId, now);

    const one = await startRelay(file);
    const b = one.client(bK, bPass);
    const d = one.client(dK, dPass);
    await Promise.all([b, d].map((x) => x.waitReady(10_000)));
    d.revoke(revokeRelayPass(founder, bK.nodeId, Date.now()));
    await expect.poll(() => b.state, { timeout: 10_000 }).toBe('closed');
    await one.relay.close(); // flushes
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { v: number; revoked: { node_id: string }[] };
    expect(saved.v).toBe(1);
    expect(saved.revoked.map((r) => r.node_id)).toEqual([bK.nodeId]);
    expect(readdirSync(path.dirname(file))).toEqual(['revocations.json']); // no temp file left

    // a new relay on the same file; the founder has not rejoined
    const logs: Record<string, unknown>[] = [];
    const two = await startRelay(file, logs);
    expect(logs.some((l) => l.msg === 'revocations loaded' && l.count === 1)).toBe(true);
    for (const [kp, pass] of [
      [bK, bPass],
      [cK, cPass],
    ] as const) {
      const again = two.client(kp, pass);
      const closed = new Promise<number>((r) => again.on('disconnected', (e) => r(e.code)));
      await expect(again.waitReady(10_000)).rejects.toThrow();
      expect(await closed).toBe(RELAY_CLOSE_POLICY);
      expect(two.errorsOf.get(again)).toContain('revoked');
    }
    const d2 = two.client(dK, dPass);
    await d2.waitReady(10_000);
    expect(d2.state).toBe('ready');
  }, 60_000);

  it('a corrupt, mis-shaped or oversized file starts the relay with no revocations and a warning', async () => {
    const dir = tmp();
    const bK = generateKeyPair();
    const bPass = issueRelayPass(founder, bK.nodeId, Date.now());
    const cases: [string, string | Buffer][] = [
      ['garbage', '{"v":1,"revoked":[{"room"'],
      ['shape', JSON.stringify({ v: 2, revoked: {} })],
      ['big', Buffer.alloc(REVOCATIONS_FILE_MAX_BYTES + 1, 0x20)],
    ];
    for (const [name, content] of cases) {
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, content);
      const logs: Record<string, unknown>[] = [];
      const r = await startRelay(file, logs);
      expect(logs.some((l) => l.level === 'warning' && /revocations file/.test(String(l.msg)))).toBe(true);
      const b = r.client(bK, bPass);
      await b.waitReady(10_000); // nothing is refused
      b.close();
      await r.relay.close();
    }
  }, 60_000);
});

describe('revocation store', () => {
  it('drops malformed and expired entries, bounds each room, keeps others', () => {
    const dir = tmp();
    const file = path.join(dir, 'r.json');
    let t = 1_000_000;
    const logs: string[] = [];
    const node = () => generateKeyPair().nodeId;
    const [r1, n1, n2] = [node(), node(), node()];
    writeFileSync(
      file,
      JSON.stringify({
        v: 1,
        revoked: [
          { room: r1, node_id: n1, until: t + 1000 },
          { room: r1, node_id: n2, until: t - 1 }, // expired
          { room: '../x', node_id: n1, until: t + 1000 },
          { room: r1, node_id: n1, until: 'soon' },
          null,
        ],
      }),
    );
    const s = createRevocationStore({ file, now: () => t, log: (_l, msg) => logs.push(msg) });
    expect(s.size).toBe(1);
    expect(s.has(r1, n1)).toBe(true);
    expect(s.has(r1, n2)).toBe(false);
    expect(logs).toContain('revocations file: malformed entries dropped');

    // one room cannot push out another room's entries
    const flood = node();
    const ids = Array.from(
      { length: REVOCATIONS_PER_ROOM_MAX + 50 },
      (_, i) => `ed25519:${String(i).padStart(43, 'A')}`,
    );
    for (const id of ids) s.add(flood, id, t + 5000);
    expect(s.has(r1, n1)).toBe(true);
    expect(s.size).toBe(REVOCATIONS_PER_ROOM_MAX + 1);
    expect(s.has(flood, ids[0]!)).toBe(false); // the room's oldest went first
    expect(s.has(flood, ids.at(-1)!)).toBe(true);
    s.flush();
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { revoked: unknown[] };
    expect(saved.revoked.length).toBe(s.size);

    t += 2000; // r1's entry expires
    s.prune();
    expect(s.has(r1, n1)).toBe(false);
    s.flush();
    const again = createRevocationStore({ file, now: () => t, log: () => undefined });
    expect(again.has(r1, n1)).toBe(false);
    expect(again.size).toBe(s.size);
  });
});
