/**
 * M16 capability tokens (core digest §7): `hntoken://v1/<b64url(header)>.<b64url(payload)>.<b64url(sig)>`.
 *
 * - `decodeToken` parses and checks structure only (row 1 of §7.2 → `token_malformed`).
 * - `verifyToken` runs rows 1–8 of §7.2 in order; the first failure wins.
 * - `checkTokenForCall` runs the call-bound rows (subject, scope, per-jti rate) for a bus call.
 * - `issueToken` signs a token after the issuance rules of §7.3 (member issuer, TTL limits, ≤ 800 bytes).
 *
 * Errors are `HnError` with the *local* code of §7.2; `tokenWireCode` maps a local code to the code that
 * goes on the wire. Full token strings are never put into error messages or logs; only `jti` may be logged.
 */
import { canonical } from '../core/canonical.js';
import { TOKEN_DEFAULT_TTL_SECONDS, TOKEN_MAX_TTL_SECONDS } from '../core/constants.js';
import { b64url, fromB64url, fromUtf8, utf8 } from '../core/encoding.js';
import { HnError, type ErrorCode } from '../core/errors.js';
import { NODE_ID_RE, type AuthToken, type NodeID } from '../core/types.js';
import { ULID_RE, ulid } from '../core/ulid.js';
import { isNodeId, publicKeyOf, signBytes, verifyBytes, type KeyPair } from '../identity/identity.js';
import type { RevocationSet } from './revocation.js';

export const TOKEN_PREFIX = 'hntoken://v1/';
/** Longest token string accepted as input (core §7.1, §13). */
export const TOKEN_MAX_INPUT_BYTES = 2048;
/** Longest token this node issues (M16 §3: fits a QR code at error correction M). */
export const TOKEN_MAX_ISSUED_BYTES = 800;
/** Grace for `nbf` against clock skew (core §7.2 row 4). */
export const TOKEN_NBF_GRACE_SECONDS = 60;

export const TOKEN_HEADER = { alg: 'EdDSA', typ: 'hntoken', v: 1 } as const;
const HEADER_SEGMENT = b64url(canonical(TOKEN_HEADER));

export type IssuedVia = 'federation' | 'onboarding' | 'manual' | 'relay' | 'session';
export const ISSUED_VIA: readonly IssuedVia[] = ['federation', 'onboarding', 'manual', 'relay', 'session'];

export type ConstraintValue = string | number | boolean;

export interface TokenScope {
  /** Exact capability refs `name@MAJOR.MINOR`; no wildcards. */
  capabilities: string[];
  /** Parameter allow-lists, looked up in `body.params`, then `body.input`. */
  params_constraints: Record<string, ConstraintValue[]>;
  /** 0 = no cap [decision of core §7.1]. */
  rate_limit_per_minute: number;
  max_calls_total: number | null;
}

export interface TokenPayload {
  iss: NodeID;
  sub: NodeID | '*';
  aud: NodeID;
  iat: number;
  exp: number;
  nbf: number;
  jti: string;
  scope: TokenScope;
  issued_via: IssuedVia;
}

export interface DecodedToken {
  payload: TokenPayload;
  /** True when the header segment is byte-identical to the canonical header. */
  headerExact: boolean;
  /** ASCII of `b64url(header) + "." + b64url(payload)` as received: the signed message. */
  signingInput: Uint8Array;
  signature: Uint8Array;
}

/** Local token codes of §7.2 (plus the call-bound rows' wire codes). */
export type TokenCode =
  | 'token_malformed'
  | 'token_invalid'
  | 'token_signature_bad'
  | 'token_not_yet_valid'
  | 'token_expired'
  | 'token_audience_mismatch'
  | 'token_revoked'
  | 'token_issuer_revoked'
  | 'token_scope_insufficient';

const WIRE: Record<TokenCode, ErrorCode> = {
  token_malformed: 'bad_request',
  token_invalid: 'token_invalid',
  token_signature_bad: 'token_invalid',
  token_not_yet_valid: 'token_expired',
  token_expired: 'token_expired',
  token_audience_mismatch: 'unauthorized',
  token_revoked: 'token_revoked',
  token_issuer_revoked: 'revoked',
  token_scope_insufficient: 'token_scope_insufficient',
};

/** Wire code for a local token code (core §7.2); other codes pass through unchanged. */
export function tokenWireCode(code: ErrorCode): ErrorCode {
  return (WIRE as Record<string, ErrorCode>)[code] ?? code;
}

/**
 * Membership/trust view of a NodeID, injected so tokens do not depend on the community module:
 * a trust level, `'revoked'`, or `null` when the node is not a member at all.
 */
export type { MembershipLookup } from '../core/types.js';
import type { MembershipLookup } from '../core/types.js';

const CAP_REF_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*@(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;
const CONSTRAINT_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const fail = (code: TokenCode, message: string): never => {
  throw new HnError(code, message);
};

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseScope(v: unknown): TokenScope {
  if (!isPlainObject(v)) return fail('token_malformed', 'scope is not an object');
  const caps = v.capabilities;
  if (!Array.isArray(caps) || caps.length === 0 || caps.length > 64)
    return fail('token_malformed', 'scope.capabilities');
  for (const c of caps)
    if (typeof c !== 'string' || !CAP_REF_RE.test(c)) fail('token_malformed', 'scope.capabilities entry');
  const pc = v.params_constraints ?? {};
  if (!isPlainObject(pc)) return fail('token_malformed', 'scope.params_constraints');
  const constraints: Record<string, ConstraintValue[]> = {};
  for (const [k, list] of Object.entries(pc)) {
    if (!CONSTRAINT_KEY_RE.test(k)) fail('token_malformed', 'scope.params_constraints key');
    if (!Array.isArray(list) || list.length > 256)
      return fail('token_malformed', 'scope.params_constraints list');
    for (const x of list) {
      const t = typeof x;
      if (!(t === 'string' || t === 'boolean' || (t === 'number' && Number.isFinite(x)))) {
        fail('token_malformed', 'scope.params_constraints value');
      }
    }
    constraints[k] = list as ConstraintValue[];
  }
  const rate = v.rate_limit_per_minute;
  if (!isTime(rate)) return fail('token_malformed', 'scope.rate_limit_per_minute');
  const max = v.max_calls_total;
  if (!(max === null || (Number.isSafeInteger(max) && (max as number) >= 1))) {
    return fail('token_malformed', 'scope.max_calls_total');
  }
  return {
    capabilities: caps as string[],
    params_constraints: constraints,
    rate_limit_per_minute: rate,
    max_calls_total: max as number | null,
  };
}

function parsePayload(v: unknown): TokenPayload {
  if (!isPlainObject(v)) return fail('token_malformed', 'payload is not an object');
  const { iss, sub, aud, iat, exp, nbf, jti, scope, issued_via } = v;
  if (!isNodeId(iss)) fail('token_malformed', 'iss');
  if (!(sub === '*' || isNodeId(sub))) fail('token_malformed', 'sub');
  if (!isNodeId(aud)) fail('token_malformed', 'aud (required in v1)');
  if (!isTime(iat) || !isTime(exp) || !isTime(nbf)) fail('token_malformed', 'iat/exp/nbf');
  if (typeof jti !== 'string' || !ULID_RE.test(jti)) fail('token_malformed', 'jti');
  if (typeof issued_via !== 'string' || !(ISSUED_VIA as readonly string[]).includes(issued_via)) {
    fail('token_malformed', 'issued_via');
  }
  return {
    iss: iss as NodeID,
    sub: sub as NodeID | '*',
    aud: aud as NodeID,
    iat: iat as number,
    exp: exp as number,
    nbf: nbf as number,
    jti: jti as string,
    scope: parseScope(scope),
    issued_via: issued_via as IssuedVia,
  };
}

function parseJsonSegment(seg: string, what: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = fromB64url(seg);
  } catch {
    return fail('token_malformed', `${what} is not base64url`);
  }
  try {
    return JSON.parse(fromUtf8(bytes));
  } catch {
    return fail('token_malformed', `${what} is not JSON`);
  }
}

/** Structural decode (row 1 of §7.2). Never verifies the signature. Throws `HnError('token_malformed')`. */
export function decodeToken(raw: unknown): DecodedToken {
  if (typeof raw !== 'string') return fail('token_malformed', 'token is not a string');
  if (raw.length > TOKEN_MAX_INPUT_BYTES) fail('token_malformed', 'token too long');
  if (!raw.startsWith(TOKEN_PREFIX)) fail('token_malformed', 'missing hntoken://v1/ prefix');
  const segs = raw.slice(TOKEN_PREFIX.length).split('.');
  if (segs.length !== 3) fail('token_malformed', 'token needs 3 segments');
  const [h, p, s] = segs as [string, string, string];
  const header = parseJsonSegment(h, 'header');
  if (!isPlainObject(header)) fail('token_malformed', 'header is not an object');
  const payload = parsePayload(parseJsonSegment(p, 'payload'));
  let signature: Uint8Array;
  try {
    signature = fromB64url(s);
  } catch {
    return fail('token_malformed', 'signature is not base64url');
  }
  if (signature.length !== 64) fail('token_malformed', 'signature must be 64 bytes');
  return { payload, headerExact: h === HEADER_SEGMENT, signingInput: utf8(`${h}.${p}`), signature };
}

export interface VerifyContext {
  /** Unix seconds. */
  now: number;
  /** Our community: the only accepted `aud`. */
  communityId: NodeID;
  membership: MembershipLookup;
  revocations?: RevocationSet;
  /** Community policy `capability_token_ttl_seconds` (default 86 400). */
  policyTtlSeconds?: number;
  /** Calls already made with a jti (for `max_calls_total`); default 0. */
  callsUsed?: (jti: string) => number;
}

/**
 * §7.2 rows 1–8, first failure wins: malformed → invalid (header, TTL, issuer membership) → signature →
 * not yet valid → expired/used up → audience → jti revoked → issuer revoked.
 */
export function verifyToken(token: string | DecodedToken, ctx: VerifyContext): DecodedToken {
  const d = typeof token === 'string' ? decodeToken(token) : token;
  const p = d.payload;
  // row 2
  if (!d.headerExact) fail('token_invalid', 'header is not exactly {"alg":"EdDSA","typ":"hntoken","v":1}');
  const maxTtl = Math.min(TOKEN_MAX_TTL_SECONDS, ctx.policyTtlSeconds ?? TOKEN_MAX_TTL_SECONDS);
  if (p.exp <= p.iat || p.exp - p.iat > maxTtl) fail('token_invalid', 'token lifetime out of bounds');
  const issuerLevel = ctx.membership(p.iss);
  if (issuerLevel === null || issuerLevel === 'unknown') fail('token_invalid', 'issuer is not a member');
  // row 3
  if (!verifyBytes(publicKeyOf(p.iss), d.signingInput, d.signature))
    fail('token_signature_bad', 'bad token signature');
  // row 4
  if (ctx.now < p.nbf - TOKEN_NBF_GRACE_SECONDS) fail('token_not_yet_valid', 'token not valid yet');
  // row 5
  if (ctx.now >= p.exp) fail('token_expired', 'token expired');
  if (p.scope.max_calls_total !== null && (ctx.callsUsed?.(p.jti) ?? 0) >= p.scope.max_calls_total) {
    fail('token_expired', 'token used up');
  }
  // row 6
  if (p.aud !== ctx.communityId) fail('token_audience_mismatch', 'token audience is another community');
  // row 7
  if (ctx.revocations?.has(p.jti)) fail('token_revoked', 'token revoked');
  // row 8
  if (issuerLevel === 'revoked') fail('token_issuer_revoked', 'token issuer revoked');
  return d;
}

/** Does `scopeRef` (name@X.Y in a token) cover a call to `capability` at `version` ("A.B")? Exact name, same major. */
export function capabilityCovered(scope: TokenScope, capability: string, version: string): boolean {
  const major = version.split('.')[0];
  return scope.capabilities.some((ref) => {
    const at = ref.lastIndexOf('@');
    return ref.slice(0, at) === capability && ref.slice(at + 1).split('.')[0] === major;
  });
}

/**
 * Every constrained parameter must be present (in `params`, else `input`) with an allowed value.
 * [decision] A constrained key the call does not carry fails: a constraint is a requirement, not a filter.
 */
export function paramsAllowed(
  scope: TokenScope,
  params: Record<string, unknown> | undefined,
  input: Record<string, unknown> | undefined,
): boolean {
  for (const [key, allowed] of Object.entries(scope.params_constraints)) {
    const has = (o: Record<string, unknown> | undefined) =>
      !!o && Object.prototype.hasOwnProperty.call(o, key);
    const value = has(params) ? params![key] : has(input) ? input![key] : undefined;
    if (value === undefined || !allowed.some((a) => a === value)) return false;
  }
  return true;
}

/** Per-jti sliding one-minute budget (§7.2 last row). */
export class TokenRateLimiter {
  private readonly hits = new Map<string, number[]>();
  /** Record one call at `nowMs`; false when the budget of `limitPerMinute` (0 = unlimited) is used. */
  take(jti: string, limitPerMinute: number, nowMs: number): boolean {
    if (limitPerMinute <= 0) return true;
    const list = (this.hits.get(jti) ?? []).filter((t) => t > nowMs - 60_000);
    if (list.length >= limitPerMinute) {
      this.hits.set(jti, list);
      return false;
    }
    list.push(nowMs);
    this.hits.set(jti, list);
    return true;
  }
}

export interface CallContext {
  /** Verified caller of the bus call (its `from`). */
  from: NodeID;
  capability: string;
  version: string;
  params?: Record<string, unknown>;
  input?: Record<string, unknown>;
  /** `auth.allow_bearer_tokens` (false in the browser). */
  allowBearer?: boolean;
  rateLimiter?: TokenRateLimiter;
  nowMs?: number;
}

/** §7.2 rows 9–11 on an already verified token. Throws HnError(invalid_signature | token_scope_insufficient | rate_limited). */
export function checkTokenForCall(d: DecodedToken, call: CallContext): void {
  const p = d.payload;
  if (p.sub === '*') {
    if (!call.allowBearer) throw new HnError('invalid_signature', 'bearer tokens are not accepted here');
  } else if (p.sub !== call.from) {
    throw new HnError('invalid_signature', 'token subject is not the caller');
  }
  if (
    !capabilityCovered(p.scope, call.capability, call.version) ||
    !paramsAllowed(p.scope, call.params, call.input)
  ) {
    fail('token_scope_insufficient', 'token scope does not cover this call');
  }
  if (
    call.rateLimiter &&
    !call.rateLimiter.take(p.jti, p.scope.rate_limit_per_minute, call.nowMs ?? Date.now())
  ) {
    throw new HnError('rate_limited', 'token rate budget used', { retry_after_ms: 1000 });
  }
}

/** Sign a payload as-is and render the token string (no issuance checks). */
export function encodeToken(issuer: KeyPair, payload: TokenPayload): AuthToken {
  if (payload.iss !== issuer.nodeId) throw new HnError('bad_request', 'iss must be the signing node');
  const p = b64url(canonical(payload));
  const sig = signBytes(issuer, utf8(`${HEADER_SEGMENT}.${p}`));
  return `${TOKEN_PREFIX}${HEADER_SEGMENT}.${p}.${b64url(sig)}` as AuthToken;
}

export interface IssueRequest {
  sub: NodeID | '*';
  aud: NodeID;
  scope: Partial<TokenScope> & { capabilities: string[] };
  /** Default TOKEN_DEFAULT_TTL_SECONDS. */
  ttlSeconds?: number;
  issuedVia?: IssuedVia;
  /** Unix seconds; default now. */
  now?: number;
  notBeforeOffsetSeconds?: number;
  jti?: string;
}

export interface IssueContext {
  membership: MembershipLookup;
  /** `auth.token_max_ttl_seconds` (≤ 86 400). */
  configMaxTtlSeconds?: number;
  /** Community policy `capability_token_ttl_seconds`. */
  policyTtlSeconds?: number;
  /** v1 strictness: scope may only name capabilities this issuer offers. */
  offers?: (capabilityRef: string) => boolean;
  allowBearer?: boolean;
  /** Size cap of the issued token; default TOKEN_MAX_ISSUED_BYTES (800), never above TOKEN_MAX_INPUT_BYTES. */
  maxBytes?: number;
}

export interface IssuedToken {
  token: AuthToken;
  payload: TokenPayload;
}

/** Issue a token (§7.3): issuer must be a member, TTL within limits, result ≤ 800 bytes. */
export function issueToken(issuer: KeyPair, req: IssueRequest, ctx: IssueContext): IssuedToken {
  const level = ctx.membership(issuer.nodeId);
  if (level === null || level === 'unknown' || level === 'revoked') {
    throw new HnError('unauthorized', 'only members may issue tokens');
  }
  if (req.sub === '*' && !ctx.allowBearer) throw new HnError('bad_request', 'bearer tokens are disabled');
  if (!(req.sub === '*' || NODE_ID_RE.test(req.sub)) || !NODE_ID_RE.test(req.aud)) {
    throw new HnError('bad_request', 'sub/aud must be NodeIDs');
  }
  const ttl = req.ttlSeconds ?? TOKEN_DEFAULT_TTL_SECONDS;
  const maxTtl = Math.min(
    TOKEN_MAX_TTL_SECONDS,
    ctx.configMaxTtlSeconds ?? TOKEN_MAX_TTL_SECONDS,
    ctx.policyTtlSeconds ?? TOKEN_MAX_TTL_SECONDS,
  );
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > maxTtl) {
    throw new HnError('bad_request', `token TTL must be 1..${maxTtl} seconds`);
  }
  for (const c of req.scope.capabilities) {
    if (!CAP_REF_RE.test(c)) throw new HnError('bad_request', 'scope capability must be name@MAJOR.MINOR');
    if (ctx.offers && !ctx.offers(c))
      throw new HnError('bad_request', 'scope names a capability the issuer does not offer');
  }
  const now = req.now ?? Math.floor(Date.now() / 1000);
  const payload: TokenPayload = {
    iss: issuer.nodeId,
    sub: req.sub,
    aud: req.aud,
    iat: now,
    nbf: now + (req.notBeforeOffsetSeconds ?? 0),
    exp: now + ttl,
    jti: req.jti ?? ulid(),
    scope: {
      capabilities: [...req.scope.capabilities],
      params_constraints: req.scope.params_constraints ?? {},
      rate_limit_per_minute: req.scope.rate_limit_per_minute ?? 0,
      max_calls_total: req.scope.max_calls_total ?? null,
    },
    issued_via: req.issuedVia ?? 'manual',
  };
  // round-trip through the decoder so an issued token is always one we accept structurally
  const token = encodeToken(issuer, payload);
  const cap = Math.min(ctx.maxBytes ?? TOKEN_MAX_ISSUED_BYTES, TOKEN_MAX_INPUT_BYTES);
  if (token.length > cap)
    throw new HnError('bad_request', `token is ${token.length} bytes; the limit is ${cap}`);
  decodeToken(token);
  return { token, payload };
}
