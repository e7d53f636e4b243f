/**
 * Community membership view (minimal M01/M13 part): who may link, call and author events.
 * `open` communities (the default demo mesh) admit every valid NodeID as `member`;
 * `invite` communities admit the founder (anchor), invited nodes (`unknown` until they join)
 * and joined members at their invited level. Revocation is Lamport-aware: events authored
 * before the revocation stay valid. The state is set-based, so any arrival order gives the
 * same view.
 */
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';

export type Admission = 'open' | 'invite';

export interface CommunityEvent {
  event_type: string;
  author: NodeID;
  lamport: number;
  data: Record<string, any>;
  event_id: string;
}

export const COMMUNITY_EVENT_TYPES = [
  'community.created',
  'community.member.invited',
  'community.member.joined',
  'community.member.promoted',
  'community.member.demoted',
  'community.member.revoked',
  'community.policy.updated',
] as const;

export class CommunityView {
  private invites = new Map<string, { invitee: NodeID; level: TrustLevel; lamport: number }>(); // event_id →
  private joined = new Map<NodeID, TrustLevel>();
  private revokedAt = new Map<NodeID, number>();
  admission: Admission;
  created = false;

  constructor(
    readonly communityId: NodeID,
    admission: Admission,
  ) {
    this.admission = admission;
  }

  /** Every node revoked at the current head. */
  revokedNodes(): NodeID[] {
    return [...this.revokedAt.keys()];
  }

  /** Current level: null = not a member, 'revoked' = revoked. */
  levelOf(node: NodeID, atLamport = Infinity): TrustLevel | 'revoked' | null {
    const r = this.revokedAt.get(node);
    if (r !== undefined && r <= atLamport) return 'revoked';
    if (node === this.communityId) return 'anchor';
    const j = this.joined.get(node);
    if (j) return j;
    if (this.admission === 'open') return 'member';
    for (const inv of this.invites.values()) if (inv.invitee === node) return 'unknown';
    return null;
  }

  /** May `ev.author` author this event? null = yes, else the rejection reason. */
  authorise(ev: CommunityEvent): 'unknown_author' | 'revoked_author' | null {
    const lvl = this.levelOf(ev.author, ev.lamport);
    if (lvl === 'revoked') return 'revoked_author';
    if (ev.event_type === 'community.created')
      return ev.author === this.communityId ? null : 'unknown_author';
    if (ev.event_type === 'community.member.joined') {
      const inv = this.invites.get(String(ev.data.invite_event_id));
      if (this.admission === 'open' || (inv && inv.invitee === ev.author)) return null;
      return 'unknown_author';
    }
    if (lvl === null || lvl === 'unknown') return 'unknown_author';
    if (ev.event_type === 'community.member.promoted' || ev.event_type === 'community.member.demoted')
      return lvl === 'anchor' || lvl === 'trusted' ? null : 'unknown_author';
    if (ev.event_type === 'community.member.revoked' || ev.event_type === 'community.policy.updated') {
      return lvl === 'anchor' || (ev.event_type === 'community.member.revoked' && lvl === 'trusted')
        ? null
        : 'unknown_author';
    }
    return null;
  }

  apply(ev: CommunityEvent): void {
    const d = ev.data;
    switch (ev.event_type) {
      case 'community.created':
        if (ev.author !== this.communityId) return;
        this.created = true;
        if (d.policy?.admission === 'open' || d.policy?.admission === 'invite')
          this.admission = d.policy.admission;
        return;
      case 'community.member.invited':
        this.invites.set(ev.event_id, {
          invitee: d.invitee_node_id,
          level: d.initial_level ?? 'member',
          lamport: ev.lamport,
        });
        return;
      case 'community.member.joined': {
        const inv = this.invites.get(String(d.invite_event_id));
        if (inv && inv.invitee === ev.author) this.joined.set(ev.author, inv.level);
        else if (this.admission === 'open') this.joined.set(ev.author, 'member');
        return;
      }
      case 'community.member.promoted':
      case 'community.member.demoted': {
        // only a trusted member or the anchor changes levels, never to above its own (core digest §3);
        // in an open community every valid NodeID is a member, so any member can be promoted
        const by = this.levelOf(ev.author, ev.lamport);
        const allowed = by === 'anchor' || (by === 'trusted' && d.new_level !== 'anchor');
        const target = d.target_node_id as NodeID;
        const eligible =
          this.joined.has(target) || (this.admission === 'open' && target !== this.communityId);
        if (allowed && eligible) this.joined.set(target, d.new_level);
        return;
      }
      case 'community.member.revoked': {
        const prev = this.revokedAt.get(d.target_node_id);
        if (prev === undefined || ev.lamport < prev) this.revokedAt.set(d.target_node_id, ev.lamport);
        return;
      }
      case 'community.policy.updated':
        if (d.policy?.admission === 'open' || d.policy?.admission === 'invite')
          this.admission = d.policy.admission;
        return;
    }
  }
}

/** Data schemas of the core event types (validated on receipt; `data_invalid` otherwise). */
const NODE = { type: 'string', pattern: '^ed25519:[A-Za-z0-9_-]{43}$' };
const LEVEL = { enum: ['member', 'trusted', 'anchor'] };
export const CORE_EVENT_SCHEMAS: Record<string, Record<string, unknown>> = {
  'community.created': {
    type: 'object',
    required: ['name', 'founder_node_id', 'policy'],
    properties: {
      name: { type: 'string', maxLength: 128 },
      founder_node_id: NODE,
      policy: { type: 'object' },
    },
  },
  'community.member.invited': {
    type: 'object',
    required: ['invitee_node_id', 'initial_level'],
    properties: {
      invitee_node_id: NODE,
      display_name: { type: 'string', maxLength: 64 },
      initial_level: { enum: ['member', 'trusted'] },
    },
  },
  'community.member.joined': {
    type: 'object',
    required: ['invite_event_id'],
    properties: { invite_event_id: { type: 'string', maxLength: 32 } },
  },
  'community.member.promoted': {
    type: 'object',
    required: ['target_node_id', 'new_level'],
    properties: { target_node_id: NODE, new_level: LEVEL },
  },
  'community.member.demoted': {
    type: 'object',
    required: ['target_node_id', 'new_level'],
    properties: { target_node_id: NODE, new_level: LEVEL },
  },
  'community.member.revoked': {
    type: 'object',
    required: ['target_node_id', 'reason'],
    properties: { target_node_id: NODE, reason: { type: 'string', maxLength: 256 } },
  },
  'community.policy.updated': {
    type: 'object',
    required: ['policy'],
    properties: { policy: { type: 'object' } },
  },
};

const RANK: Record<string, number> = { member: 1, trusted: 2, anchor: 3 };

/**
 * The `community.member.promoted` data this node appends to raise `target` to `newLevel` (core digest §3):
 * the caller must be `trusted` or the anchor and may not promote above its own level; the target must be
 * a current member below `newLevel`. It carries the author's co-signature over the canonical
 * `{type:"community.cosign", community_id, action:"promote", target_node_id, new_level}` (promote needs 1).
 * Errors: `unauthorized` (caller's level), `bad_request` (target or level).
 */
export function promotionData(
  view: CommunityView,
  self: NodeID,
  target: NodeID,
  newLevel: TrustLevel,
  sign: (o: Record<string, unknown>) => { signature: string },
): Record<string, unknown> {
  if (typeof target !== 'string' || !/^ed25519:[A-Za-z0-9_-]{43}$/.test(target))
    throw new HnError('bad_request', 'target must be a full NodeID');
  const mine = view.levelOf(self);
  if (mine !== 'anchor' && mine !== 'trusted')
    throw new HnError(
      'unauthorized',
      `promoting needs level trusted or anchor (this node: ${mine ?? 'none'})`,
    );
  if (!(newLevel in RANK) || newLevel === 'member')
    throw new HnError('bad_request', `new_level must be trusted or anchor, got ${String(newLevel)}`);
  if (RANK[newLevel]! > RANK[mine]!)
    throw new HnError('unauthorized', `a ${mine} member cannot promote to ${newLevel}`);
  const now = view.levelOf(target);
  if (now === null || now === 'revoked' || now === 'unknown')
    throw new HnError('bad_request', `target is not a member (${now ?? 'none'})`);
  if ((RANK[now] ?? 0) >= RANK[newLevel]!) throw new HnError('bad_request', `target is already ${now}`);
  const cosign = {
    type: 'community.cosign',
    community_id: view.communityId,
    action: 'promote',
    target_node_id: target,
    new_level: newLevel,
  };
  return {
    target_node_id: target,
    new_level: newLevel,
    co_signers: [{ node_id: self, signature: sign(cosign).signature }],
  };
}
