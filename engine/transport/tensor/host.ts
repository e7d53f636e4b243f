/**
 * X08 in the node (`node.tensors`): sessions authorised through the capability bus, run as X08 channels on the
 * authenticated peer link (core §5.2, §7.5; digest A1/A5). The link may be direct, relayed or in-memory: the
 * session only sees a `BytePort` from `LinkMux.channel(id)`.
 *
 * Host side — inside the handler of the capability that authorises the session — `authorise()` picks a fresh
 * channel id on the link to the caller, mints the single-use session token (scoped to that capability, the session
 * id and the purpose), starts `TensorSession.accept` on the channel and returns `{session_id, channel_id, token,
 * negotiation, …}` for the handler to return. The accepted session goes to the module's `onSession(purpose)`.
 *
 * Caller side — `open()` calls the authorising capability on the peer and connects on the channel it names.
 *
 * Gates: `tensor_transport.enabled` on both sides (else `experimental_disabled`), `max_concurrent_sessions` per node
 * (pending + open, both roles), relayed links only with `tensor_transport.allow_relayed`. Sessions close with
 * their link (the mux closes every channel) and with the node (`closeAll`). Never logs tensor bytes or tokens.
 */
import { HnError } from '../../core/errors.js';
import type { NodeID } from '../../core/types.js';
import type { KeyPair } from '../../identity/identity.js';
import type { Metrics } from '../../observability/metrics.js';
import type { BytePort } from '../../net/port.js';
import type { MembershipLookup } from '../../tokens/token.js';
import { SessionTokenRegistry, checkSessionHello, mintSessionToken } from '../../tokens/session.js';
import {
  MAX_CHANNEL_ID,
  checkPurpose,
  checkRef,
  cleanNegotiation,
  hostNegotiation,
  linkKindOf,
  parseGrant,
  sessionConfig,
  type AuthoriseArgs,
  type OpenOptions,
  type SessionHandler,
  type TensorGrant,
  type TensorLink,
  type TensorSessionInfo,
  type TensorSessionSummary,
  type TensorTransportSection,
} from './grant.js';
import type { Logger } from '../../observability/logger.js';
import { TensorSession, type Clock } from './session.js';

export * from './grant.js';

export interface TensorHostDeps {
  keys: KeyPair;
  communityId: NodeID;
  config: () => TensorTransportSection;
  membership: MembershipLookup;
  /** The open link to a peer, if any. */
  link: (peer: NodeID) => TensorLink | undefined;
  /** Unary bus call on a peer (the authorising capability). */
  call: (
    capability: string,
    input: unknown,
    opts: { peer: NodeID; timeout_ms?: number; signal?: AbortSignal },
  ) => Promise<unknown>;
  metrics?: Metrics;
  clock?: Clock;
  /** handed to every session (best-effort failures; never tensor bytes or tokens) */
  log?: Logger;
}

interface LinkChannels {
  next: number;
  used: Set<number>;
}

export class TensorHost {
  private readonly registry = new SessionTokenRegistry();
  private readonly handlers = new Map<string, SessionHandler>();
  private readonly live = new Set<TensorSessionInfo>();
  /** Ports of sessions not yet READY (host: waiting for HELLO; caller: waiting for the reply). */
  private readonly pending = new Set<BytePort>();
  /** Reservations: the bus call is in flight (caller) or authorise has not started the accept yet. */
  private reserved = 0;
  /** Channel ids per link (keyed by its mux): never reused on a link, so stale frames never reach a new session. */
  private readonly channels = new WeakMap<object, LinkChannels>();
  private closed = false;

  constructor(private readonly d: TensorHostDeps) {}

  /** Sessions counted against max_concurrent_sessions: reserved, handshaking and open, both roles. */
  get active(): number {
    return this.reserved + this.pending.size + this.live.size;
  }

  /** Register the module's receiver of accepted sessions for a purpose; returns the unregister function. */
  onSession(purpose: string, cb: SessionHandler): () => void {
    checkPurpose(purpose);
    this.handlers.set(purpose, cb);
    return () => {
      if (this.handlers.get(purpose) === cb) this.handlers.delete(purpose);
    };
  }

  /** Open sessions (no tokens, no bytes): for the UI, status capabilities and tests. */
  list(): TensorSessionSummary[] {
    return [...this.live].map((i) => ({
      session_id: i.session.sessionId,
      peer: i.peer,
      role: i.role,
      purpose: i.purpose,
      channel_id: i.channel_id,
      path: i.path,
      state: i.session.state,
    }));
  }

  /** Host side: call from the authorising capability's handler; returns what the handler hands the caller. */
  authorise(a: AuthoriseArgs): TensorGrant {
    const cfg = this.gate('authorise');
    checkPurpose(a.purpose);
    const capability = checkRef(a.capability, 'capability');
    const scope = checkRef(a.scope ?? capability, 'scope');
    if (!this.handlers.has(a.purpose))
      throw new HnError('not_implemented', 'no tensor session handler for this purpose');
    const link = this.d.link(a.caller);
    if (!link || link.state !== 'open') throw new HnError('partition', 'no open link to the caller');
    const path = linkKindOf(link.kind);
    if (path === 'relayed' && !cfg.allow_relayed)
      throw new HnError('unauthorized', 'tensor sessions over relayed links are not allowed here');
    this.capacity(cfg);

    const nowS = this.nowSeconds();
    this.registry.prune(nowS);
    const minted = mintSessionToken(this.d.keys, {
      caller: a.caller,
      communityId: this.d.communityId,
      membership: this.d.membership,
      purpose: a.purpose,
      now: nowS,
      ttlSeconds: Math.min(
        a.ttlSeconds ?? cfg.max_session_lifetime_seconds,
        cfg.max_session_lifetime_seconds,
      ),
      registry: this.registry,
      capability: scope,
    });
    const channelId = this.takeChannel(link, this.d.keys.nodeId < a.caller ? 1 : 0);
    const port = link.mux.channel(channelId);
    const negotiation = hostNegotiation(cfg, port.maxMessageBytes, a.negotiation);
    const sessionId = minted.sessionId;
    const caller = a.caller;
    this.pending.add(port);
    TensorSession.accept(port, {
      local: this.d.keys.nodeId,
      peer: caller,
      expectedPurpose: a.purpose,
      config: { ...sessionConfig(cfg), chunk_bytes: negotiation.max_chunk_bytes },
      ...(this.d.clock ? { clock: this.d.clock } : {}),
      ...(this.d.log ? { log: this.d.log } : {}),
      validateToken: (token, hello) => {
        const c = this.d.config();
        if (!c.enabled || this.closed)
          throw new HnError('experimental_disabled', 'tensor_transport is disabled on this node');
        const acc = checkSessionHello(token, hello, {
          self: this.d.keys.nodeId,
          linkPeer: caller,
          linkKind: path,
          allowRelayed: c.allow_relayed,
          communityId: this.d.communityId,
          membership: this.d.membership,
          registry: this.registry,
          now: this.nowSeconds(),
          capability: scope,
        });
        // the token is good, but it must be the one minted for this channel's reservation
        if (hello.session_id !== sessionId)
          throw new HnError('token_scope_insufficient', 'session token was issued for another channel');
        return { expiresAt: acc.expiresAt };
      },
    }).then(
      (session) => {
        this.pending.delete(port);
        const info: TensorSessionInfo = {
          session,
          peer: caller,
          role: 'host',
          purpose: a.purpose,
          capability,
          channel_id: channelId,
          path,
        };
        const handler = this.handlers.get(a.purpose);
        if (!handler || this.closed) {
          session.close('unavailable');
          return;
        }
        this.track(info);
        try {
          handler(session, {
            peer: caller,
            role: 'host',
            purpose: a.purpose,
            capability,
            channel_id: channelId,
            path,
          });
        } catch {
          session.close('internal_error');
        }
      },
      () => {
        this.pending.delete(port); // NACKed (bad token, purpose, …), timed out or the link went away
      },
    );
    return {
      session_id: sessionId,
      channel_id: channelId,
      token: minted.token,
      negotiation,
      expires_at: minted.expiresAt,
      path,
    };
  }

  /** Caller side: ask `peer` for a session through `opts.capability`, then connect on the channel it names. */
  async open(peer: NodeID, opts: OpenOptions): Promise<TensorSession> {
    const cfg = this.gate('open');
    checkPurpose(opts.purpose);
    const capability = checkRef(opts.capability, 'capability');
    this.capacity(cfg);
    this.reserved++;
    let reserved = true;
    const release = () => {
      if (reserved) this.reserved--;
      reserved = false;
    };
    try {
      if (!this.d.link(peer) || this.d.link(peer)!.state !== 'open')
        throw new HnError('partition', 'no open link to the peer');
      const out = await this.d.call(capability, opts.input ?? {}, {
        peer,
        ...(opts.timeout_ms !== undefined ? { timeout_ms: opts.timeout_ms } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const grant = parseGrant(out);
      const link = this.d.link(peer);
      if (!link || link.state !== 'open') throw new HnError('partition', 'the link closed');
      if (this.closed || !this.d.config().enabled)
        throw new HnError('experimental_disabled', 'tensor_transport is disabled on this node');
      const ch = this.linkChannels(link);
      if (ch.used.has(grant.channel_id))
        throw new HnError('bad_request', 'the peer named a channel already in use on this link');
      ch.used.add(grant.channel_id);
      const port = link.mux.channel(grant.channel_id);
      const path = linkKindOf(link.kind);
      release();
      this.pending.add(port);
      let session: TensorSession;
      try {
        session = await TensorSession.connect(port, grant.token, {
          sessionId: grant.session_id,
          purpose: opts.purpose,
          local: this.d.keys.nodeId,
          remote: peer,
          negotiation: { ...grant.negotiation, ...cleanNegotiation(opts.negotiation) },
          config: sessionConfig(this.d.config()),
          ...(this.d.clock ? { clock: this.d.clock } : {}),
          ...(this.d.log ? { log: this.d.log } : {}),
        });
      } catch (e) {
        port.close('failed');
        throw e;
      } finally {
        this.pending.delete(port);
      }
      if (this.closed) {
        session.close('closed');
        throw new HnError('closed', 'node is closed');
      }
      this.track({
        session,
        peer,
        role: 'caller',
        purpose: opts.purpose,
        capability,
        channel_id: grant.channel_id,
        path,
      });
      return session;
    } finally {
      release();
    }
  }

  /** Close every session (BYE) and every pending reservation; with `final`, refuse new ones for good. */
  closeAll(reason = 'closed', final = false): void {
    if (final) this.closed = true;
    for (const i of [...this.live]) i.session.close(reason);
    for (const p of [...this.pending]) p.close(reason);
  }

  // -------------------------------------------------------------------------------------------------------

  private gate(what: 'authorise' | 'open'): TensorTransportSection {
    const cfg = this.d.config();
    if (this.closed) throw new HnError('closed', 'node is closed');
    if (!cfg.enabled) {
      this.d.metrics?.inc('hearthnet_experimental_disabled_total', { capability: `x08.${what}` });
      throw new HnError('experimental_disabled', 'tensor_transport is disabled on this node');
    }
    return cfg;
  }

  private capacity(cfg: TensorTransportSection): void {
    if (this.active >= cfg.max_concurrent_sessions)
      throw new HnError(
        'capacity_exceeded',
        `at the limit of ${cfg.max_concurrent_sessions} tensor sessions`,
        { retry_after_ms: 1000 },
      );
  }

  private track(info: TensorSessionInfo): void {
    this.live.add(info);
    info.session.onClose(() => this.live.delete(info));
  }

  private linkChannels(link: TensorLink): LinkChannels {
    let ch = this.channels.get(link.mux);
    if (!ch) this.channels.set(link.mux, (ch = { next: 0, used: new Set() }));
    return ch;
  }

  /** A fresh channel id of our parity (the smaller NodeID hosts on odd ids), so both ends never collide. */
  private takeChannel(link: TensorLink, parity: 0 | 1): number {
    const ch = this.linkChannels(link);
    let id = ch.next;
    do {
      id += 1;
      if (id % 2 !== parity) id += 1;
      if (id > MAX_CHANNEL_ID) throw new HnError('capacity_exceeded', 'no channel ids left on this link');
    } while (ch.used.has(id));
    ch.next = id;
    ch.used.add(id);
    return id;
  }

  private nowSeconds(): number {
    return Math.floor((this.d.clock?.now() ?? Date.now()) / 1000);
  }
}
