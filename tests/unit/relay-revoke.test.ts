/**
 * Early revocation of room passes at the relay (issue #18 attack 7): a revocation signed by the
 * community key (the room id) is checked by the relay with the room id alone; from then on the
 * revoked node's pass and every pass it delegated are refused with `revoked`, and its members-side
 * connections (and its invitees') are closed. Wire checks, a fuzz of the checker, a real relay, and
 * the founder node's side (which revocations it sends, once per relay connection).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, signObject, type KeyPair } from '../../engine/identity/identity.js';
import { RelayPasses } from '../../engine/net/relay-passes.js';
import {
  RELAY_CLOSE_POLICY,
  checkRelayRevocation,
  delegateRelayPass,
  issueRelayPass,
  revokeRelayPass,
} from '../../engine/net/relay-wire.js';
import { openMemoryStorage } from '../../engine/store/memory.js';
import { CORE_SCHEMA } from '../../engine/store/core-schema.js';
import { createRelay } from '../../relay/server.js';
import { passClients } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});
const founder = generateKeyPair();
const room = founder.nodeId;

describe('relay revocation: wire', () => {
  it('a founder-signed revocation checks; forged, foreign, reshaped ones do not', () => {
    const x = generateKeyPair().nodeId;
    const r = revokeRelayPass(founder, x, Date.now());
    expect(checkRelayRevocation(r, room)).toBeNull();
    expect(checkRelayRevocation(revokeRelayPass(generateKeyPair(), x, Date.now()), room)).toBe('bad_request');
    const { signature: _s, ...body } = r;
    expect(checkRelayRevocation(signObject(generateKeyPair(), body), room)).toBe('invalid_signature');
    expect(checkRelayRevocation({ ...r, extra: 1 }, room)).toBe('bad_request');
    expect(checkRelayRevocation({ ...r, node_id: room }, room)).toBe('bad_request');
    expect(checkRelayRevocation({ ...r, revoked_at: 'now' }, room)).toBe('bad_request');
    expect(checkRelayRevocation([r], room)).toBe('bad_request');
  });

  it('any change to a signed revocation is refused (fuzz)', () => {
    const r = revokeRelayPass(founder, generateKeyPair().nodeId, Date.now()) as unknown as Record<
      string,
      unknown
    >;
    fc.assert(
      fc.property(
        fc.constantFrom('v', 'type', 'room', 'node_id', 'revoked_at', 'signature'),
        fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.constant(generateKeyPair().nodeId)),
        (k, v) => {
          fc.pre(r[k] !== v);
          expect(checkRelayRevocation({ ...r, [k]: v }, room)).not.toBeNull();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('relay revocation: a real relay', () => {
  it('refuses the revoked node and its invitees from the moment it learns, closes them, leaves others be', async () => {
    const relay = await createRelay({ log: () => undefined });
    cleanups.push(() => relay.close());
    const { client, errorsOf } = passClients(relay.wsUrl, room, (f) => cleanups.push(f));
    const now = Date.now();
    const [bK, cK, dK] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const bPass = issueRelayPass(founder, bK.nodeId, now);
    const cPass = delegateRelayPass(bK, bPass, cK.nodeId, now); // B invited C
    const a = client(founder, issueRelayPass(founder, founder.nodeId, now));
    const b = client(bK, bPass);
    const c = client(cK, cPass);
    const d = client(dK, issueRelayPass(founder, dK.nodeId, now));
    await Promise.all([a, b, c, d].map((x) => x.waitReady(10_000)));
    await expect.poll(() => a.peers().length, { timeout: 10_000 }).toBe(3);

    // a revocation that the community key did not sign changes nothing (and costs the carrier)
    const { signature: _s, ...body } = revokeRelayPass(founder, bK.nodeId, Date.now());
    d.revoke(signObject(dK, body) as never);
    await expect.poll(() => errorsOf.get(d), { timeout: 5000 }).toContain('invalid_signature');
    expect(b.state).toBe('ready');

    // the founder's revocation of B, carried by any member: B and B's invitee C are closed
    d.revoke(revokeRelayPass(founder, bK.nodeId, Date.now()));
    await expect.poll(() => [b.state, c.state], { timeout: 10_000 }).toEqual(['closed', 'closed']);
    expect(errorsOf.get(b)).toContain('revoked');
    expect(errorsOf.get(c)).toContain('revoked');
    await expect.poll(() => a.peers().map((p) => p.node_id), { timeout: 10_000 }).toEqual([dK.nodeId]);
    expect(d.state).toBe('ready');
    expect(relay.metrics.get('hearthnet_relay_revocations_total')).toBe(1);

    // B's pass (and C's) no longer admits them
    for (const [kp, pass] of [
      [bK, bPass],
      [cK, cPass],
    ] as const) {
      const again = client(kp, pass);
      const closed = new Promise<number>((r) => again.on('disconnected', (e) => r(e.code)));
      await expect(again.waitReady(10_000)).rejects.toThrow();
      expect(await closed).toBe(RELAY_CLOSE_POLICY);
      expect(errorsOf.get(again)).toContain('revoked');
    }
    // without a pass B lands on the open side: it sees no member
    const open = client(bK);
    await open.waitReady(10_000);
    expect(open.peers()).toEqual([]);
    expect(a.peers().map((p) => p.node_id)).toEqual([dK.nodeId]);
  }, 40_000);
});

describe('relay revocation: the founder node', () => {
  it('sends one revocation per revoked member per relay connection; members and open communities send none', async () => {
    const revoked: NodeID[] = [generateKeyPair().nodeId];
    const st = await openMemoryStorage(`revoke-${Date.now()}`, CORE_SCHEMA);
    cleanups.push(() => st.close());
    let admission: 'open' | 'invite' = 'invite';
    const deps = (keys: KeyPair) => ({
      keys,
      store: st,
      communityId: room,
      admission: () => admission,
      levelOf: () => 'member' as const,
      revoked: () => revoked,
      now: () => Date.now(),
    });
    const p = new RelayPasses(deps(founder));
    const first = p.revocationsToSend();
    expect(first.map((r) => r.node_id)).toEqual(revoked);
    expect(checkRelayRevocation(first[0], room)).toBeNull();
    expect(p.revocationsToSend()).toEqual([]);
    revoked.push(generateKeyPair().nodeId);
    expect(p.revocationsToSend().map((r) => r.node_id)).toEqual([revoked[1]]);
    expect(p.revocationsToSend(true).map((r) => r.node_id)).toEqual(revoked); // after a rejoin
    expect(new RelayPasses(deps(generateKeyPair())).revocationsToSend()).toEqual([]); // not the founder
    admission = 'open';
    expect(new RelayPasses(deps(founder)).revocationsToSend()).toEqual([]);
  });
});
