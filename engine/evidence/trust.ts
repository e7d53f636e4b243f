/**
 * M30 advisory trust (digest §4.6): a fixed formula, always shown, locally overridable, never a
 * filter. Pure functions; the service gathers the inputs from the store and the community view.
 */
import type { TrustLevel } from '../core/types.js';

export type Membership = TrustLevel | 'revoked' | null;
export type Override = 'allow' | 'block';

export interface AsserterFacts {
  override?: Override | null;
  membership: Membership;
  days_known: number;
  /** claims by the node */
  claims: number;
  /** of those, claims disputed by another node (raw dispute count, no recursion) */
  disputed: number;
}

export const TRUST_DEFAULT = 0.5;
const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

export function membershipBonus(m: Membership): number {
  switch (m) {
    case 'anchor':
      return 0.2;
    case 'trusted':
      return 0.1;
    case 'member':
      return 0;
    default:
      return -0.2; // unknown, revoked or not a member
  }
}

/** score_asserter(n): override wins; else default + membership + age + track record, clamped. */
export function scoreAsserter(f: AsserterFacts, trustDefault = TRUST_DEFAULT): number {
  if (f.override === 'block') return 0;
  if (f.override === 'allow') return 1;
  const c = Math.max(0, f.claims);
  const d = Math.min(Math.max(0, f.disputed), c);
  const s =
    trustDefault +
    membershipBonus(f.membership) +
    0.1 * Math.min(1, Math.max(0, f.days_known) / 365) +
    0.4 * ((c - d + 1) / (c + 2) - 0.5);
  return clamp01(s);
}

export interface SourceScoring {
  asserter(node: string): number;
  /** author of an `event:` source when known */
  eventAuthor?(eventId: string): string | undefined;
  hostOverride(host: string): Override | null | undefined;
  ebkhTrust: number;
  trustDefault: number;
}

export function scoreSource(sourceId: string, o: SourceScoring): number {
  const i = sourceId.indexOf(':');
  const kind = sourceId.slice(0, i);
  const rest = sourceId.slice(i + 1);
  switch (kind) {
    case 'node':
      return o.asserter(rest);
    case 'event': {
      const author = o.eventAuthor?.(rest);
      return author ? o.asserter(author) : o.trustDefault;
    }
    case 'url': {
      let host: string;
      try {
        host = new URL(rest).hostname;
      } catch {
        return o.trustDefault;
      }
      const ov = o.hostOverride(host);
      return ov === 'block' ? 0 : ov === 'allow' ? 1 : o.trustDefault;
    }
    case 'ebkh':
      return o.ebkhTrust;
    default:
      return o.trustDefault;
  }
}

/** Claim trust = 0.5·asserter + 0.5·mean(sources), or the asserter alone; rounded to 3 dp. */
export function claimTrust(asserter: number, sources: number[]): number {
  const t = sources.length
    ? 0.5 * asserter + 0.5 * (sources.reduce((a, b) => a + b, 0) / sources.length)
    : asserter;
  return round3(t);
}
export const round3 = (x: number) => Math.round(x * 1000) / 1000;
