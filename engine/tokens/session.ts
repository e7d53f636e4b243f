/**
 * X08 session-token profile (core digest §7.5): how an M16 token authorises one tensor session.
 *
 * The shard host mints the token inside `experimental.distributed_llm.shard.connect` (iss = host,
 * sub = caller, aud = community, single use, session_id + purpose constraints) and checks it when the
 * caller's X08 `CONTROL_HELLO` arrives. Any failure is an `HnError` whose code is what the X08 NACK carries.
 */
import { TENSOR_MAX_SESSION_LIFETIME_SECONDS, TOKEN_MAX_TTL_SECONDS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { AuthToken, NodeID } from '../core/types.js';
import { ULID_RE, ulid } from '../core/ulid.js';
import type { KeyPair } from '../identity/identity.js';
import type { RevocationSet } from './revocation.js';
import {
  capabilityCovered,
  issueToken,
  verifyToken,
  type MembershipLookup,
  type TokenPayload,
} from './token.js';

export const SHARD_FORWARD_CAPABILITY = 'experimental.distributed_llm.shard.forward';
export const SHARD_FORWARD_CAPABILITY_REF = `${SHARD_FORWARD_CAPABILITY}@1.0`;
/** X08's literal wire purpose (core §7.5). */
export const PURPOSE_SHARD_FORWARD = 'pipeline.shard.forward';

/**
 * [decision] Size cap of session tokens. The §7.5 payload (three full NodeIDs, the 46-character capability,
 * session_id and purpose constraints) encodes to ~840 bytes, so M16's 800-byte QR budget cannot hold; session
 * tokens never go into a QR code (they travel in the bus reply and the ≤ 4 KiB HELLO), so they get 1024 bytes,
 * still well under the 2048-byte input limit.
 */
export const SESSION_TOKEN_MAX_BYTES = 1024;

export type LinkKind = 'direct' | 'relayed' | 'memory' | 'local';

/**
 * Single-use bookkeeping: the jtis this host minted (kept until `exp`) and those already consumed by a HELLO.
 * Memory only, never persisted or logged as events (core §7.5).
 */
export class SessionTokenRegistry {
  private readonly minted = new Map<string, number>();
  private readonly consumed = new Map<string, number>();

  noteMinted(jti: string, exp: number): void {
    this.minted.set(jti, exp);
  }

  wasMinted(jti: string): boolean {
    return this.minted.has(jti);
  }

  isConsumed(jti: string): boolean {
    return this.consumed.has(jti);
  }

  /** Mark a jti used; false when it was already used. */
  consume(jti: string, exp: number): boolean {
    if (this.consumed.has(jti)) return false;
    this.consumed.set(jti, exp);
    return true;
  }

  /** Forget entries whose token has expired (a replay is then refused as expired anyway). */
  prune(nowSeconds: number): void {
    for (const m of [this.minted, this.consumed])
      for (const [k, exp] of m) if (exp <= nowSeconds) m.delete(k);
  }

  get size(): { minted: number; consumed: number } {
    return { minted: this.minted.size, consumed: this.consumed.size };
  }
}

export interface MintSessionTokenArgs {
  /** The bus caller that will open the session (token `sub`, and HELLO `from`). */
  caller: NodeID;
  communityId: NodeID;
  membership: MembershipLookup;
  /** Default: a fresh ULID. */
  sessionId?: string;
  purpose?: string;
  /** Unix seconds; default now. */
  now?: number;
  /** Capped at min(TENSOR_MAX_SESSION_LIFETIME_SECONDS, token limits). */
  ttlSeconds?: number;
  policyTtlSeconds?: number;
  configMaxTtlSeconds?: number;
  registry?: SessionTokenRegistry;
  jti?: string;
  /**
   * Capability ref (`name@X.Y`) the token is scoped to; default `experimental.distributed_llm.shard.forward@1.0`
   * (core §7.5). Node-level X08 hosts scope it to the capability that authorised the session.
   */
  capability?: string;
}

export interface MintedSessionToken {
  token: AuthToken;
  sessionId: string;
  jti: string;
  /** Unix seconds. */
  expiresAt: number;
  payload: TokenPayload;
}

/** Mint the single-use session token of core §7.5 (called by the shard host in `shard.connect`). */
export function mintSessionToken(host: KeyPair, args: MintSessionTokenArgs): MintedSessionToken {
  const sessionId = args.sessionId ?? ulid();
  if (!ULID_RE.test(sessionId)) throw new HnError('bad_request', 'session_id must be a ULID');
  const purpose = args.purpose ?? PURPOSE_SHARD_FORWARD;
  const ttl = Math.min(
    args.ttlSeconds ?? TENSOR_MAX_SESSION_LIFETIME_SECONDS,
    TENSOR_MAX_SESSION_LIFETIME_SECONDS,
    TOKEN_MAX_TTL_SECONDS,
    args.policyTtlSeconds ?? TOKEN_MAX_TTL_SECONDS,
    args.configMaxTtlSeconds ?? TOKEN_MAX_TTL_SECONDS,
  );
  const { token, payload } = issueToken(
    host,
    {
      sub: args.caller,
      aud: args.communityId,
      scope: {
        capabilities: [args.capability ?? SHARD_FORWARD_CAPABILITY_REF],
        params_constraints: { session_id: [sessionId], purpose: [purpose] },
        rate_limit_per_minute: 0,
        max_calls_total: 1,
      },
      ttlSeconds: ttl,
      issuedVia: 'session',
      ...(args.now !== undefined ? { now: args.now } : {}),
      ...(args.jti !== undefined ? { jti: args.jti } : {}),
    },
    {
      membership: args.membership,
      maxBytes: SESSION_TOKEN_MAX_BYTES,
      ...(args.policyTtlSeconds !== undefined ? { policyTtlSeconds: args.policyTtlSeconds } : {}),
      ...(args.configMaxTtlSeconds !== undefined ? { configMaxTtlSeconds: args.configMaxTtlSeconds } : {}),
    },
  );
  args.registry?.noteMinted(payload.jti, payload.exp);
  return { token, sessionId, jti: payload.jti, expiresAt: payload.exp, payload };
}

/** The HELLO fields the check needs (X08 HelloMsg). */
export interface SessionHelloFields {
  session_id: string;
  from: string;
  to: string;
  purpose: string;
}

export interface CheckSessionHelloContext {
  /** This node (the host): must be the token's `iss` and the HELLO's `to`. */
  self: NodeID;
  /** Authenticated peer of the link the HELLO arrived on. */
  linkPeer: NodeID;
  linkKind: LinkKind;
  /** Relayed links are refused unless allowed (core §7.5). */
  allowRelayed?: boolean;
  communityId: NodeID;
  membership: MembershipLookup;
  revocations?: RevocationSet;
  registry: SessionTokenRegistry;
  /** Unix seconds; default now. */
  now?: number;
  policyTtlSeconds?: number;
  /** Capability ref (`name@X.Y`) the token must cover; default the §7.5 shard.forward scope. */
  capability?: string;
}

export interface AcceptedSessionToken {
  jti: string;
  /** Unix seconds: the session must be closed at this time regardless. */
  expiresAt: number;
  payload: TokenPayload;
}

/**
 * Check a session token presented in an X08 HELLO (core §7.5): §7.2 rows 1–8 (single use counts as row 5,
 * `token_expired`), then iss = self (`token_invalid`), sub = link peer = HELLO.from (`invalid_signature`),
 * HELLO.to = self (`unauthorized`), capability + session_id/purpose constraints (`token_scope_insufficient`),
 * link not relayed unless allowed (`unauthorized`). On success the jti is consumed.
 */
export function checkSessionHello(
  token: unknown,
  hello: SessionHelloFields,
  ctx: CheckSessionHelloContext,
): AcceptedSessionToken {
  const now = ctx.now ?? Math.floor(Date.now() / 1000);
  const d = verifyToken(token as string, {
    now,
    communityId: ctx.communityId,
    membership: ctx.membership,
    ...(ctx.revocations ? { revocations: ctx.revocations } : {}),
    ...(ctx.policyTtlSeconds !== undefined ? { policyTtlSeconds: ctx.policyTtlSeconds } : {}),
    callsUsed: (jti) => (ctx.registry.isConsumed(jti) ? 1 : 0),
  });
  const p = d.payload;
  const cap = ctx.capability ?? SHARD_FORWARD_CAPABILITY_REF;
  const at = cap.lastIndexOf('@');
  if (p.iss !== ctx.self) throw new HnError('token_invalid', 'session token was not issued by this node');
  if (p.sub === '*' || p.sub !== ctx.linkPeer || hello.from !== ctx.linkPeer) {
    throw new HnError('invalid_signature', 'session token subject is not the link peer');
  }
  if (hello.to !== ctx.self) throw new HnError('unauthorized', 'HELLO is addressed to another node');
  if (
    at < 1 ||
    !capabilityCovered(p.scope, cap.slice(0, at), cap.slice(at + 1)) ||
    p.scope.max_calls_total !== 1 ||
    !(p.scope.params_constraints.session_id ?? []).includes(hello.session_id) ||
    !(p.scope.params_constraints.purpose ?? []).includes(hello.purpose)
  ) {
    throw new HnError('token_scope_insufficient', 'session token does not cover this session');
  }
  if (ctx.linkKind === 'relayed' && !ctx.allowRelayed) {
    throw new HnError('unauthorized', 'tensor sessions over relayed links are not allowed here');
  }
  if (!ctx.registry.consume(p.jti, p.exp)) throw new HnError('token_expired', 'session token already used');
  return { jti: p.jti, expiresAt: p.exp, payload: p };
}
