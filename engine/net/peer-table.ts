/**
 * The node's peer table: one PeerSession per peer, the anti-entropy sync timer of each link, and
 * change notifications (a link opened or closed). Link kind in the shared vocabulary.
 */
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import type { Clock, LinkKind } from '../core/vocab.js';
import { shortNodeId } from '../identity/identity.js';
import type { Logger } from '../observability/logger.js';
import type { BytePort } from './port.js';
import { PeerSession, type LinkInfo, type SessionDeps, type Transport } from './session.js';

export const linkKindOf = (t: Transport): LinkKind => (t === 'relay' ? 'relayed' : t);

export interface PeerTableDeps {
  session: Omit<SessionDeps, 'now'> & { now?: () => number };
  levelOf: (n: NodeID) => TrustLevel | 'revoked' | null;
  syncIntervalMs: () => number;
  clock: Clock;
  log: Logger;
}

export class PeerTable {
  readonly sessions = new Map<NodeID, PeerSession>();
  private listeners = new Set<() => void>();
  private closed = false;

  constructor(private d: PeerTableDeps) {}

  /** attach a link; resolves when the handshake is done; syncs at once and then every sync interval */
  async connect(port: BytePort, info: LinkInfo): Promise<PeerSession> {
    if (this.closed) throw new HnError('closed', 'node is closed');
    const s = new PeerSession(port, info, this.d.session as SessionDeps);
    const peer = await s.ready;
    const old = this.sessions.get(peer);
    this.sessions.set(peer, s);
    if (old && old !== s) old.close('replaced');
    const syncNow = () =>
      void s.sync().catch((e: unknown) => {
        // a link that closes mid-sync is normal; anything else is worth a line
        if (s.state === 'open')
          this.d.log.warn('event sync failed', { peer: shortNodeId(peer), error: e as Error });
        else this.d.log.debug('event sync ended with the link', { peer: shortNodeId(peer) });
      });
    syncNow();
    const stopTimer = this.d.clock.setInterval(syncNow, this.d.syncIntervalMs());
    s.onClose(() => {
      stopTimer();
      if (this.sessions.get(peer) === s && s.state === 'closed') this.sessions.delete(peer);
      this.changed();
    });
    this.changed();
    return s;
  }

  /** the open session to a peer, or `partition` */
  open(peer: NodeID): PeerSession {
    const s = this.sessions.get(peer);
    if (!s || s.state !== 'open') throw new HnError('partition', `no open link to ${shortNodeId(peer)}`);
    return s;
  }

  /** the node's public peer list (link as the session names its transport: direct | relay | memory) */
  list() {
    return [...this.sessions.values()].map((s) => ({
      id: s.peer,
      short_id: shortNodeId(s.peer),
      link: s.kind,
      rtt_ms: s.rtt_ms,
      state: s.state,
      agreed_version: s.agreedVersion,
    }));
  }

  /** peers as modules see them (shared link-kind vocabulary and trust level) */
  entries() {
    return [...this.sessions.values()].map((s) => ({
      id: s.peer,
      link: linkKindOf(s.kind),
      trust: this.d.levelOf(s.peer),
      state: s.state,
      rtt_ms: s.rtt_ms,
    }));
  }

  async sync(peer?: NodeID): Promise<{ sent: number; received: number }> {
    const targets = peer ? [this.open(peer)] : [...this.sessions.values()].filter((s) => s.state === 'open');
    let sent = 0;
    let received = 0;
    for (const s of targets) {
      const r = await s.sync();
      sent += r.sent;
      received += r.received;
    }
    return { sent, received };
  }

  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  private changed() {
    for (const cb of this.listeners) {
      try {
        cb();
      } catch (e) {
        this.d.log.error('peer listener failed', { error: e as Error });
      }
    }
  }

  closeAll(reason: string) {
    this.closed = true;
    for (const s of this.sessions.values()) s.close(reason);
  }
}
