/**
 * Room passes on a node (issue #18, attack 7): which pass this node shows when it joins its invite
 * community's relay room, kept in the node's own `meta` store (never in the event log); the founder
 * hands a fresh pass to every member or invitee it links with (link message `relay.pass`) and
 * renews it on long-lived links before it runs out; a member delegates one to the node it invites.
 */
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import type { KeyPair } from '../identity/identity.js';
import type { StorageAdapter } from '../store/types.js';
import {
  checkRelayPass,
  delegateRelayPass,
  issueRelayPass,
  parseWallClock,
  revokeRelayPass,
  type RelayRevocation,
  RELAY_PASS_DEFAULT_TTL_SECONDS,
  type RelayPass,
} from './relay-wire.js';

/** The link message (`mod.msg` type) that carries a pass from the founder to a member. */
export const RELAY_PASS_LINK_TYPE = 'relay.pass';
/** The founder renews a pass it handed out once this much of its lifetime is left. */
export const RELAY_PASS_RENEW_FRACTION = 0.5;
const META_KEY = 'relay_pass';

export interface RelayPassDeps {
  keys: KeyPair;
  store: StorageAdapter;
  communityId: NodeID;
  admission: () => 'open' | 'invite';
  levelOf: (n: NodeID) => TrustLevel | 'revoked' | null;
  /** nodes revoked in the community view (their passes are revoked at the relay too) */
  revoked?: () => NodeID[];
  now: () => number;
  log?: { info(msg: string, f?: Record<string, unknown>): void };
}

export class RelayPasses {
  private own: RelayPass | null = null;
  /** founder side: expiry (ms) of the last pass handed to each linked peer, per link */
  private readonly handed = new WeakMap<object, number>();
  /** founder side: revocations already given to the relay on the current connection */
  private readonly revocationsSent = new Set<NodeID>();

  constructor(private readonly d: RelayPassDeps) {}

  private get founder() {
    return this.d.keys.nodeId === this.d.communityId;
  }
  private valid(p: unknown): p is RelayPass {
    return checkRelayPass(p, this.d.communityId, this.d.keys.nodeId, this.d.now()) === null;
  }

  /** Read the stored pass (a stale or foreign one is ignored). */
  async load(): Promise<void> {
    const rec = await this.d.store.get<{ k: string; pass: unknown }>('meta', META_KEY);
    this.own = rec && this.valid(rec.pass) ? rec.pass : null;
  }

  /** The pass to show when joining: the founder signs its own; others show the stored one. */
  current(): RelayPass | undefined {
    if (this.d.admission() !== 'invite') return undefined;
    if (this.founder) return issueRelayPass(this.d.keys, this.d.keys.nodeId, this.d.now());
    return this.own && this.valid(this.own) ? this.own : undefined;
  }

  /**
   * Keep `p` when it is a valid pass of this node and lasts longer than the one held (a direct
   * founder pass always replaces a delegated one). Returns whether it was kept.
   */
  async accept(p: unknown): Promise<boolean> {
    if (this.founder || !this.valid(p)) return false;
    const held = this.own && this.valid(this.own) ? this.own : null;
    const longer = !held || parseWallClock(p.expires_at)! > parseWallClock(held.expires_at)!;
    const direct = p.by === undefined;
    const better =
      !held || (direct && held.by !== undefined) || (direct === (held.by === undefined) && longer);
    if (!better) return false;
    this.own = p;
    await this.d.store.put('meta', {
      k: META_KEY,
      pass: p,
      updated_at: new Date(this.d.now()).toISOString(),
    });
    return true;
  }

  /** A `relay.pass` link message: only the founder's passes are taken from a link. */
  async onLinkMessage(from: NodeID, payload: unknown): Promise<void> {
    if (from !== this.d.communityId) {
      this.d.log?.info('relay pass from a non-founder ignored', { peer: from });
      return;
    }
    if (!(await this.accept(payload))) this.d.log?.info('relay pass not kept', { peer: from });
  }

  /** A pass for `peer`: the founder issues one; a member holding a direct pass delegates one. */
  issue(peer: NodeID, ttlSeconds?: number): RelayPass {
    if (this.founder) return issueRelayPass(this.d.keys, peer, this.d.now(), ttlSeconds);
    const own = this.own;
    if (!own || own.by !== undefined)
      throw new HnError(
        'unauthorized',
        'a room pass is issued by the founder or delegated by a member holding its pass',
      );
    return delegateRelayPass(this.d.keys, own, peer, this.d.now(), ttlSeconds);
  }

  /**
   * Founder of an invite community: a relay revocation for each revoked member not yet sent on this
   * relay connection (`fresh` after a (re)join: the relay keeps them in memory only).
   */
  revocationsToSend(fresh = false): RelayRevocation[] {
    if (fresh) this.revocationsSent.clear();
    if (!this.founder || this.d.admission() !== 'invite') return [];
    const out: RelayRevocation[] = [];
    for (const n of this.d.revoked?.() ?? []) {
      if (this.revocationsSent.has(n) || n === this.d.keys.nodeId) continue;
      this.revocationsSent.add(n);
      out.push(revokeRelayPass(this.d.keys, n, this.d.now()));
    }
    return out;
  }

  /**
   * Founder: hand a pass to each open link's member or invitee that has none from this link yet
   * or whose last one is past RELAY_PASS_RENEW_FRACTION of its lifetime.
   */
  handOut(links: readonly { peer: NodeID; link: object; send(pass: RelayPass): Promise<void> }[]): void {
    if (!this.founder || this.d.admission() !== 'invite') return;
    const now = this.d.now();
    const renewAt = RELAY_PASS_DEFAULT_TTL_SECONDS * 1000 * RELAY_PASS_RENEW_FRACTION;
    for (const l of links) {
      const lvl = this.d.levelOf(l.peer);
      if (lvl === null || lvl === 'revoked' || l.peer === this.d.keys.nodeId) continue;
      const until = this.handed.get(l.link);
      if (until !== undefined && until - now > renewAt) continue;
      const pass = issueRelayPass(this.d.keys, l.peer, now);
      this.handed.set(l.link, parseWallClock(pass.expires_at)!);
      l.send(pass).catch((e: unknown) =>
        this.d.log?.info('relay pass not sent', { peer: l.peer, error: String(e).slice(0, 120) }),
      );
    }
  }
}
