/**
 * M16 tokens (core §7): format, issuance limits, every §7.2 row → local and wire code (first failure wins),
 * revocation, the X08 session-token profile, and conformance/vectors/tokens (written by conformance/tools/x08_tokens_vectors.py).
 */
import { describe, expect, it } from 'vitest';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonical } from '../../engine/core/canonical.js';
import { b64url, fromB64url, fromHex } from '../../engine/core/encoding.js';
import { HnError, isErrorCode } from '../../engine/core/errors.js';
import type { NodeID, TrustLevel } from '../../engine/core/types.js';
import { keyPairFromSeed, publicKeyOf, signBytes, type KeyPair } from '../../engine/identity/identity.js';
import { RevocationSet } from '../../engine/tokens/revocation.js';
import {
  PURPOSE_SHARD_FORWARD,
  SessionTokenRegistry,
  checkSessionHello,
  mintSessionToken,
} from '../../engine/tokens/session.js';
import {
  TOKEN_PREFIX,
  TokenRateLimiter,
  checkTokenForCall,
  decodeToken,
  encodeToken,
  issueToken,
  tokenWireCode,
  verifyToken,
  type TokenPayload,
} from '../../engine/tokens/token.js';

const ISSUER = keyPairFromSeed(fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
const SUBJECT = keyPairFromSeed(new Uint8Array(32).fill(2));
const OTHER = keyPairFromSeed(new Uint8Array(32).fill(3));
const COMMUNITY = keyPairFromSeed(new Uint8Array(32).fill(9)).nodeId;
const OTHER_COMMUNITY = keyPairFromSeed(new Uint8Array(32).fill(8)).nodeId;
const NOW = 1717939200;
const JTI = '01HZZZZZZZZZZZZZZZZZZZZZZZ';

type Level = TrustLevel | 'revoked' | null;
const members =
  (m: Record<string, Level>) =>
  (id: NodeID): Level =>
    m[id] ?? null;
const baseMembers = { [ISSUER.nodeId]: 'trusted', [SUBJECT.nodeId]: 'member' } as Record<string, Level>;

function payload(over: Partial<TokenPayload> = {}): TokenPayload {
  return {
    iss: ISSUER.nodeId,
    sub: SUBJECT.nodeId,
    aud: COMMUNITY,
    iat: NOW,
    nbf: NOW,
    exp: NOW + 3600,
    jti: JTI,
    scope: {
      capabilities: ['llm.chat@1.0', 'rag.query@1.2', 'embed.text@2.0'],
      params_constraints: { model: ['tiny-llama'] },
      rate_limit_per_minute: 2,
      max_calls_total: null,
    },
    issued_via: 'manual',
    ...over,
  };
}

/** Build a token string from raw segments (to forge malformed/invalid inputs). */
function rawToken(headerJson: string, p: unknown, signer: KeyPair = ISSUER): string {
  const h = b64url(new TextEncoder().encode(headerJson));
  const pl = b64url(canonical(p));
  return `${TOKEN_PREFIX}${h}.${pl}.${b64url(signBytes(signer, new TextEncoder().encode(`${h}.${pl}`)))}`;
}
const HEADER = '{"alg":"EdDSA","typ":"hntoken","v":1}';

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof HnError) return e.code;
    throw e;
  }
}

interface Case {
  name: string;
  token: string;
  now: number;
  members: Record<string, Level>;
  revoked_jtis: string[];
  calls_used?: number;
  expect: { local: string; wire: string };
}

function verifyCases(): Case[] {
  const ok = encodeToken(ISSUER, payload());
  const m = baseMembers;
  const c = (name: string, token: string, local: string, o: Partial<Case> = {}): Case => ({
    name,
    token,
    now: NOW + 10,
    members: m,
    revoked_jtis: [],
    ...o,
    expect: { local, wire: local === 'ok' ? 'ok' : tokenWireCode(local as never) },
  });
  const flip = (t: string) => t.slice(0, -3) + (t.at(-3) === 'A' ? 'B' : 'A') + t.slice(-2);
  return [
    c('valid', ok, 'ok'),
    c('nbf_within_grace', encodeToken(ISSUER, payload({ nbf: NOW + 50 })), 'ok'),
    c('no_prefix', ok.slice(5), 'token_malformed'),
    c('two_segments', ok.slice(0, ok.lastIndexOf('.')), 'token_malformed'),
    c('bad_base64', ok.replace('.', '.*'), 'token_malformed'),
    c(
      'payload_not_json',
      `${TOKEN_PREFIX}${b64url(new TextEncoder().encode(HEADER))}.${b64url(new TextEncoder().encode('{x'))}.${ok.split('.').at(-1)}`,
      'token_malformed',
    ),
    c(
      'missing_jti',
      rawToken(HEADER, (({ jti: _j, ...rest }) => ({ ...rest, x: 1 }))(payload())),
      'token_malformed',
    ),
    c('aud_missing', rawToken(HEADER, { ...payload(), aud: null }), 'token_malformed'),
    c('too_long', TOKEN_PREFIX + 'a'.repeat(2100), 'token_malformed'),
    c('header_not_exact', rawToken('{"typ":"hntoken","alg":"EdDSA","v":1}', payload()), 'token_invalid'),
    c('ttl_above_max', encodeToken(ISSUER, payload({ exp: NOW + 86401 })), 'token_invalid'),
    c('issuer_not_member', ok, 'token_invalid', { members: { [SUBJECT.nodeId]: 'member' } }),
    c('signature_bad', flip(ok), 'token_signature_bad'),
    c('signed_by_other_key', rawToken(HEADER, payload(), OTHER), 'token_signature_bad'),
    c('not_yet_valid', encodeToken(ISSUER, payload({ nbf: NOW + 200 })), 'token_not_yet_valid'),
    c('expired', ok, 'token_expired', { now: NOW + 3600 }),
    c(
      'used_up',
      encodeToken(ISSUER, payload({ scope: { ...payload().scope, max_calls_total: 3 } })),
      'token_expired',
      { calls_used: 3 },
    ),
    c('audience_mismatch', encodeToken(ISSUER, payload({ aud: OTHER_COMMUNITY })), 'token_audience_mismatch'),
    c('jti_revoked', ok, 'token_revoked', { revoked_jtis: [JTI] }),
    c('issuer_revoked', ok, 'token_issuer_revoked', { members: { ...m, [ISSUER.nodeId]: 'revoked' } }),
    // first failure wins
    c('expired_and_bad_signature', flip(ok), 'token_signature_bad', { now: NOW + 9999 }),
    c('expired_and_wrong_audience', encodeToken(ISSUER, payload({ aud: OTHER_COMMUNITY })), 'token_expired', {
      now: NOW + 9999,
    }),
    c('revoked_jti_and_revoked_issuer', ok, 'token_revoked', {
      revoked_jtis: [JTI],
      members: { ...m, [ISSUER.nodeId]: 'revoked' },
    }),
  ];
}

function runCase(k: Case): string {
  const rev = new RevocationSet();
  for (const j of k.revoked_jtis) rev.add(j, 'manual', NOW);
  return code(() =>
    verifyToken(k.token, {
      now: k.now,
      communityId: COMMUNITY,
      membership: members(k.members),
      revocations: rev,
      callsUsed: () => k.calls_used ?? 0,
    }),
  );
}

describe('token format', () => {
  it('encode/decode round trip; the signature verifies with an independent Ed25519 (node:crypto)', () => {
    const t = encodeToken(ISSUER, payload());
    expect(t.startsWith('hntoken://v1/eyJhbGciOiJFZERTQSIsInR5cCI6ImhudG9rZW4iLCJ2IjoxfQ.')).toBe(true);
    const d = decodeToken(t);
    expect(d.payload).toEqual(payload());
    expect(d.headerExact).toBe(true);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKeyOf(ISSUER.nodeId)) },
      format: 'jwk',
    });
    expect(nodeVerify(null, Buffer.from(d.signingInput), key, Buffer.from(d.signature))).toBe(true);
  });

  it('a 3-capability token is ≤ 800 bytes; issuance enforces membership, TTL and size', () => {
    const ctx = { membership: members(baseMembers) };
    const { token } = issueToken(
      ISSUER,
      {
        sub: SUBJECT.nodeId,
        aud: COMMUNITY,
        scope: { capabilities: ['llm.chat@1.0', 'rag.query@1.0', 'embed.text@1.0'] },
      },
      ctx,
    );
    expect(token.length).toBeLessThanOrEqual(800);
    expect(
      verifyToken(token, {
        now: Math.floor(Date.now() / 1000),
        communityId: COMMUNITY,
        membership: ctx.membership,
      }).payload.exp,
    ).toBeGreaterThan(0);
    expect(
      code(() =>
        issueToken(
          OTHER,
          { sub: SUBJECT.nodeId, aud: COMMUNITY, scope: { capabilities: ['llm.chat@1.0'] } },
          ctx,
        ),
      ),
    ).toBe('unauthorized');
    expect(
      code(() =>
        issueToken(
          ISSUER,
          {
            sub: SUBJECT.nodeId,
            aud: COMMUNITY,
            scope: { capabilities: ['llm.chat@1.0'] },
            ttlSeconds: 7200,
          },
          { ...ctx, policyTtlSeconds: 3600 },
        ),
      ),
    ).toBe('bad_request');
    expect(
      code(() =>
        issueToken(
          ISSUER,
          {
            sub: SUBJECT.nodeId,
            aud: COMMUNITY,
            scope: { capabilities: ['llm.chat@1.0'] },
            ttlSeconds: 86401,
          },
          ctx,
        ),
      ),
    ).toBe('bad_request');
    const many = Array.from({ length: 12 }, (_, i) => `experimental.some.long.capability${i}@1.0`);
    expect(
      code(() =>
        issueToken(ISSUER, { sub: SUBJECT.nodeId, aud: COMMUNITY, scope: { capabilities: many } }, ctx),
      ),
    ).toBe('bad_request');
    expect(
      code(() =>
        issueToken(ISSUER, { sub: '*', aud: COMMUNITY, scope: { capabilities: ['llm.chat@1.0'] } }, ctx),
      ),
    ).toBe('bad_request');
    expect(
      code(() =>
        issueToken(
          ISSUER,
          { sub: SUBJECT.nodeId, aud: COMMUNITY, scope: { capabilities: ['x@1.0'] } },
          { ...ctx, offers: () => false },
        ),
      ),
    ).toBe('bad_request');
  });
});

describe('§7.2 verification rows', () => {
  it('each row gives its local code and wire code; first failure wins', () => {
    for (const k of verifyCases()) {
      const got = runCase(k);
      expect([k.name, got]).toEqual([k.name, k.expect.local]);
      if (got !== 'ok') {
        expect(isErrorCode(got)).toBe(true);
        expect(tokenWireCode(got as never)).toBe(k.expect.wire);
      }
    }
    expect(tokenWireCode('token_malformed')).toBe('bad_request');
    expect(tokenWireCode('token_signature_bad')).toBe('token_invalid');
    expect(tokenWireCode('token_not_yet_valid')).toBe('token_expired');
    expect(tokenWireCode('token_audience_mismatch')).toBe('unauthorized');
    expect(tokenWireCode('token_issuer_revoked')).toBe('revoked');
  });

  it('call rows: sub ≠ from → invalid_signature; scope (name, major, params) → token_scope_insufficient; rate → rate_limited', () => {
    const d = verifyToken(encodeToken(ISSUER, payload()), {
      now: NOW + 1,
      communityId: COMMUNITY,
      membership: members(baseMembers),
    });
    const call = {
      from: SUBJECT.nodeId,
      capability: 'llm.chat',
      version: '1.3',
      params: { model: 'tiny-llama' },
    };
    expect(code(() => checkTokenForCall(d, call))).toBe('ok');
    expect(code(() => checkTokenForCall(d, { ...call, from: OTHER.nodeId }))).toBe('invalid_signature');
    expect(code(() => checkTokenForCall(d, { ...call, version: '2.0' }))).toBe('token_scope_insufficient');
    expect(code(() => checkTokenForCall(d, { ...call, capability: 'llm.chat2' }))).toBe(
      'token_scope_insufficient',
    );
    expect(code(() => checkTokenForCall(d, { ...call, params: { model: 'big' } }))).toBe(
      'token_scope_insufficient',
    );
    expect(code(() => checkTokenForCall(d, { ...call, params: {}, input: { model: 'tiny-llama' } }))).toBe(
      'ok',
    );
    expect(code(() => checkTokenForCall(d, { ...call, params: {} }))).toBe('token_scope_insufficient');
    const rl = new TokenRateLimiter();
    const t0 = 1_000_000;
    expect(code(() => checkTokenForCall(d, { ...call, rateLimiter: rl, nowMs: t0 }))).toBe('ok');
    expect(code(() => checkTokenForCall(d, { ...call, rateLimiter: rl, nowMs: t0 + 1 }))).toBe('ok');
    expect(code(() => checkTokenForCall(d, { ...call, rateLimiter: rl, nowMs: t0 + 2 }))).toBe(
      'rate_limited',
    );
    expect(code(() => checkTokenForCall(d, { ...call, rateLimiter: rl, nowMs: t0 + 60_001 }))).toBe('ok');
    const bearer = verifyToken(encodeToken(ISSUER, payload({ sub: '*' })), {
      now: NOW + 1,
      communityId: COMMUNITY,
      membership: members(baseMembers),
    });
    expect(code(() => checkTokenForCall(bearer, call))).toBe('invalid_signature');
    expect(code(() => checkTokenForCall(bearer, { ...call, allowBearer: true }))).toBe('ok');
  });
});

describe('revocation set', () => {
  it('accepts revocations from the issuer, trusted members and the root only', () => {
    const rev = new RevocationSet();
    const ctx = {
      membership: members({
        [ISSUER.nodeId]: 'member',
        [SUBJECT.nodeId]: 'member',
        [OTHER.nodeId]: 'trusted',
      }),
      communityId: COMMUNITY,
      issuerOf: (j: string) => (j === JTI ? ISSUER.nodeId : undefined),
    };
    const ev = (author: NodeID, jti = JTI) => ({ author, data: { token_id: jti, reason: 'manual' } });
    expect(rev.applyRevokedEvent(ev(SUBJECT.nodeId), ctx)).toBe(false);
    expect(rev.has(JTI)).toBe(false);
    expect(rev.applyRevokedEvent(ev(ISSUER.nodeId), ctx)).toBe(true);
    expect(rev.has(JTI)).toBe(true);
    expect(rev.applyRevokedEvent(ev(OTHER.nodeId, '01HZZZZZZZZZZZZZZZZZZZZZZY'), ctx)).toBe(true);
    expect(rev.applyRevokedEvent(ev(COMMUNITY, '01HZZZZZZZZZZZZZZZZZZZZZZX'), ctx)).toBe(true);
    expect(
      rev.applyRevokedEvent({ author: OTHER.nodeId, data: { token_id: 'nope', reason: 'manual' } }, ctx),
    ).toBe(false);
    const copy = new RevocationSet();
    expect(copy.addAll(rev.entries())).toBe(3);
  });
});

describe('X08 session-token profile (§7.5)', () => {
  const ctx = (registry: SessionTokenRegistry, over: Record<string, unknown> = {}) => ({
    self: ISSUER.nodeId,
    linkPeer: SUBJECT.nodeId,
    linkKind: 'direct' as const,
    communityId: COMMUNITY,
    membership: members(baseMembers),
    registry,
    now: NOW + 5,
    ...over,
  });
  const mint = (registry: SessionTokenRegistry, over: Record<string, unknown> = {}) =>
    mintSessionToken(ISSUER, {
      caller: SUBJECT.nodeId,
      communityId: COMMUNITY,
      membership: members(baseMembers),
      registry,
      now: NOW,
      ...over,
    });
  const hello = (m: ReturnType<typeof mint>, over: Record<string, string> = {}) => ({
    session_id: m.sessionId,
    from: SUBJECT.nodeId,
    to: ISSUER.nodeId,
    purpose: PURPOSE_SHARD_FORWARD,
    ...over,
  });

  it('mints the profile payload and accepts it exactly once', () => {
    const reg = new SessionTokenRegistry();
    const m = mint(reg);
    expect(m.payload).toMatchObject({
      iss: ISSUER.nodeId,
      sub: SUBJECT.nodeId,
      aud: COMMUNITY,
      iat: NOW,
      nbf: NOW,
      exp: NOW + 3600,
      issued_via: 'session',
      scope: {
        capabilities: ['experimental.distributed_llm.shard.forward@1.0'],
        params_constraints: { session_id: [m.sessionId], purpose: ['pipeline.shard.forward'] },
        rate_limit_per_minute: 0,
        max_calls_total: 1,
      },
    });
    expect(m.token.length).toBeLessThanOrEqual(1024);
    expect(reg.wasMinted(m.jti)).toBe(true);
    expect(checkSessionHello(m.token, hello(m), ctx(reg)).expiresAt).toBe(NOW + 3600);
    expect(code(() => checkSessionHello(m.token, hello(m), ctx(reg)))).toBe('token_expired');
    reg.prune(NOW + 3601);
    expect(reg.size).toEqual({ minted: 0, consumed: 0 });
  });

  it('refuses: other issuer, other peer, HELLO to another node, wrong session/purpose, expired, relayed', () => {
    const reg = new SessionTokenRegistry();
    const fresh = () => mint(reg);
    let m = fresh();
    expect(code(() => checkSessionHello(m.token, hello(m), ctx(reg, { self: OTHER.nodeId })))).toBe(
      'token_invalid',
    );
    m = fresh();
    expect(
      code(() =>
        checkSessionHello(m.token, hello(m, { from: OTHER.nodeId }), ctx(reg, { linkPeer: OTHER.nodeId })),
      ),
    ).toBe('invalid_signature');
    expect(code(() => checkSessionHello(m.token, hello(m, { from: OTHER.nodeId }), ctx(reg)))).toBe(
      'invalid_signature',
    );
    expect(code(() => checkSessionHello(m.token, hello(m, { to: OTHER.nodeId }), ctx(reg)))).toBe(
      'unauthorized',
    );
    expect(
      code(() =>
        checkSessionHello(m.token, hello(m, { session_id: '01HAAAAAAAAAAAAAAAAAAAAAAA' }), ctx(reg)),
      ),
    ).toBe('token_scope_insufficient');
    expect(
      code(() => checkSessionHello(m.token, hello(m, { purpose: 'pipeline.shard.backward' }), ctx(reg))),
    ).toBe('token_scope_insufficient');
    expect(code(() => checkSessionHello(m.token, hello(m), ctx(reg, { now: NOW + 3600 })))).toBe(
      'token_expired',
    );
    expect(code(() => checkSessionHello(m.token, hello(m), ctx(reg, { linkKind: 'relayed' })))).toBe(
      'unauthorized',
    );
    // none of the failures consumed the token
    expect(
      code(() => checkSessionHello(m.token, hello(m), ctx(reg, { linkKind: 'relayed', allowRelayed: true }))),
    ).toBe('ok');
    // a general-purpose token of the same issuer is not a session token
    const general = encodeToken(ISSUER, payload({ sub: SUBJECT.nodeId }));
    expect(code(() => checkSessionHello(general, hello(m), ctx(reg)))).toBe('token_scope_insufficient');
    // lifetime capped at TENSOR_MAX_SESSION_LIFETIME_SECONDS
    expect(mint(reg, { ttlSeconds: 99999 }).expiresAt).toBe(NOW + 3600);
  });
});

describe('conformance/vectors/tokens', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = resolve(here, '../../conformance/vectors/tokens/tokens.json');
  const build = () => ({
    description:
      'M16 tokens hntoken://v1/<b64url(header)>.<b64url(payload)>.<b64url(Ed25519 sig over "h.p")>. Keys are Ed25519 seeds (hex). ' +
      '"verify" cases: run core §7.2 rows 1–8 at unix time "now" for community "community_id", with "members" as the membership view ' +
      '(absent = not a member) and "revoked_jtis"; "calls_used" is the use count of the jti. "expect.local" is the local code (or "ok"), "expect.wire" the wire code.',
    keys: {
      issuer_seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      issuer: ISSUER.nodeId,
      subject_seed: '02'.repeat(32),
      subject: SUBJECT.nodeId,
      other_seed: '03'.repeat(32),
      other: OTHER.nodeId,
    },
    community_id: COMMUNITY,
    encode: { payload: payload(), token: encodeToken(ISSUER, payload()) },
    session_token: (() => {
      const reg = new SessionTokenRegistry();
      const m = mintSessionToken(ISSUER, {
        caller: SUBJECT.nodeId,
        communityId: COMMUNITY,
        membership: members(baseMembers),
        registry: reg,
        now: NOW,
        sessionId: '01J0AAAAAAAAAAAAAAAAAAAAAA',
        jti: '01J0BBBBBBBBBBBBBBBBBBBBBB',
      });
      return { payload: m.payload, token: m.token };
    })(),
    verify: verifyCases(),
  });

  it('the code matches the independently generated vectors', () => {
    // the file is written by conformance/tools/x08_tokens_vectors.py (Python, independent of engine/),
    // never from the code under test; what the engine builds from the same inputs must equal it
    const { source: _source, ...independent } = JSON.parse(readFileSync(file, 'utf8'));
    expect(independent).toEqual(build());
    const v = JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof build>;
    expect(encodeToken(ISSUER, v.encode.payload as TokenPayload)).toBe(v.encode.token);
    expect(decodeToken(v.encode.token).payload).toEqual(v.encode.payload);
    expect(encodeToken(ISSUER, v.session_token.payload as TokenPayload)).toBe(v.session_token.token);
    // the signature part verifies independently
    const [h, p, s] = v.encode.token.slice(TOKEN_PREFIX.length).split('.') as [string, string, string];
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: v.keys.issuer.slice(8) },
      format: 'jwk',
    });
    expect(nodeVerify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(fromB64url(s)))).toBe(true);
    expect(v.verify.length).toBeGreaterThanOrEqual(20);
    for (const k of v.verify) {
      const got = runCase(k);
      expect([k.name, got]).toEqual([k.name, k.expect.local]);
      expect([k.name, got === 'ok' ? 'ok' : tokenWireCode(got as never)]).toEqual([k.name, k.expect.wire]);
    }
  });
});
