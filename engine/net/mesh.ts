/**
 * Discovery and link management in a community room (core digest §9): join the relay room,
 * open a link to every roster peer (the lower NodeID initiates, so there is no glare), try a
 * direct WebRTC channel first and fall back to an end-to-end encrypted relayed link, then run
 * the signed link handshake. Peers that leave or go silent are dropped; the relay client
 * reconnects by itself and the roster that follows re-links whoever is missing.
 */
import type { HearthnetConfig } from '../core/config.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import type { KeyPair } from '../identity/identity.js';
import type { BytePort } from './port.js';
import { RelayClient, type WebSocketConstructor } from './relay-client.js';
import type { RelayPass } from './relay-wire.js';
import { acceptRelayedPorts, openRelayedPort, type SecurePort } from './relayed-port.js';
import type { LinkInfo, PeerSession } from './session.js';
import { openWebRtc, type SimplePeerCtor } from './webrtc-port.js';
import type { Logger } from '../observability/logger.js';

export interface JoinOptions {
  /** `ws(s)://host:port/ws` of the relay */
  url: string;
  WebSocket: WebSocketConstructor;
  /** simple-peer constructor; without it (or without WebRTC in the page) links go through the relay */
  SimplePeer?: SimplePeerCtor;
  /** `@roamhq/wrtc` under Node */
  wrtc?: unknown;
  displayName?: string;
  /**
   * Room pass for an invite community (issued by its founder or delegated by a member,
   * `node.issueRelayPass`), or a function read at each (re)join; the node keeps the passes the
   * founder hands it and shows the best one. Open communities need none.
   */
  relayPass?: RelayPass | (() => RelayPass | undefined);
  /** reconnect backoff start (tests shorten it) */
  backoffInitialMs?: number;
}

export interface MeshDeps {
  keys: KeyPair;
  communityId: NodeID;
  config: () => HearthnetConfig;
  levelOf: (n: NodeID) => TrustLevel | 'revoked' | null;
  connect: (port: BytePort, info: LinkInfo) => Promise<PeerSession>;
  openSession: (peer: NodeID) => PeerSession | undefined;
  /** the mesh's log (Diagnostics) */
  log?: Logger;
}

interface Attempt {
  rtc?: ReturnType<typeof openWebRtc>;
  fallback?: ReturnType<typeof setTimeout>;
  relayed?: boolean;
}

export class Mesh {
  readonly client: RelayClient;
  private attempts = new Map<NodeID, Attempt>();
  private offs: (() => void)[] = [];
  private rtcBroken = false;
  private stopped = false;

  constructor(
    private d: MeshDeps,
    private o: JoinOptions,
  ) {
    this.client = new RelayClient({
      url: o.url,
      keyPair: d.keys,
      room: d.communityId,
      WebSocket: o.WebSocket,
      ...(o.displayName ? { displayName: o.displayName } : {}),
      ...(o.relayPass ? { pass: o.relayPass } : {}),
      ...(o.backoffInitialMs ? { backoffInitialMs: o.backoffInitialMs } : {}),
    });
  }

  start(): void {
    const c = this.client;
    this.offs.push(
      c.on('welcome', (w) => w.peers.forEach((p) => this.consider(p.node_id))),
      c.on('peer_joined', (p) => this.consider(p.node_id)),
      c.on('peer_left', (p) => this.forget(p.node_id)),
      c.on('signal', (s) => this.onSignal(s.from, s.data)),
      acceptRelayedPorts(c, {
        self: this.d.keys,
        ...(this.d.log ? { log: this.d.log } : {}),
        filter: (peer) => this.admissible(peer) && !this.linked(peer),
        onPort: (port) => void this.adopt(port),
        onError: (peer, e) => this.d.log?.info('relayed link offer failed', { peer, error: e }),
      }),
    );
    c.start();
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    for (const peer of [...this.attempts.keys()]) this.forget(peer);
    this.client.close();
  }

  private admissible(peer: NodeID): boolean {
    const lvl = this.d.levelOf(peer);
    return peer !== this.d.keys.nodeId && lvl !== null && lvl !== 'revoked';
  }
  private linked(peer: NodeID): boolean {
    return this.d.openSession(peer)?.state === 'open';
  }
  private initiator(peer: NodeID): boolean {
    return this.d.keys.nodeId < peer;
  }

  private consider(peer: NodeID): void {
    if (this.stopped || !this.admissible(peer) || this.linked(peer) || this.attempts.has(peer)) return;
    const cfg = this.d.config().transport;
    const open = [...this.attempts.keys()].length;
    if (open >= cfg.max_links) return;
    const a: Attempt = {};
    this.attempts.set(peer, a);
    const directAllowed = cfg.mode !== 'relay_only' && !!this.o.SimplePeer && !this.rtcBroken;
    if (!directAllowed) {
      if (cfg.mode === 'direct_only') return;
      if (this.initiator(peer)) this.openRelayed(peer);
      return;
    }
    if (this.initiator(peer)) this.startRtc(peer, a, true);
    // both sides: no direct link in time → the initiator opens a relayed one
    a.fallback = setTimeout(() => {
      if (this.linked(peer) || cfg.mode === 'direct_only') return;
      a.rtc?.destroy();
      delete a.rtc;
      if (this.initiator(peer)) this.openRelayed(peer);
    }, cfg.webrtc_connect_timeout_seconds * 1000);
  }

  private startRtc(peer: NodeID, a: Attempt, initiator: boolean): void {
    try {
      a.rtc = openWebRtc({
        initiator,
        SimplePeer: this.o.SimplePeer!,
        ...(this.o.wrtc ? { wrtc: this.o.wrtc } : {}),
        iceServers: this.d.config().transport.ice_servers as RTCIceServer[],
        onSignal: (data) => this.client.signal(peer, data),
        timeoutMs: this.d.config().transport.webrtc_connect_timeout_seconds * 1000,
      });
    } catch {
      // no WebRTC in this page (or it is switched off): the relay carries every link
      this.rtcBroken = true;
      if (initiator) this.openRelayed(peer);
      return;
    }
    const rtc = a.rtc;
    rtc.ready
      .then(async ({ port, dtlsLocal, dtlsRemote }) => {
        if (this.linked(peer) || a.relayed) return port.close('already linked');
        await this.d.connect(port, { transport: 'direct', expectedPeer: peer, dtlsLocal, dtlsRemote });
        this.settled(peer);
      })
      .catch((e: unknown) => {
        // the fallback timer takes over (a relayed link)
        if (!this.stopped)
          this.d.log?.info('direct link failed; falling back to the relay', { peer, error: e as Error });
      });
  }

  private onSignal(from: NodeID, data: unknown): void {
    if (this.stopped || !this.admissible(from)) return;
    const cfg = this.d.config().transport;
    if (cfg.mode === 'relay_only' || !this.o.SimplePeer || this.rtcBroken) return; // offers are ignored; the peer falls back
    let a = this.attempts.get(from);
    if (!a) {
      this.consider(from);
      a = this.attempts.get(from);
      if (!a) return;
    }
    if (!a.rtc) {
      if (this.initiator(from)) return; // we initiate towards this peer; a stray signal is ignored
      this.startRtc(from, a, false);
    }
    a.rtc?.signal(data);
  }

  private openRelayed(peer: NodeID): void {
    const a = this.attempts.get(peer);
    if (!a || a.relayed) return;
    a.relayed = true;
    openRelayedPort(this.client, peer, { self: this.d.keys, ...(this.d.log ? { log: this.d.log } : {}) })
      .then((port) => this.adopt(port))
      .catch((e: unknown) => {
        // retry on the next roster change or welcome
        this.d.log?.warn('relayed link failed; retrying on the next roster change', {
          peer,
          error: e as Error,
        });
        this.attempts.delete(peer);
      });
  }

  private async adopt(port: SecurePort): Promise<void> {
    const peer = port.peer;
    if (this.linked(peer)) return port.close('already linked');
    const a = this.attempts.get(peer) ?? {};
    a.relayed = true;
    a.rtc?.destroy();
    delete a.rtc;
    this.attempts.set(peer, a);
    try {
      // the E2E channel binding stands where DTLS fingerprints stand on direct links
      const binding = `e2e:${port.channelBinding}`;
      await this.d.connect(port, {
        transport: 'relay',
        expectedPeer: peer,
        dtlsLocal: binding,
        dtlsRemote: binding,
      });
      this.settled(peer);
    } catch {
      this.attempts.delete(peer);
    }
  }

  /** A link is up: stop the attempt's timers and re-consider the peer when the link goes. */
  private settled(peer: NodeID): void {
    const a = this.attempts.get(peer);
    if (a?.fallback) clearTimeout(a.fallback);
    const s = this.d.openSession(peer);
    s?.onClose(() => {
      if (this.d.openSession(peer) && this.d.openSession(peer) !== s && this.linked(peer)) return;
      this.attempts.delete(peer);
      if (!this.stopped && this.client.hasPeer(peer)) setTimeout(() => this.consider(peer), 500);
    });
  }

  /** The relay says the peer left: drop a pending attempt, but an established direct link does not
   *  depend on the relay — it stays until its own heartbeats or the data channel say otherwise. */
  private forget(peer: NodeID): void {
    const a = this.attempts.get(peer);
    if (!a) return;
    if (a.fallback) clearTimeout(a.fallback);
    const live = this.d.openSession(peer);
    if (!(live?.state === 'open' && live.kind === 'direct')) a.rtc?.destroy();
    this.attempts.delete(peer);
  }
}
