/**
 * A peer session on one link: mutual signed handshake (core digest §5.3), then CONTROL traffic —
 * remote capability calls with signed envelopes, streams with acks and cancel, heartbeats with
 * RTT, event-log sync and live push. Transport-agnostic: it runs over any BytePort.
 *
 * The session owns the link's state and dispatch; the work lives in three parts: handshake
 * (handshake.ts), RPC (rpc.ts) and event sync (sync.ts), over the typed CONTROL union
 * (control.ts) and one set of per-peer budgets (budget.ts).
 */
import type { CallOptions, StreamFrame } from '../bus/types.js';
import { LINK_HANDSHAKE_TIMEOUT_SECONDS } from '../core/constants.js';
import { b64url, randomBytes } from '../core/encoding.js';
import { HnError, isErrorCode, type ErrorCode } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { EventEnvelope } from '../events/log.js';
import { PeerBudget } from './budget.js';
import type { ControlMessage, Incoming } from './control.js';
import { LinkMux } from './frames.js';
import { HandshakePart } from './handshake.js';
import type { BytePort } from './port.js';
import { RpcPart } from './rpc.js';
import type { LinkInfo, SessionCore, SessionDeps, SessionState, Transport } from './session-types.js';
import { SyncPart } from './sync.js';

export type { LinkInfo, LinkProtocolHook, SessionDeps, SessionState, Transport } from './session-types.js';

export class PeerSession implements SessionCore {
  readonly mux: LinkMux;
  peer!: NodeID;
  state: SessionState = 'handshaking';
  rtt_ms: number | null = null;
  lastSeen = 0;
  closeReason = '';
  readonly ready: Promise<NodeID>;
  readonly budget: PeerBudget;

  private resolveReady!: (id: NodeID) => void;
  private rejectReady!: (e: unknown) => void;
  private timers: ReturnType<typeof setInterval>[] = [];
  private unsubEvents?: () => void;
  private closeCbs: ((reason: string) => void)[] = [];
  private readonly clock: () => number;
  private readonly handshake: HandshakePart;
  private readonly rpc: RpcPart;
  private readonly syncPart: SyncPart;

  constructor(
    port: BytePort,
    readonly info: LinkInfo,
    readonly d: SessionDeps,
  ) {
    this.clock = d.now ?? Date.now;
    this.budget = new PeerBudget(this.clock, d.budget);
    this.handshake = new HandshakePart(info, d, this.clock);
    this.rpc = new RpcPart(this);
    this.syncPart = new SyncPart(this);
    this.mux = new LinkMux(port);
    this.ready = new Promise<NodeID>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.mux.onClose((r) => this.teardown(r));
    const t = setTimeout(() => this.fail('handshake timeout'), LINK_HANDSHAKE_TIMEOUT_SECONDS * 1000);
    this.ready.then(
      () => clearTimeout(t),
      () => clearTimeout(t),
    );
    void this.send(this.handshake.hello());
    // after our hello is queued: a peer hello that is already waiting may trigger our auth at once
    this.mux.onControl((m, bytes) => this.onControl(m as Incoming, bytes));
  }

  /** protocol version agreed in the hello (M32 A3.3); null when the peer offered none */
  get agreedVersion(): string | null {
    return this.handshake.agreedVersion;
  }

  get kind(): Transport {
    return this.info.transport;
  }

  now(): number {
    return this.clock();
  }

  onClose(cb: (reason: string) => void) {
    if (this.state === 'closed' || this.state === 'gone') cb(this.closeReason);
    else this.closeCbs.push(cb);
  }

  addCloseListener(cb: (reason: string) => void): () => void {
    this.onClose(cb);
    return () => {
      this.closeCbs = this.closeCbs.filter((c) => c !== cb);
    };
  }

  send(m: ControlMessage): Promise<void> {
    return this.mux.sendControl(m as unknown as Record<string, unknown>).catch((e: unknown) => {
      // a closed link is reported by the close path; a failure on an open link is worth a line
      if (this.state === 'open' || this.state === 'handshaking')
        this.d.log?.warn('control message not sent', {
          type: m.type,
          peer: this.info.expectedPeer ?? null,
          error: e as Error,
        });
      else this.d.log?.debug('control message dropped: the link is closed', { type: m.type });
    });
  }

  sendStrict(m: ControlMessage): Promise<void> {
    return this.mux.sendControl(m as unknown as Record<string, unknown>);
  }

  /** Send a module link message (type and payload already checked by the module host). */
  sendModuleMessage(type: string, payload: unknown): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new HnError('partition', 'the link is not open'));
    return this.sendStrict({ type: 'mod.msg', t: type, p: payload });
  }

  assertOpen() {
    if (this.state !== 'open') throw new HnError('partition', `link to peer is ${this.state}`);
  }

  private fail(reason: string, code: ErrorCode = 'unauthorized') {
    if (this.state !== 'handshaking') return;
    this.d.metrics.inc('hearthnet_signature_failures_total', { reason: 'link_auth' });
    void this.send({ type: 'link.close', reason, ...(code !== 'unauthorized' ? { code } : {}) });
    this.closeReason = reason;
    this.rejectReady(new HnError(code, `link refused: ${reason}`));
    setTimeout(() => this.mux.close(`link refused: ${reason}`), 10);
  }

  private opened(peer: NodeID) {
    this.peer = peer;
    this.state = 'open';
    this.lastSeen = this.now();
    this.startHeartbeat();
    this.unsubEvents = this.d.events.subscribe((ev, source) => {
      if (source !== this.peer && this.state === 'open')
        void this.send({ type: 'ev.push', community_id: this.d.communityId, events: [ev] });
    });
    this.resolveReady(this.peer);
  }

  private startHeartbeat() {
    const every = this.d.heartbeatMs ?? 5000;
    const missed = this.d.missedHeartbeats ?? 3;
    let bytesIn = this.mux.bytesIn;
    this.timers.push(
      setInterval(() => {
        if (this.state !== 'open') return;
        // any inbound link frame shows the peer is alive: on a link busy with X08 data the peer's pings
        // queue behind that data (relay queues, SCTP), so CONTROL alone would read a loaded link as silent
        if (this.mux.bytesIn !== bytesIn) {
          bytesIn = this.mux.bytesIn;
          this.lastSeen = this.now();
        }
        if (this.now() - this.lastSeen > every * missed) {
          this.state = 'gone';
          this.mux.close('peer silent');
          return;
        }
        void this.send({ type: 'ping', nonce: b64url(randomBytes(8)), ts: this.now() });
      }, every),
    );
  }

  // ---------- dispatch of control messages ----------

  private onHandshake(m: Incoming, bytes: number) {
    switch (m.type) {
      case 'link.hello': {
        const v = this.handshake.onHello(m, bytes);
        if (!v.ok) return this.fail(v.reason, v.code);
        return void this.send(v.auth!);
      }
      case 'link.auth': {
        const v = this.handshake.onAuth(m);
        if (!v.ok) return this.fail(v.reason, v.code);
        return this.opened(m.from as NodeID);
      }
      case 'link.close':
        return this.fail(
          `peer closed: ${String(m.reason).slice(0, 100)}`,
          isErrorCode(m.code) ? m.code : 'unauthorized',
        );
      default:
        return this.fail(`unexpected ${String(m.type).slice(0, 40)} before handshake`);
    }
  }

  private onControl(m: Incoming, bytes: number) {
    if (this.state === 'handshaking') return this.onHandshake(m, bytes);
    if (this.state !== 'open') return;
    this.lastSeen = this.now();
    switch (m.type) {
      case 'ping':
        return void this.send({ type: 'pong', nonce: m.nonce, ts: m.ts });
      case 'pong':
        if (typeof m.ts === 'number') this.rtt_ms = Math.max(0, this.now() - m.ts);
        return;
      case 'call':
        return void this.rpc.onCall(m, bytes);
      case 'res':
        return void this.rpc.onRes(m);
      case 'err':
        return this.rpc.onErr(m);
      case 'frame':
        return this.rpc.onFrame(m);
      case 'ack':
        return this.rpc.onAck(m);
      case 'cancel':
        return this.rpc.onCancel(m);
      case 'sync.heads':
        return this.syncPart.onHeads(m);
      case 'sync.events':
        return this.syncPart.onEvents(m, bytes);
      case 'sync.heads.res':
        return this.syncPart.onHeadsRes(m);
      case 'sync.events.res':
        return this.syncPart.onEventsRes(m);
      case 'ev.push':
        return this.syncPart.onPush(m, bytes);
      case 'mod.msg':
        return this.d.onModuleMessage?.(this.peer, m.t, m.p);
      case 'link.close':
        this.closeReason = String(m.reason ?? 'closed').slice(0, 200);
        return this.mux.close(this.closeReason);
      default:
        return; // unknown control types are ignored (forward compatibility)
    }
  }

  // ---------- public API ----------

  call(ref: { name: string; version: string }, input: unknown, opts: CallOptions = {}): Promise<unknown> {
    return this.rpc.call(ref, input, opts);
  }

  stream(
    ref: { name: string; version: string },
    input: unknown,
    opts: CallOptions = {},
  ): AsyncIterable<StreamFrame> {
    return this.rpc.stream(ref, input, opts);
  }

  /** Exchange heads; each side sends exactly what the other lacks. Resolves with the counts. */
  sync(): Promise<{ sent: number; received: number }> {
    return this.syncPart.sync();
  }

  // ---------- teardown ----------

  close(reason = 'closed') {
    if (this.state === 'open') void this.send({ type: 'link.close', reason });
    setTimeout(() => this.mux.close(reason), 5);
  }

  private teardown(reason: string) {
    const wasGone = this.state === 'gone';
    this.state = wasGone ? 'gone' : 'closed';
    this.closeReason ||= reason;
    for (const t of this.timers) clearInterval(t);
    this.unsubEvents?.();
    this.rejectReady(new HnError('partition', `link closed: ${reason}`));
    this.rpc.teardown(new HnError('partition', `link to peer closed: ${reason}`.slice(0, 200)));
    for (const cb of this.closeCbs.splice(0)) cb(this.closeReason);
  }
}

export type { EventEnvelope };
