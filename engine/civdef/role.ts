/**
 * M31 role certificates and revocations (digest §3.2, §4.1): cert_id, signatures, the chain walk to
 * the trust roots, states. Pure: storage lookups are passed in.
 */
import { canonical } from '../core/canonical.js';
import { toBase32NoPad } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, verifyObject } from '../identity/identity.js';
import { isRegionCode } from './target.js';
import type { RegionAdapter } from './regions/nrw.js';

export const SCOPES = [
  'alert.publish',
  'alert.cancel',
  'alert.ack',
  'alert.cosign',
  'cosign.waived',
  'role.issue',
  'role.revoke',
  'audit.export',
] as const;
export const MAX_VALIDITY_S = 730 * 86400;
export const SKEW_S = 300;
export const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export type Signer = <T extends Record<string, unknown>>(obj: T) => T & { signature: string };

export interface RoleCertificate {
  schema_version: 1;
  cert_id: string;
  holder: NodeID;
  role: string;
  region: string;
  issuer: NodeID;
  issuer_chain: NodeID[];
  issued_at: string;
  expires_at: string;
  scopes: string[];
  revocation_url: string | null;
  signature: string;
}
export interface Revocation {
  cert_id: string;
  revoked_by: NodeID;
  revoked_at: string;
  reason: string;
  signature: string;
}
export type CertState = 'issued' | 'active' | 'expired' | 'revoked' | 'unrecognised';

export const iso = (ms: number): string =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
export const parseTime = (s: string): number => Date.parse(s);
const err = (
  code: 'civdef_cert_invalid' | 'civdef_cert_unrecognised' | 'civdef_role_revoked',
  why: string,
): never => {
  throw new HnError(code, why);
};

/** `base32upper_nopad(SHA-256(JCS(cert − cert_id − signature)))` */
export function certIdOf(cert: Record<string, unknown>): string {
  const { cert_id: _i, signature: _s, ...rest } = cert;
  return toBase32NoPad(sha256(canonical(rest)));
}

/** Issue a certificate: the issuer's signer signs it (cert_id included). */
export function issueCert(
  sign: Signer,
  f: Omit<RoleCertificate, 'cert_id' | 'signature' | 'schema_version' | 'revocation_url'> & {
    revocation_url?: string | null;
  },
): RoleCertificate {
  const body = { schema_version: 1 as const, revocation_url: null, ...f, scopes: [...f.scopes].sort() };
  return sign({ ...body, cert_id: certIdOf(body) }) as RoleCertificate;
}

export function signRevocation(sign: Signer, r: Omit<Revocation, 'signature'>): Revocation {
  return sign({ ...r }) as Revocation;
}

/** Shape, cert_id and issuer signature → `civdef_cert_invalid` on any failure. */
export function checkCertShape(v: unknown): RoleCertificate {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return err('civdef_cert_invalid', 'cert must be an object');
  const c = v as Record<string, unknown>;
  const keys = [
    'schema_version',
    'cert_id',
    'holder',
    'role',
    'region',
    'issuer',
    'issuer_chain',
    'issued_at',
    'expires_at',
    'scopes',
    'revocation_url',
    'signature',
  ];
  if (Object.keys(c).some((k) => !keys.includes(k)) || keys.some((k) => !(k in c)))
    err('civdef_cert_invalid', 'cert fields');
  if (c.schema_version !== 1) err('civdef_cert_invalid', 'schema_version');
  if (!isNodeId(c.holder) || !isNodeId(c.issuer)) err('civdef_cert_invalid', 'holder/issuer');
  if (!isRegionCode(c.region) || !isRegionCode(c.role, 12)) err('civdef_cert_invalid', 'role/region');
  const ch = c.issuer_chain;
  if (!Array.isArray(ch) || ch.length < 1 || ch.length > 4 || !ch.every(isNodeId) || ch[0] !== c.issuer)
    err('civdef_cert_invalid', 'issuer_chain');
  if (
    typeof c.issued_at !== 'string' ||
    !TIME_RE.test(c.issued_at) ||
    typeof c.expires_at !== 'string' ||
    !TIME_RE.test(c.expires_at)
  )
    err('civdef_cert_invalid', 'times');
  const span = (parseTime(c.expires_at as string) - parseTime(c.issued_at as string)) / 1000;
  if (!(span > 0 && span <= MAX_VALIDITY_S)) err('civdef_cert_invalid', 'validity window');
  if (!Array.isArray(c.scopes) || !c.scopes.every((s) => (SCOPES as readonly string[]).includes(s as string)))
    err('civdef_cert_invalid', 'scopes');
  if (c.revocation_url !== null && typeof c.revocation_url !== 'string')
    err('civdef_cert_invalid', 'revocation_url');
  let id: string;
  try {
    id = certIdOf(c);
  } catch {
    return err('civdef_cert_invalid', 'not canonicalisable');
  }
  if (id !== c.cert_id) err('civdef_cert_invalid', 'cert_id mismatch');
  if (!verifyObject(c, c.issuer as NodeID)) err('civdef_cert_invalid', 'issuer signature');
  return c as unknown as RoleCertificate;
}

export function checkRevocation(
  v: unknown,
  cert: RoleCertificate | undefined,
  roots: ReadonlySet<string>,
): Revocation {
  if (typeof v !== 'object' || v === null) throw new HnError('bad_request', 'revocation must be an object');
  const r = v as Revocation;
  if (
    typeof r.cert_id !== 'string' ||
    !isNodeId(r.revoked_by) ||
    typeof r.revoked_at !== 'string' ||
    !TIME_RE.test(r.revoked_at) ||
    typeof r.reason !== 'string'
  )
    throw new HnError('bad_request', 'revocation fields');
  if (cert) {
    const allowed = new Set<string>([cert.issuer, ...cert.issuer_chain, ...roots]);
    if (!allowed.has(r.revoked_by)) throw new HnError('civdef_cert_out_of_scope', 'revoker not in chain');
  } else if (!roots.has(r.revoked_by)) throw new HnError('not_found', 'unknown cert');
  if (!verifyObject(r as never, r.revoked_by))
    throw new HnError('civdef_cert_invalid', 'revocation signature');
  return r;
}

export interface ChainCtx {
  roots: ReadonlySet<string>;
  adapter: RegionAdapter | null;
  revoked(cert_id: string): boolean;
  /** candidate certs held by `holder` (local store + bundle) */
  certsOf(holder: NodeID): RoleCertificate[];
}

function inWindow(c: RoleCertificate, at: number): boolean {
  return at >= parseTime(c.issued_at) - SKEW_S * 1000 && at < parseTime(c.expires_at);
}

/** §4.1 full check at time `at` (ms). Throws the seed code of the first failure. */
export function checkChain(cert: RoleCertificate, at: number, ctx: ChainCtx): void {
  checkCertShape(cert);
  if (ctx.revoked(cert.cert_id)) err('civdef_role_revoked', 'cert revoked');
  if (!inWindow(cert, at)) err('civdef_cert_invalid', 'outside validity window');
  if (!ctx.adapter) throw new HnError('civdef_region_unsupported', 'no adapter for region');
  const seen = new Set<string>([cert.holder]);
  const chain = cert.issuer_chain;
  let ok = false;
  for (let i = 0; i < chain.length; i++) {
    const link = chain[i]!;
    if (seen.has(link)) err('civdef_cert_unrecognised', 'repeated node in chain');
    seen.add(link);
    if (ctx.roots.has(link)) {
      ok = true;
      break;
    }
    const next = chain[i + 1];
    if (!next) break;
    const parent = ctx.certsOf(link).find((p) => {
      if (p.issuer !== next || !p.scopes.includes('role.issue') || ctx.revoked(p.cert_id) || !inWindow(p, at))
        return false;
      try {
        checkCertShape(p);
        return true;
      } catch {
        return false;
      }
    });
    if (!parent) break;
  }
  if (!ok) err('civdef_cert_unrecognised', 'chain does not reach a trust root');
  if (!ctx.adapter.validateRole(cert)) err('civdef_cert_unrecognised', 'unknown role or region mismatch');
}

/** State of a stored cert at `now` (§3.2). */
export function certState(cert: RoleCertificate, now: number, ctx: ChainCtx): CertState {
  if (ctx.revoked(cert.cert_id)) return 'revoked';
  if (now < parseTime(cert.issued_at) - SKEW_S * 1000) return 'issued';
  if (now >= parseTime(cert.expires_at)) return 'expired';
  try {
    checkChain(cert, now, ctx);
    return 'active';
  } catch {
    return 'unrecognised';
  }
}
