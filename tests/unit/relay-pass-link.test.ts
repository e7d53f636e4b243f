/**
 * The room pass in a join link (issue #18 attack 7, engine/net/relay-pass-link.ts): property tests
 * of the codec, a fuzz of the decoder (it reads what a stranger put in a link), and a real relay that
 * admits the person who opens the link to the invite community's members while a stranger sees nobody.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { HnError } from '../../engine/core/errors.js';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient } from '../../engine/net/relay-client.js';
import {
  RELAY_PASS_PARAM_MAX_CHARS,
  decodeRelayPassParam,
  encodeRelayPassParam,
  joinLink,
  parseJoinFragment,
  passForCommunity,
} from '../../engine/net/relay-pass-link.js';
import {
  RELAY_PASS_DELEGATED_MAX_TTL_SECONDS,
  RELAY_PASS_MAX_TTL_SECONDS,
  checkRelayPass,
  delegateRelayPass,
  issueRelayPass,
  type RelayPass,
} from '../../engine/net/relay-wire.js';
import { createRelay } from '../../relay/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const founder = generateKeyPair();
const member = generateKeyPair();
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const ownPass = issueRelayPass(founder, member.nodeId, NOW);

/** A real pass: direct from the founder or delegated by a member, for a fresh node, any lifetime. */
const passArb = fc
  .record({
    delegated: fc.boolean(),
    ttl: fc.integer({ min: 1, max: RELAY_PASS_MAX_TTL_SECONDS }),
  })
  .map(({ delegated, ttl }) => {
    const node = generateKeyPair().nodeId;
    return delegated
      ? delegateRelayPass(member, ownPass, node, NOW, Math.min(ttl, RELAY_PASS_DELEGATED_MAX_TTL_SECONDS))
      : issueRelayPass(founder, node, NOW, ttl);
  });

const badRequest = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof HnError && e.code === 'bad_request';
  }
  return false;
};

describe('room pass in a join link: codec', () => {
  it('round-trips every pass through the param and the link, and the decoded pass still checks', () => {
    fc.assert(
      fc.property(passArb, (p) => {
        const enc = encodeRelayPassParam(p);
        expect(enc).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(enc.length).toBeLessThanOrEqual(RELAY_PASS_PARAM_MAX_CHARS);
        expect(decodeRelayPassParam(enc)).toEqual(p);
        const link = joinLink('https://relay.example', founder.nodeId, p);
        const f = parseJoinFragment(new URL(link).hash)!;
        expect(f.community).toBe(founder.nodeId);
        const back = passForCommunity(f)!;
        expect(back).toEqual(p);
        expect(checkRelayPass(back, founder.nodeId, p.node_id, NOW)).toBeNull();
      }),
      { numRuns: 60 },
    );
  });

  it('an open link (no pass) parses as before; other fragments are not join links', () => {
    const f = parseJoinFragment(`#join=${founder.nodeId}`);
    expect(f).toEqual({ community: founder.nodeId, pass: null });
    expect(passForCommunity(f!)).toBeNull();
    expect(joinLink('https://r', founder.nodeId)).toBe(`https://r/#join=${founder.nodeId}`);
    for (const h of ['', '#chat', `#join=${founder.nodeId}&x=1`, `#join=nope&pass=abc`, `#invite=x`])
      expect(parseJoinFragment(h)).toBeNull();
  });

  it('decoding arbitrary text never throws anything but bad_request', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.base64String(), fc.stringMatching(/^[A-Za-z0-9_-]{0,400}$/)),
        (s) => {
          try {
            decodeRelayPassParam(s);
          } catch (e) {
            expect(e).toBeInstanceOf(HnError);
            expect((e as HnError).code).toBe('bad_request');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a mutated param is refused by the decoder or, if it still decodes, by the pass check', () => {
    fc.assert(
      fc.property(passArb, fc.nat(), fc.integer({ min: 0, max: 63 }), (p, at, sym) => {
        const enc = encodeRelayPassParam(p);
        const i = at % enc.length;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const c = alphabet[sym]!;
        fc.pre(c !== enc[i]);
        const mutated = enc.slice(0, i) + c + enc.slice(i + 1);
        let d: RelayPass;
        try {
          d = decodeRelayPassParam(mutated);
        } catch (e) {
          expect((e as HnError).code).toBe('bad_request');
          return;
        }
        // same shape but other bytes: the signature (or the names it covers) no longer matches
        expect(checkRelayPass(d, founder.nodeId, p.node_id, NOW)).not.toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('refuses wrong shapes with bad_request: extra fields, another room in the chain, deep chains, oversize', () => {
    const p = issueRelayPass(founder, generateKeyPair().nodeId, NOW);
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, extra: 1 })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, v: 2 })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, room: 'x' })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, expires_at: 'soon' })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, signature: 'ed25519:x' })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam(enc([p])))).toBe(true);
    const other = issueRelayPass(generateKeyPair(), member.nodeId, NOW);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...p, by: other })))).toBe(true);
    const d = delegateRelayPass(member, ownPass, generateKeyPair().nodeId, NOW);
    expect(badRequest(() => decodeRelayPassParam(enc({ ...d, by: d })))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam('A'.repeat(RELAY_PASS_PARAM_MAX_CHARS + 1)))).toBe(true);
    expect(badRequest(() => decodeRelayPassParam('a+b/'))).toBe(true);
    // a pass for another community in a link naming this one
    const f = { community: generateKeyPair().nodeId as NodeID, pass: encodeRelayPassParam(p) };
    expect(badRequest(() => passForCommunity(f))).toBe(true);
    expect(badRequest(() => joinLink('https://r', f.community, p))).toBe(true);
  });
});

describe('room pass in a join link: a real relay', () => {
  it('the person who opens the invite link joins the members; a stranger with the plain link sees nobody', async () => {
    const relay = await createRelay({ log: () => undefined });
    cleanups.push(() => relay.close());
    const room = founder.nodeId;
    const client = (keyPair: ReturnType<typeof generateKeyPair>, pass?: RelayPass) => {
      const c = new RelayClient({
        url: relay.wsUrl,
        keyPair,
        room,
        WebSocket,
        reconnect: false,
        ...(pass ? { pass } : {}),
      });
      cleanups.push(() => c.close());
      c.start();
      return c;
    };
    const a = client(founder, issueRelayPass(founder, founder.nodeId, Date.now()));
    await a.waitReady(10_000);
    // the founder invites B: B's id came to it out of band; the link carries B's pass
    const bKeys = generateKeyPair();
    const link = joinLink('https://relay.example', room, issueRelayPass(founder, bKeys.nodeId, Date.now()));
    const opened = parseJoinFragment(new URL(link).hash)!;
    const b = client(bKeys, passForCommunity(opened)!);
    await b.waitReady(10_000);
    expect(b.peers().map((p) => p.node_id)).toEqual([founder.nodeId]);
    // someone else who opens B's link cannot use B's pass (it names B), and the open link admits no member
    const stranger = client(generateKeyPair());
    await stranger.waitReady(10_000);
    expect(stranger.peers()).toEqual([]);
    const thief = generateKeyPair();
    const errors: string[] = [];
    const t = client(thief, passForCommunity(opened)!);
    t.on('relay_error', (e) => errors.push(e.code));
    await expect(t.waitReady(10_000)).rejects.toThrow();
    expect(errors).toContain('bad_request');
    expect(a.peers().map((p) => p.node_id)).toEqual([bKeys.nodeId]);
  }, 30_000);
});
