/**
 * Revocation set for token `jti`s (core §7.3). The authoritative source is the event log
 * (`auth.token.revoked {token_id, reason}`); whoever owns the log hydrates this set at start and
 * feeds it every accepted revocation. Persistence (IDB `revocations`) is the caller's business:
 * `entries()` / `addAll()` move the contents in and out.
 */
import { HnError } from '../core/errors.js';
import type { MembershipLookup, NodeID } from '../core/types.js';
import { ULID_RE } from '../core/ulid.js';

export type RevocationReason = 'manual' | 'policy' | 'compromise';
export const REVOCATION_REASONS: readonly RevocationReason[] = ['manual', 'policy', 'compromise'];

export interface RevocationEntry {
  jti: string;
  /** Unix seconds. */
  revoked_at: number;
  reason: RevocationReason;
  via_event_id?: string;
}

export class RevocationSet {
  private readonly map = new Map<string, RevocationEntry>();
  private readonly listeners: ((e: RevocationEntry) => void)[] = [];

  has(jti: string): boolean {
    return this.map.has(jti);
  }

  get size(): number {
    return this.map.size;
  }

  get(jti: string): RevocationEntry | undefined {
    return this.map.get(jti);
  }

  /** Add a revocation; returns false when the jti was already revoked. */
  add(
    jti: string,
    reason: RevocationReason = 'manual',
    revokedAt = Math.floor(Date.now() / 1000),
    viaEventId?: string,
  ): boolean {
    if (!ULID_RE.test(jti)) throw new HnError('bad_request', 'jti must be a ULID');
    if (!REVOCATION_REASONS.includes(reason)) throw new HnError('bad_request', 'unknown revocation reason');
    if (this.map.has(jti)) return false;
    const e: RevocationEntry = {
      jti,
      revoked_at: revokedAt,
      reason,
      ...(viaEventId ? { via_event_id: viaEventId } : {}),
    };
    this.map.set(jti, e);
    for (const l of this.listeners) l(e);
    return true;
  }

  addAll(entries: Iterable<RevocationEntry>): number {
    let n = 0;
    for (const e of entries) if (this.add(e.jti, e.reason, e.revoked_at, e.via_event_id)) n++;
    return n;
  }

  entries(): RevocationEntry[] {
    return [...this.map.values()];
  }

  onAdd(cb: (e: RevocationEntry) => void): void {
    this.listeners.push(cb);
  }

  /**
   * Apply an accepted `auth.token.revoked` event. The revoker must be the token's issuer (when known),
   * a `trusted`+ member, or the community root (core §7.3); others are ignored (returns false).
   */
  applyRevokedEvent(
    ev: {
      event_id?: string;
      author: NodeID;
      wall_clock?: string;
      data: { token_id?: unknown; reason?: unknown };
    },
    ctx: {
      membership: MembershipLookup;
      communityId: NodeID;
      issuerOf?: (jti: string) => NodeID | undefined;
    },
  ): boolean {
    const jti = ev.data.token_id;
    const reason = ev.data.reason;
    if (typeof jti !== 'string' || !ULID_RE.test(jti)) return false;
    if (typeof reason !== 'string' || !(REVOCATION_REASONS as readonly string[]).includes(reason))
      return false;
    const level = ctx.membership(ev.author);
    const allowed =
      ev.author === ctx.communityId ||
      level === 'trusted' ||
      level === 'anchor' ||
      (level !== null && level !== 'revoked' && ctx.issuerOf?.(jti) === ev.author);
    if (!allowed) return false;
    const at = ev.wall_clock ? Math.floor(Date.parse(ev.wall_clock) / 1000) : Math.floor(Date.now() / 1000);
    return this.add(
      jti,
      reason as RevocationReason,
      Number.isFinite(at) ? at : Math.floor(Date.now() / 1000),
      ev.event_id,
    );
  }
}
