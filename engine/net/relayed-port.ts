/**
 * Relay-forwarded links, end-to-end encrypted between the two peers (core §5.3, §8.6).
 *
 * Layers:
 *  - `relayPipe(client, peer)`: a raw BytePort to one peer through the relay (forward frames).
 *  - `secureBytePort(pipe, opts)`: runs the key agreement over ANY message pipe and returns an
 *    encrypted BytePort on top of it. The relay (or any pipe in between) sees only ciphertext.
 *  - `openRelayedPort` / `acceptRelayedPorts`: the two together for the link layer.
 *
 * Key agreement (symmetric; both sides send an offer at once, no initiator needed):
 *   offer = signed {type:"link.e2e.offer", v:1, suite, from, to, eph: b64url(X25519 pub), ts}
 *   Each side checks the peer's Ed25519 signature by `from` (= the expected peer), `to` = self,
 *   `ts` within ±300 s, then
 *     shared  = X25519(my_eph_secret, peer_eph)
 *     salt    = SHA-256(canonical({lo: offer of the lower NodeID, hi: offer of the higher}))
 *     prk     = HKDF-Extract(SHA-256, shared, salt)
 *     k_lo→hi = HKDF-Expand(prk, "hearthnet/e2e/v1 key lo>hi", 32), k_hi→lo likewise
 *     tag     = HKDF-Expand(prk, "hearthnet/e2e/v1 session tag", 4)
 *     binding = HKDF-Expand(prk, "hearthnet/e2e/v1 channel binding", 32)
 *   and sends a sealed CONFIRM record; the port opens when the peer's CONFIRM decrypts.
 *
 * Wire records (each one pipe message):
 *   [0x01][canonical JSON of the signed offer]
 *   [0x02][tag: 4][ChaCha20-Poly1305(key_dir, nonce = 0x00000000 ‖ u64be counter, aad = first 5 bytes)
 *          of [inner: 0x00 CONFIRM | 0x01 DATA | 0x02 CLOSE][payload]]
 * The counter is implicit and strictly sequential per direction, so any tampering, replay,
 * reordering or loss makes decryption fail and closes the port. Records carrying another
 * session's tag (a stale session) are ignored; the next record of this session still has to
 * decrypt at the expected counter.
 */
import { LINK_HANDSHAKE_TIMEOUT_SECONDS } from '../core/constants.js';
import { concatBytes, fromUtf8, utf8 } from '../core/encoding.js';
import type { KeyPair } from '../identity/identity.js';
import { canonical } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import {
  CLOSE_REASON_MAX_BYTES,
  E2E_OVERHEAD_BYTES,
  E2E_RECORD_OFFER,
  E2E_RECORD_SEALED,
  INNER_CLOSE,
  INNER_CONFIRM,
  INNER_DATA,
  OFFER_MAX_BYTES,
  PIPE_PREOPEN_MAX_MESSAGES,
  createE2eHandshake,
  type E2eOptions,
  type E2eSession,
} from './e2e.js';
import type { Logger } from '../observability/logger.js';
import type { BytePort } from './port.js';
import { RELAY_FORWARD_MAX_PAYLOAD_BYTES, type RelayClient } from './relay-client.js';

export {
  E2E_OVERHEAD_BYTES,
  E2E_RECORD_OFFER,
  E2E_RECORD_SEALED,
  E2E_SUITE,
  E2eSession,
  createE2eHandshake,
  type E2eHandshake,
  type E2eOffer,
  type E2eOptions,
} from './e2e.js';

// ---------------------------------------------------------------------------------------
// Encrypted BytePort over any pipe
// ---------------------------------------------------------------------------------------

export interface SecurePort extends BytePort {
  readonly peer: NodeID;
  /** Identical on both ends of this session (b64url of 32 bytes); put it where `dtls_*` would go. */
  readonly channelBinding: string;
  /** Always true: this port is end-to-end encrypted. */
  readonly encrypted: true;
}

export interface SecureOptions extends E2eOptions {
  /** Handshake deadline (default LINK_HANDSHAKE_TIMEOUT_SECONDS). */
  timeoutMs?: number;
  /** Where a failed best-effort send is noted (the mesh's link log); never sees record bytes or keys. */
  log?: Logger;
}

/**
 * Run the key agreement over `pipe` (any ordered, reliable message pipe) and resolve with an
 * encrypted BytePort to `opts.peer` on the same pipe. Rejects with `invalid_signature`,
 * `expired`, `bad_request`, `timeout` or `closed`, closing the pipe.
 */
export function secureBytePort(pipe: BytePort, opts: SecureOptions): Promise<SecurePort> {
  const timeoutMs = opts.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_SECONDS * 1000;
  const hs = createE2eHandshake(opts);
  const peer = opts.peer;
  return new Promise<SecurePort>((resolve, reject) => {
    let session: E2eSession | null = null;
    let state: 'offer' | 'confirm' | 'open' | 'closed' = 'offer';
    let port: SecurePortImpl | null = null;
    const timer = setTimeout(() => fail(new HnError('timeout', 'E2E handshake timed out')), timeoutMs);

    const fail = (e: HnError) => {
      if (state === 'closed') return;
      const wasOpen = state === 'open';
      state = 'closed';
      clearTimeout(timer);
      if (wasOpen && port) {
        port.closeLocal(e.message, false);
        return;
      }
      pipe.close(`e2e: ${e.code}`);
      reject(e);
    };

    pipe.onClose((reason) => {
      if (state === 'open' && port) {
        state = 'closed';
        port.closeLocal(reason, false);
      } else if (state !== 'closed') {
        state = 'closed';
        clearTimeout(timer);
        reject(new HnError('closed', `pipe closed during E2E handshake (${reason})`));
      }
    });

    pipe.onMessage((rec) => {
      if (state === 'closed') return;
      const kind = rec[0];
      try {
        if (kind === E2E_RECORD_OFFER) {
          if (state !== 'offer') throw new HnError('bad_request', 'unexpected E2E offer');
          if (rec.length > 1 + OFFER_MAX_BYTES) throw new HnError('bad_request', 'E2E offer too large');
          let parsed: unknown;
          try {
            parsed = JSON.parse(fromUtf8(rec.subarray(1)));
          } catch {
            throw new HnError('bad_request', 'E2E offer is not JSON');
          }
          session = hs.complete(parsed);
          state = 'confirm';
          // the handshake cannot finish without our CONFIRM: a failed send fails it (no-op once closed)
          void pipe
            .send(session.seal(INNER_CONFIRM, new Uint8Array(0)))
            .catch((e: unknown) =>
              fail(e instanceof HnError ? e : new HnError('closed', 'E2E confirm not sent')),
            );
          return;
        }
        if (kind !== E2E_RECORD_SEALED) throw new HnError('bad_request', 'unknown E2E record type');
        if (!session || !session.isOurs(rec)) return; // a stale session's record: ignore
        const { inner, payload } = session.open(rec);
        if (state === 'confirm') {
          if (inner !== INNER_CONFIRM || payload.length !== 0)
            throw new HnError('bad_request', 'expected E2E confirm');
          state = 'open';
          clearTimeout(timer);
          port = new SecurePortImpl(pipe, session, peer, opts.log);
          resolve(port);
          return;
        }
        // state === 'open'
        if (inner === INNER_DATA) port!.deliver(payload.slice());
        else if (inner === INNER_CLOSE) {
          state = 'closed';
          let reason = 'closed by peer';
          try {
            reason = fromUtf8(payload) || reason;
          } catch {
            // keep the default
          }
          port!.closeLocal(reason, false);
        } else throw new HnError('bad_request', 'unknown E2E record');
      } catch (e) {
        fail(e instanceof HnError ? e : new HnError('bad_request', 'E2E record rejected'));
      }
    });

    void pipe
      .send(concatBytes(new Uint8Array([E2E_RECORD_OFFER]), canonical(hs.offer)))
      .catch((e: unknown) => fail(e instanceof HnError ? e : new HnError('closed', 'pipe send failed')));
  });
}

class SecurePortImpl implements SecurePort {
  readonly encrypted = true as const;
  readonly maxMessageBytes: number;
  readonly channelBinding: string;
  private recv: ((m: Uint8Array) => void) | null = null;
  private readonly pending: Uint8Array[] = [];
  private flushing = false;
  private readonly closeCbs: ((r: string) => void)[] = [];
  private _closed = false;

  constructor(
    private readonly pipe: BytePort,
    private readonly session: E2eSession,
    readonly peer: NodeID,
    private readonly log?: Logger,
  ) {
    this.maxMessageBytes = pipe.maxMessageBytes - E2E_OVERHEAD_BYTES;
    this.channelBinding = session.channelBinding;
  }

  get closed(): boolean {
    return this._closed;
  }

  async send(msg: Uint8Array): Promise<void> {
    if (this._closed) throw new HnError('closed', 'port closed');
    if (msg.length > this.maxMessageBytes) {
      throw new HnError('too_large', `message of ${msg.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    // Seal synchronously so records leave in call order even when callers do not await.
    const rec = this.session.seal(INNER_DATA, msg);
    await this.pipe.send(rec);
  }

  onMessage(cb: (msg: Uint8Array) => void): void {
    this.recv = cb;
    if (this.pending.length) this.scheduleFlush();
  }

  onClose(cb: (reason: string) => void): void {
    if (this._closed) {
      queueMicrotask(() => cb('closed'));
      return;
    }
    this.closeCbs.push(cb);
  }

  close(reason = 'closed'): void {
    if (this._closed) return;
    let r = utf8(reason);
    if (r.length > CLOSE_REASON_MAX_BYTES) r = utf8(reason.slice(0, 50));
    try {
      // best effort: the port closes either way; the peer then learns it from the pipe or its heartbeat
      void this.pipe
        .send(this.session.seal(INNER_CLOSE, r))
        .catch((e: unknown) =>
          this.log?.debug('relayed link: close record not sent', { peer: this.peer, error: e as Error }),
        );
    } catch (e) {
      // counter exhausted: close anyway
      this.log?.debug('relayed link: close record not sealed', { peer: this.peer, error: e as Error });
    }
    this.closeLocal(reason, true);
  }

  /** @internal */
  deliver(m: Uint8Array): void {
    if (this._closed) return;
    if (!this.recv || this.pending.length || this.flushing) {
      this.pending.push(m);
      if (this.recv) this.scheduleFlush();
      return;
    }
    this.recv(m);
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      this.flushing = false;
      while (this.pending.length && this.recv && !this._closed) this.recv(this.pending.shift()!);
    });
  }

  /** @internal */
  closeLocal(reason: string, closePipe: boolean): void {
    if (this._closed) return;
    this._closed = true;
    if (closePipe || !this.pipe.closed) this.pipe.close(reason);
    for (const cb of this.closeCbs.splice(0)) {
      try {
        cb(reason);
      } catch {
        // contained
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Raw relay pipe
// ---------------------------------------------------------------------------------------

/**
 * A raw (unencrypted) BytePort to `peer` through the relay. It closes when the peer leaves
 * the room, the relay connection drops, the relay reports the peer offline, or a second
 * E2E offer arrives (the peer restarted its side: the frame is passed on as unrouted so an
 * acceptor can start a new session). Use it only under `secureBytePort`.
 */
export function relayPipe(client: RelayClient, peer: NodeID): BytePort {
  let recv: ((m: Uint8Array) => void) | null = null;
  const pre: Uint8Array[] = [];
  const closeCbs: ((r: string) => void)[] = [];
  let closed = false;
  let offers = 0;
  const offs: (() => void)[] = [];

  const closeWith = (reason: string) => {
    if (closed) return;
    closed = true;
    for (const off of offs.splice(0)) off();
    for (const cb of closeCbs.splice(0)) {
      try {
        cb(reason);
      } catch {
        // contained
      }
    }
  };

  offs.push(
    client.onForward(peer, (payload) => {
      if (closed) return false;
      if (payload[0] === E2E_RECORD_OFFER && ++offers > 1) {
        closeWith('rehandshake');
        return false;
      }
      const m = payload.slice();
      if (recv) recv(m);
      else if (pre.length < PIPE_PREOPEN_MAX_MESSAGES) pre.push(m);
      else closeWith('receiver not ready');
      return true;
    }),
    client.on('peer_left', (p) => {
      if (p.node_id === peer) closeWith('peer_left');
    }),
    client.on('disconnected', () => closeWith('relay_unreachable')),
    client.on('relay_error', (e) => {
      if (e.code === 'forward_target_offline' && e.to === peer) closeWith('forward_target_offline');
    }),
  );

  return {
    async send(msg: Uint8Array): Promise<void> {
      if (closed) throw new HnError('closed', 'port closed');
      try {
        await client.forward(peer, msg);
      } catch (e) {
        if (e instanceof HnError && e.code === 'relay_unreachable') closeWith('relay_unreachable');
        throw e;
      }
    },
    onMessage(cb) {
      recv = cb;
      while (pre.length && !closed) cb(pre.shift()!);
    },
    onClose(cb) {
      if (closed) queueMicrotask(() => cb('closed'));
      else closeCbs.push(cb);
    },
    close(reason = 'closed') {
      closeWith(reason);
    },
    get closed() {
      return closed;
    },
    maxMessageBytes: RELAY_FORWARD_MAX_PAYLOAD_BYTES,
  };
}

export interface RelayedPortOptions {
  self: KeyPair;
  timeoutMs?: number;
  now?: () => number;
  log?: Logger;
}

/** Open an end-to-end encrypted relayed port to `peer` (both peers may call this at once). */
export async function openRelayedPort(
  client: RelayClient,
  peer: NodeID,
  opts: RelayedPortOptions,
): Promise<SecurePort> {
  if (client.state !== 'ready') throw new HnError('relay_unreachable', 'not joined to the relay');
  if (!client.hasPeer(peer)) throw new HnError('partition', 'peer is not in the relay room');
  const o: SecureOptions = { self: opts.self, peer, now: opts.now ?? (() => client.now()) };
  if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
  if (opts.log) o.log = opts.log;
  return secureBytePort(relayPipe(client, peer), o);
}

/**
 * Accept relayed ports that peers open to us: every unrouted E2E offer starts a session.
 * `filter` may refuse a peer (e.g. not a member); handshake failures go to `onError`.
 * Returns a function that stops accepting. The link layer should use one side's rule
 * (lower NodeID opens, the other accepts) so that two sessions never race for one peer.
 */
export function acceptRelayedPorts(
  client: RelayClient,
  opts: RelayedPortOptions & {
    onPort: (port: SecurePort) => void;
    onError?: (peer: NodeID, err: HnError) => void;
    filter?: (peer: NodeID) => boolean;
  },
): () => void {
  return client.onUnroutedForward((from, payload) => {
    if (payload[0] !== E2E_RECORD_OFFER) return;
    if (opts.filter && !opts.filter(from)) return;
    const o: SecureOptions = { self: opts.self, peer: from, now: opts.now ?? (() => client.now()) };
    if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
    if (opts.log) o.log = opts.log;
    // relayPipe registers its forward handler synchronously, so the client hands this very
    // frame to it right after this callback returns.
    secureBytePort(relayPipe(client, from), o).then(opts.onPort, (e: unknown) =>
      opts.onError?.(from, e instanceof HnError ? e : new HnError('internal_error')),
    );
  });
}
