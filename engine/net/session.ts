/**
 * A peer session on one link: mutual signed handshake (core digest §5.3), then CONTROL traffic —
 * remote capability calls with signed envelopes, streams with acks and cancel, heartbeats with
 * RTT, event-log sync and live push. Transport-agnostic: it runs over any BytePort.
 */
import type { Bus } from '../bus/bus.js';
import type { CallOptions, StreamFrame } from '../bus/types.js';
import {
  CALL_SKEW_FUTURE_SECONDS,
  CALL_SKEW_PAST_SECONDS,
  CONTRACT_VERSION,
  LINK_HANDSHAKE_TIMEOUT_SECONDS,
  REQUEST_REPLAY_WINDOW_SECONDS,
  RPC_DEFAULT_TIMEOUT_SECONDS,
  STREAM_ACK_INTERVAL_FRAMES,
  STREAM_ACK_TIMEOUT_SECONDS,
  STREAM_WINDOW_FRAMES,
} from '../core/constants.js';
import { b64url, randomBytes } from '../core/encoding.js';
import { HnError, isErrorCode, toHnError, type ErrorCode, type ErrorObject } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { ulid, ULID_RE } from '../core/ulid.js';
import type { EventEnvelope, EventLog, Heads } from '../events/log.js';
import type { CommunityView } from '../identity/community.js';
import { isNodeId, signObject, verifyObject, type KeyPair } from '../identity/identity.js';
import type { Metrics } from '../observability/metrics.js';
import { LinkMux } from './frames.js';
import type { BytePort } from './port.js';

export type Transport = 'direct' | 'relay' | 'memory';

export interface LinkInfo {
  transport: Transport;
  /** the NodeID we expect on the other side, when known (roster, test wiring) */
  expectedPeer?: NodeID;
  /** SHA-256 DTLS fingerprints from the local/remote SDP (direct links only) */
  dtlsLocal?: string | null;
  dtlsRemote?: string | null;
}

export interface SessionDeps {
  keys: KeyPair;
  communityId: NodeID;
  community: CommunityView;
  bus: Bus;
  events: EventLog;
  metrics: Metrics;
  appVersion?: string;
  /** heartbeat interval; a peer silent for `missedHeartbeats` intervals is marked gone */
  heartbeatMs?: number;
  missedHeartbeats?: number;
  now?: () => number;
  /** M32 negotiation hook (protocol module) */
  protocol?: () => LinkProtocolHook | null;
  /** inbound module link message (`mod.msg`), routed by the module host */
  onModuleMessage?: (peer: NodeID, type: unknown, payload: unknown) => void;
}

export type SessionState = 'handshaking' | 'open' | 'gone' | 'closed';

/**
 * M32 version negotiation on the link hello (additive): what this side offers, and the verdict on
 * the peer's offer. Without a hook (protocol module off) the hello carries no protocol fields and
 * nothing is negotiated; a peer hello without them is accepted with no agreed version.
 */
export interface LinkProtocolHook {
  offer(): { protocol_versions: string[]; descriptor?: Record<string, unknown> };
  onPeerHello(
    peer: NodeID,
    hello: { protocol_versions?: unknown; descriptor?: unknown },
  ): { ok: true; agreed: string | null } | { ok: false; code: ErrorCode; reason: string };
}

interface PendingUnary {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
interface PendingStream {
  push: (m: Record<string, unknown>) => void;
  fail: (e: unknown) => void;
}

const nowSec = (now: () => number) => Math.floor(now() / 1000);

export class PeerSession {
  readonly mux: LinkMux;
  peer!: NodeID;
  state: SessionState = 'handshaking';
  rtt_ms: number | null = null;
  /** protocol version agreed in the hello (M32 A3.3); null when the peer offered none */
  agreedVersion: string | null = null;
  lastSeen = 0;
  closeReason = '';
  readonly ready: Promise<NodeID>;

  private myNonce = b64url(randomBytes(32));
  private peerHello?: Record<string, any>;
  private sentAuth = false;
  private resolveReady!: (id: NodeID) => void;
  private rejectReady!: (e: unknown) => void;
  private unary = new Map<string, PendingUnary>();
  private streams = new Map<string, PendingStream>();
  private inbound = new Map<string, { abort: AbortController; acked: number; ackWaiter?: () => void }>();
  private seenIds = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();
  private syncWaiters = new Map<string, (m: Record<string, any>) => void>();
  private syncReceived = new Map<string, number>();
  private timers: ReturnType<typeof setInterval>[] = [];
  private unsubEvents?: () => void;
  private closeCbs: ((reason: string) => void)[] = [];
  private now: () => number;

  constructor(
    port: BytePort,
    readonly info: LinkInfo,
    private d: SessionDeps,
  ) {
    this.now = d.now ?? Date.now;
    this.mux = new LinkMux(port);
    this.ready = new Promise<NodeID>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => undefined);
    this.mux.onClose((r) => this.teardown(r));
    const t = setTimeout(() => this.fail('handshake timeout'), LINK_HANDSHAKE_TIMEOUT_SECONDS * 1000);
    this.ready.then(
      () => clearTimeout(t),
      () => clearTimeout(t),
    );
    void this.send({
      type: 'link.hello',
      v: 1,
      from: d.keys.nodeId,
      to: info.expectedPeer ?? null,
      community_id: d.communityId,
      nonce: this.myNonce,
      transport: info.transport,
      app_version: d.appVersion ?? '0.1.0',
      contract_version: CONTRACT_VERSION,
      ...(d.protocol?.()?.offer() ?? {}),
    });
    // after our hello is queued: a peer hello that is already waiting may trigger our auth at once
    this.mux.onControl((m) => this.onControl(m));
  }

  get kind(): Transport {
    return this.info.transport;
  }

  onClose(cb: (reason: string) => void) {
    if (this.state === 'closed' || this.state === 'gone') cb(this.closeReason);
    else this.closeCbs.push(cb);
  }

  /** Send a module link message (type and payload already checked by the module host). */
  sendModuleMessage(type: string, payload: unknown): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new HnError('partition', 'the link is not open'));
    return this.mux.sendControl({ type: 'mod.msg', t: type, p: payload });
  }

  private send(m: Record<string, unknown>): Promise<void> {
    return this.mux.sendControl(m).catch(() => undefined);
  }

  private fail(reason: string, code: ErrorCode = 'unauthorized') {
    if (this.state !== 'handshaking') return;
    this.d.metrics.inc('hearthnet_signature_failures_total', { reason: 'link_auth' });
    void this.send({ type: 'link.close', reason, ...(code !== 'unauthorized' ? { code } : {}) });
    this.closeReason = reason;
    this.rejectReady(new HnError(code, `link refused: ${reason}`));
    setTimeout(() => this.mux.close(`link refused: ${reason}`), 10);
  }

  // ---------- handshake ----------

  private onHello(m: Record<string, any>) {
    if (this.peerHello) return this.fail('second hello');
    if (m.v !== 1 || !isNodeId(m.from) || typeof m.nonce !== 'string' || m.nonce.length !== 43)
      return this.fail('malformed hello');
    if (m.community_id !== this.d.communityId) return this.fail('other community');
    if (m.to !== null && m.to !== this.d.keys.nodeId) return this.fail('hello addressed to another node');
    if (this.info.expectedPeer && m.from !== this.info.expectedPeer) return this.fail('unexpected peer');
    if (m.from === this.d.keys.nodeId) return this.fail('link to self');
    const hook = this.d.protocol?.();
    if (hook) {
      const verdict = hook.onPeerHello(m.from, m);
      if (!verdict.ok) return this.fail(verdict.reason, verdict.code);
      this.agreedVersion = verdict.agreed;
    }
    this.peerHello = m;
    this.sentAuth = true;
    void this.send(
      signObject(this.d.keys, {
        type: 'link.auth',
        from: this.d.keys.nodeId,
        to: m.from,
        community_id: this.d.communityId,
        my_nonce: this.myNonce,
        peer_nonce: m.nonce,
        dtls_local: this.info.dtlsLocal ?? null,
        dtls_remote: this.info.dtlsRemote ?? null,
        ts: nowSec(this.now),
      }),
    );
  }

  private onAuth(m: Record<string, any>) {
    const h = this.peerHello;
    if (!h || !this.sentAuth) return this.fail('auth before hello');
    if (m.from !== h.from || m.to !== this.d.keys.nodeId) return this.fail('auth names the wrong nodes');
    if (m.community_id !== this.d.communityId) return this.fail('other community');
    if (m.peer_nonce !== this.myNonce || m.my_nonce !== h.nonce) return this.fail('nonce mismatch');
    if (typeof m.ts !== 'number' || Math.abs(m.ts - nowSec(this.now)) > CALL_SKEW_PAST_SECONDS)
      return this.fail('stale auth');
    if (this.info.transport === 'direct') {
      if (!this.info.dtlsLocal || !this.info.dtlsRemote)
        return this.fail('no DTLS fingerprints on a direct link');
      if (m.dtls_local !== this.info.dtlsRemote || m.dtls_remote !== this.info.dtlsLocal)
        return this.fail('DTLS fingerprint mismatch');
    } else if (this.info.transport === 'relay' && (this.info.dtlsLocal || this.info.dtlsRemote)) {
      // a relayed link carries the E2E channel binding where DTLS fingerprints go (mesh.ts):
      // when we know it, the peer must have signed the same one
      if (m.dtls_local !== this.info.dtlsRemote || m.dtls_remote !== this.info.dtlsLocal)
        return this.fail('channel binding mismatch');
    }
    if (!verifyObject(m, m.from)) return this.fail('bad auth signature');
    const lvl = this.d.community.levelOf(m.from);
    if (lvl === null) return this.fail('not a member');
    if (lvl === 'revoked') return this.fail('revoked');
    this.peer = m.from;
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
    this.timers.push(
      setInterval(() => {
        if (this.state !== 'open') return;
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

  private onControl(m: Record<string, any>) {
    if (this.state === 'handshaking') {
      if (m.type === 'link.hello') return this.onHello(m);
      if (m.type === 'link.auth') return this.onAuth(m);
      if (m.type === 'link.close')
        return this.fail(
          `peer closed: ${String(m.reason).slice(0, 100)}`,
          isErrorCode(m.code) ? m.code : 'unauthorized',
        );
      return this.fail(`unexpected ${String(m.type).slice(0, 40)} before handshake`);
    }
    if (this.state !== 'open') return;
    this.lastSeen = this.now();
    switch (m.type) {
      case 'ping':
        return void this.send({ type: 'pong', nonce: m.nonce, ts: m.ts });
      case 'pong':
        if (typeof m.ts === 'number') this.rtt_ms = Math.max(0, this.now() - m.ts);
        return;
      case 'call':
        return void this.onCall(m);
      case 'res':
        return this.onRes(m);
      case 'err': {
        const p = this.unary.get(m.id) ?? null;
        const e = HnError.fromObject(sanitizeError(m.error));
        if (p) {
          this.unary.delete(m.id);
          p.reject(e);
        }
        this.streams.get(m.id)?.fail(e);
        return;
      }
      case 'frame':
        return this.streams.get(m.id)?.push(m);
      case 'ack': {
        const s = this.inbound.get(m.id);
        if (s && Number.isInteger(m.upto) && m.upto > s.acked) {
          s.acked = m.upto;
          s.ackWaiter?.();
        }
        return;
      }
      case 'cancel':
        return this.inbound.get(m.id)?.abort.abort(new HnError('timeout', 'cancelled by the caller'));
      case 'sync.heads':
        return this.enqueue(() => this.onSyncHeads(m));
      case 'sync.events':
        return this.enqueue(() => this.onSyncEvents(m));
      case 'sync.heads.res':
        // resolve only after every batch sent before it has been stored
        return this.enqueue(async () => this.syncWaiters.get(`heads:${m.id}`)?.(m));
      case 'sync.events.res':
        return this.syncWaiters.get(`events:${m.id}:${m.batch}`)?.(m);
      case 'ev.push':
        return this.enqueue(async () => {
          if (Array.isArray(m.events) && m.events.length <= 500)
            await this.d.events.receive(m.events, this.peer);
        });
      case 'mod.msg':
        return this.d.onModuleMessage?.(this.peer, m.t, m.p);
      case 'link.close':
        this.closeReason = String(m.reason ?? 'closed').slice(0, 200);
        return this.mux.close(this.closeReason);
      default:
        return; // unknown control types are ignored (forward compatibility)
    }
  }

  private enqueue(fn: () => Promise<unknown>) {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
  }

  // ---------- outbound calls ----------

  private envelope(
    ref: { name: string; version: string },
    input: unknown,
    stream: boolean,
    timeoutMs: number,
  ) {
    const id = ulid();
    const signed = signObject(this.d.keys, {
      capability: ref.name,
      version: ref.version,
      request_id: id,
      from: this.d.keys.nodeId,
      community: this.d.communityId,
      timestamp: nowSec(this.now),
      body: input as Record<string, unknown>,
    });
    const { request_id: _r, ...rest } = signed;
    return { id, msg: { type: 'call', id, ...rest, stream, timeout_ms: timeoutMs } };
  }

  private assertOpen() {
    if (this.state !== 'open') throw new HnError('partition', `link to peer is ${this.state}`);
  }

  call(ref: { name: string; version: string }, input: unknown, opts: CallOptions = {}): Promise<unknown> {
    this.assertOpen();
    const timeoutMs = opts.timeout_ms ?? RPC_DEFAULT_TIMEOUT_SECONDS * 1000;
    const { id, msg } = this.envelope(ref, input, false, timeoutMs);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.unary.delete(id);
      };
      const timer = setTimeout(() => {
        done();
        void this.send({ type: 'cancel', id });
        reject(new HnError('timeout', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        done();
        void this.send({ type: 'cancel', id });
        reject(
          opts.signal?.reason instanceof HnError ? opts.signal.reason : new HnError('timeout', 'cancelled'),
        );
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.unary.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.mux
        .sendControl(msg)
        .catch((e) =>
          this.unary
            .get(id)
            ?.reject(
              toHnError(e).code === 'too_large'
                ? new HnError('bad_request', 'call body over 1 MiB')
                : new HnError('partition', 'link closed'),
            ),
        );
    });
  }

  private onRes(m: Record<string, any>) {
    const p = this.unary.get(m.id);
    if (!p) return;
    const ok =
      m.from === this.peer &&
      verifyObject(
        {
          type: 'bus.response',
          request_id: m.id,
          from: m.from,
          timestamp: m.timestamp,
          body: m.body,
          signature: m.signature,
        },
        this.peer,
      );
    if (!ok) return p.reject(new HnError('invalid_signature', 'response signature does not verify'));
    p.resolve(m.body?.output);
  }

  stream(
    ref: { name: string; version: string },
    input: unknown,
    opts: CallOptions = {},
  ): AsyncIterable<StreamFrame> {
    const self = this;
    return {
      [Symbol.asyncIterator]: async function* () {
        self.assertOpen();
        const timeoutMs = opts.timeout_ms ?? RPC_DEFAULT_TIMEOUT_SECONDS * 1000;
        const { id, msg } = self.envelope(ref, input, true, timeoutMs);
        const q: Record<string, any>[] = [];
        let wake: (() => void) | null = null;
        let failure: unknown = null;
        let expectSeq = 1;
        let finished = false;
        self.streams.set(id, {
          push: (f) => {
            q.push(f);
            wake?.();
          },
          fail: (e) => {
            failure = e;
            wake?.();
          },
        });
        const timer = setTimeout(() => {
          failure = new HnError('timeout', `stream exceeded ${timeoutMs} ms`);
          wake?.();
        }, timeoutMs);
        const onAbort = () => {
          failure =
            opts.signal?.reason instanceof HnError ? opts.signal.reason : new HnError('timeout', 'cancelled');
          wake?.();
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const closeListener = () => {
          failure ??= new HnError('partition', 'link closed during the stream');
          wake?.();
        };
        self.closeCbs.push(closeListener);
        try {
          await self.mux.sendControl(msg);
          while (true) {
            while (!q.length && !failure) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (failure) throw failure;
            const f = q.shift()!;
            if (f.seq !== expectSeq) throw new HnError('bad_request', 'stream frame out of sequence');
            expectSeq++;
            if (f.seq % STREAM_ACK_INTERVAL_FRAMES === 0) void self.send({ type: 'ack', id, upto: f.seq });
            if (f.event === 'error') throw HnError.fromObject(sanitizeError(f.data));
            yield { event: String(f.event), data: f.data };
            if (f.event === 'done') {
              finished = true;
              return;
            }
          }
        } finally {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          self.streams.delete(id);
          self.closeCbs = self.closeCbs.filter((c) => c !== closeListener);
          if (!finished) void self.send({ type: 'cancel', id });
        }
      },
    };
  }

  // ---------- inbound calls ----------

  private async onCall(m: Record<string, any>) {
    const id = typeof m.id === 'string' && ULID_RE.test(m.id) ? m.id : null;
    const err = (e: unknown) => id && void this.send({ type: 'err', id, error: toHnError(e).toObject() });
    try {
      if (
        !id ||
        typeof m.capability !== 'string' ||
        typeof m.version !== 'string' ||
        typeof m.timestamp !== 'number' ||
        typeof m.signature !== 'string' ||
        !('body' in m)
      )
        throw new HnError('bad_request', 'malformed call envelope');
      const signed = {
        capability: m.capability,
        version: m.version,
        request_id: id,
        from: m.from,
        community: m.community,
        timestamp: m.timestamp,
        body: m.body,
        signature: m.signature,
      };
      if (m.from !== this.peer || !verifyObject(signed, this.peer)) {
        this.d.metrics.inc('hearthnet_signature_failures_total', { reason: 'call' });
        throw new HnError(
          'invalid_signature',
          'call signature does not verify or sender is not the link peer',
        );
      }
      if (m.community !== this.d.communityId)
        throw new HnError('unauthorized', 'call from another community');
      const t = nowSec(this.now);
      if (m.timestamp < t - CALL_SKEW_PAST_SECONDS || m.timestamp > t + CALL_SKEW_FUTURE_SECONDS)
        throw new HnError('expired', 'call timestamp outside the allowed window');
      this.pruneSeen();
      const rk = `${m.from}|${id}`;
      if (this.seenIds.has(rk)) throw new HnError('bad_request', 'replayed request id');
      this.seenIds.set(rk, this.now() + REQUEST_REPLAY_WINDOW_SECONDS * 1000);
      const rate = this.d.bus.rateCheck(this.peer, m.capability);
      if (rate === 'hard') return; // dropped without reply, counted
      if (rate === 'soft')
        throw new HnError('rate_limited', 'too many calls to this capability', { retry_after_ms: 1000 });
      const ref = m.version ? `${m.capability}@${m.version}` : m.capability;
      const abort = new AbortController();
      const timeoutMs = Number.isInteger(m.timeout_ms) && m.timeout_ms > 0 ? m.timeout_ms : undefined;
      const origin = {
        caller: this.peer,
        isLocal: false,
        traceId: id,
        signal: abort.signal,
        ...(timeoutMs ? { timeoutMs } : {}),
      };
      if (m.stream === true) return await this.serveStream(id, ref, m.body, origin, abort);
      this.inbound.set(id, { abort, acked: 0 });
      try {
        const output = await this.d.bus.dispatch(ref, m.body, origin);
        const res = signObject(this.d.keys, {
          type: 'bus.response',
          request_id: id,
          from: this.d.keys.nodeId,
          timestamp: nowSec(this.now),
          body: { output, meta: { served_by: this.d.keys.nodeId, trace_id: id } },
        });
        void this.send({
          type: 'res',
          id,
          from: res.from,
          timestamp: res.timestamp,
          body: res.body,
          signature: res.signature,
        });
      } finally {
        this.inbound.delete(id);
      }
    } catch (e) {
      err(e);
    }
  }

  private async serveStream(
    id: string,
    ref: string,
    body: unknown,
    origin: Parameters<Bus['dispatch']>[2],
    abort: AbortController,
  ) {
    const slot: { abort: AbortController; acked: number; ackWaiter?: () => void } = { abort, acked: 0 };
    this.inbound.set(id, slot);
    let seq = 0;
    try {
      for await (const f of this.d.bus.dispatchStream(ref, body, origin)) {
        while (seq - slot.acked >= STREAM_WINDOW_FRAMES) {
          const acked = await new Promise<boolean>((r) => {
            const t = setTimeout(() => r(false), STREAM_ACK_TIMEOUT_SECONDS * 1000);
            slot.ackWaiter = () => {
              clearTimeout(t);
              r(true);
            };
            abort.signal.addEventListener('abort', () => slot.ackWaiter?.(), { once: true });
          });
          if (abort.signal.aborted) throw abort.signal.reason;
          if (!acked) {
            abort.abort(new HnError('timeout', 'stream acks stopped'));
            throw new HnError('timeout', 'no ack within the stream window timeout');
          }
        }
        await this.send({ type: 'frame', id, seq: ++seq, event: f.event, data: f.data });
      }
    } catch (e) {
      await this.send({ type: 'frame', id, seq: seq + 1, event: 'error', data: toHnError(e).toObject() });
    } finally {
      this.inbound.delete(id);
    }
  }

  private pruneSeen() {
    if (this.seenIds.size < 1000) return;
    const t = this.now();
    for (const [k, exp] of this.seenIds) if (exp < t) this.seenIds.delete(k);
  }

  // ---------- event sync ----------

  /** Exchange heads; each side sends exactly what the other lacks. Resolves with the counts. */
  async sync(): Promise<{ sent: number; received: number }> {
    this.assertOpen();
    const id = ulid();
    this.syncReceived.set(id, 0);
    const theirs = await new Promise<Record<string, any>>((resolve, reject) => {
      const t = setTimeout(() => reject(new HnError('timeout', 'sync heads not answered')), 60_000);
      this.syncWaiters.set(`heads:${id}`, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.onClose(() => reject(new HnError('partition', 'link closed during sync')));
      void this.d.events.heads().then((heads) => this.send({ type: 'sync.heads', id, heads }));
    }).finally(() => this.syncWaiters.delete(`heads:${id}`));
    const received = this.syncReceived.get(id) ?? 0;
    this.syncReceived.delete(id);
    let sent = 0;
    let batch = 0;
    for await (const events of this.d.events.missingFor(checkHeads(theirs.heads))) {
      const b = ++batch;
      const res = await new Promise<Record<string, any>>((resolve, reject) => {
        const t = setTimeout(() => reject(new HnError('timeout', 'sync batch not acknowledged')), 60_000);
        this.syncWaiters.set(`events:${id}:${b}`, (m) => {
          clearTimeout(t);
          resolve(m);
        });
        void this.send({ type: 'sync.events', id, batch: b, community_id: this.d.communityId, events });
      }).finally(() => this.syncWaiters.delete(`events:${id}:${b}`));
      sent += Number(res.accepted) || 0;
    }
    return { sent, received };
  }

  private async onSyncHeads(m: Record<string, any>) {
    if (typeof m.id !== 'string') return;
    let batch = 0;
    try {
      for await (const events of this.d.events.missingFor(checkHeads(m.heads))) {
        void this.send({
          type: 'sync.events',
          id: m.id,
          batch: ++batch,
          community_id: this.d.communityId,
          events,
        });
      }
    } catch {
      /* malformed heads: answer with ours only */
    }
    await this.send({ type: 'sync.heads.res', id: m.id, heads: await this.d.events.heads() });
  }

  private async onSyncEvents(m: Record<string, any>) {
    if (m.community_id !== this.d.communityId || !Array.isArray(m.events)) return;
    const r = await this.d.events.receive(m.events.slice(0, 256), this.peer);
    if (this.syncReceived.has(m.id)) this.syncReceived.set(m.id, this.syncReceived.get(m.id)! + r.accepted);
    await this.send({
      type: 'sync.events.res',
      id: m.id,
      batch: m.batch,
      accepted: r.accepted,
      duplicates: r.duplicates,
      rejected: r.rejected.slice(0, 256),
    });
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
    const e = new HnError('partition', `link to peer closed: ${reason}`.slice(0, 200));
    for (const p of this.unary.values()) p.reject(e);
    this.unary.clear();
    for (const s of this.streams.values()) s.fail(e);
    for (const s of this.inbound.values()) s.abort.abort(e);
    for (const cb of this.closeCbs.splice(0)) cb(this.closeReason);
  }
}

function checkHeads(h: unknown): Heads {
  if (
    !h ||
    typeof h !== 'object' ||
    typeof (h as Heads).authors !== 'object' ||
    (h as Heads).authors === null
  )
    throw new HnError('bad_request', 'malformed heads');
  return h as Heads;
}

function sanitizeError(e: unknown): ErrorObject {
  const o = (e && typeof e === 'object' ? e : {}) as Record<string, unknown>;
  const out: ErrorObject = { error: isErrorCode(o.error) ? o.error : 'internal_error' };
  if (typeof o.message === 'string') out.message = o.message.slice(0, 500);
  if (typeof o.retry_after_ms === 'number') out.retry_after_ms = o.retry_after_ms;
  if (typeof o.field === 'string') out.field = o.field.slice(0, 200);
  if (typeof o.schema_hash_expected === 'string') out.schema_hash_expected = o.schema_hash_expected;
  if (Array.isArray(o.alt_capabilities))
    out.alt_capabilities = o.alt_capabilities.filter((x) => typeof x === 'string').slice(0, 32) as string[];
  return out;
}

export type { EventEnvelope };
