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
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { canonical } from '../core/canonical.js';
import { LINK_HANDSHAKE_TIMEOUT_SECONDS } from '../core/constants.js';
import {
  b64url,
  bytesEqual,
  concatBytes,
  fromB64url,
  fromUtf8,
  randomBytes,
  utf8,
} from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, signObject, verifyObject, type KeyPair } from '../identity/identity.js';
import type { BytePort } from './port.js';
import {
  RELAY_FORWARD_MAX_PAYLOAD_BYTES,
  RELAY_HELLO_SKEW_SECONDS,
  parseWallClock,
  wallClockMs,
  type RelayClient,
} from './relay-client.js';

export const E2E_SUITE = 'x25519-hkdf-sha256-chacha20poly1305';
export const E2E_RECORD_OFFER = 0x01;
export const E2E_RECORD_SEALED = 0x02;
const INNER_CONFIRM = 0x00;
const INNER_DATA = 0x01;
const INNER_CLOSE = 0x02;
const TAG_BYTES = 4;
const AEAD_TAG_BYTES = 16;
/** Bytes a sealed record adds to a payload: type + session tag + inner type + Poly1305 tag. */
export const E2E_OVERHEAD_BYTES = 1 + TAG_BYTES + 1 + AEAD_TAG_BYTES;
const OFFER_MAX_BYTES = 2048;
const CLOSE_REASON_MAX_BYTES = 200;
/** Messages a raw relay pipe holds before its receiver registers. */
const PIPE_PREOPEN_MAX_MESSAGES = 1024;

const enc = (s: string) => utf8(s);
const INFO_LO_HI = enc('hearthnet/e2e/v1 key lo>hi');
const INFO_HI_LO = enc('hearthnet/e2e/v1 key hi>lo');
const INFO_TAG = enc('hearthnet/e2e/v1 session tag');
const INFO_BINDING = enc('hearthnet/e2e/v1 channel binding');

// ---------------------------------------------------------------------------------------
// Key agreement primitives (usable on their own, e.g. inside link.auth)
// ---------------------------------------------------------------------------------------

export interface E2eOffer {
  type: 'link.e2e.offer';
  v: 1;
  suite: typeof E2E_SUITE;
  from: NodeID;
  to: NodeID;
  eph: string;
  ts: string;
  signature: string;
}

export interface E2eHandshake {
  readonly offer: E2eOffer;
  /** Verify the peer's offer and derive the session; throws HnError on any failure. */
  complete(peerOffer: unknown): E2eSession;
}

export interface E2eOptions {
  self: KeyPair;
  peer: NodeID;
  /** Clock for `ts` (default Date.now); pass the relay-corrected clock where there is one. */
  now?: () => number;
}

/** Start a key agreement: a fresh X25519 ephemeral key, signed by our Ed25519 identity. */
export function createE2eHandshake(opts: E2eOptions): E2eHandshake {
  const { self, peer } = opts;
  const now = opts.now ?? Date.now;
  if (!isNodeId(peer)) throw new HnError('bad_request', 'peer is not a NodeID');
  if (peer === self.nodeId) throw new HnError('bad_request', 'no E2E session with oneself');
  const secret = randomBytes(32);
  const ephPub = x25519.getPublicKey(secret);
  const offer = signObject(self, {
    type: 'link.e2e.offer',
    v: 1,
    suite: E2E_SUITE,
    from: self.nodeId,
    to: peer,
    eph: b64url(ephPub),
    ts: wallClockMs(now()),
  }) as unknown as E2eOffer;
  let used = false;
  return {
    offer,
    complete(peerOffer: unknown): E2eSession {
      if (used) throw new HnError('bad_request', 'handshake already completed');
      const theirs = checkOffer(peerOffer, self.nodeId, peer, now());
      let shared: Uint8Array;
      try {
        shared = x25519.getSharedSecret(secret, fromB64url(theirs.eph));
      } catch {
        throw new HnError('invalid_signature', 'peer ephemeral key rejected');
      }
      used = true;
      secret.fill(0);
      return deriveSession(self.nodeId, peer, offer, theirs, shared);
    },
  };
}

function checkOffer(o: unknown, self: NodeID, peer: NodeID, nowMs: number): E2eOffer {
  if (!o || typeof o !== 'object' || Array.isArray(o))
    throw new HnError('bad_request', 'offer is not an object');
  const r = o as Record<string, unknown>;
  if (r.type !== 'link.e2e.offer' || r.v !== 1) throw new HnError('bad_request', 'not an E2E offer');
  if (r.suite !== E2E_SUITE) throw new HnError('bad_request', 'unsupported E2E suite');
  if (r.from !== peer) throw new HnError('invalid_signature', 'offer is not from the expected peer');
  if (r.to !== self) throw new HnError('invalid_signature', 'offer is addressed to another node');
  if (typeof r.eph !== 'string') throw new HnError('bad_request', 'offer lacks an ephemeral key');
  let eph: Uint8Array;
  try {
    eph = fromB64url(r.eph);
  } catch {
    throw new HnError('bad_request', 'ephemeral key is not base64url');
  }
  if (eph.length !== 32) throw new HnError('bad_request', 'ephemeral key must be 32 bytes');
  const ts = parseWallClock(r.ts);
  if (ts === null) throw new HnError('bad_request', 'offer ts is malformed');
  if (Math.abs(ts - nowMs) > RELAY_HELLO_SKEW_SECONDS * 1000)
    throw new HnError('expired', 'offer ts outside ±300 s');
  if (!verifyObject(r, peer)) throw new HnError('invalid_signature', 'offer signature does not verify');
  return r as unknown as E2eOffer;
}

/** The per-session AEAD state: one key and one counter per direction. */
export class E2eSession {
  readonly tag: Uint8Array;
  /** Same on both ends, unique per session: can bind a signed link.auth to this channel. */
  readonly channelBinding: string;
  private readonly sendKey: Uint8Array;
  private readonly recvKey: Uint8Array;
  private sendCtr = 0;
  private recvCtr = 0;

  constructor(sendKey: Uint8Array, recvKey: Uint8Array, tag: Uint8Array, binding: Uint8Array) {
    this.sendKey = sendKey;
    this.recvKey = recvKey;
    this.tag = tag;
    this.channelBinding = b64url(binding);
  }

  /** Seal one record: `[0x02][tag][ciphertext ‖ poly1305 tag]`. */
  seal(inner: number, payload: Uint8Array): Uint8Array {
    if (this.sendCtr >= Number.MAX_SAFE_INTEGER) throw new HnError('closed', 'E2E send counter exhausted');
    const header = new Uint8Array(1 + TAG_BYTES);
    header[0] = E2E_RECORD_SEALED;
    header.set(this.tag, 1);
    const pt = new Uint8Array(1 + payload.length);
    pt[0] = inner;
    pt.set(payload, 1);
    const ct = chacha20poly1305(this.sendKey, nonceFor(this.sendCtr++), header).encrypt(pt);
    return concatBytes(header, ct);
  }

  /** True when the record carries this session's tag (records of other sessions are ignored). */
  isOurs(rec: Uint8Array): boolean {
    return (
      rec.length >= 1 + TAG_BYTES &&
      rec[0] === E2E_RECORD_SEALED &&
      bytesEqual(rec.subarray(1, 1 + TAG_BYTES), this.tag)
    );
  }

  /** Open the next record in sequence; throws HnError('invalid_signature') on any failure. */
  open(rec: Uint8Array): { inner: number; payload: Uint8Array } {
    if (rec.length < 1 + TAG_BYTES + AEAD_TAG_BYTES + 1)
      throw new HnError('invalid_signature', 'E2E record too short');
    let pt: Uint8Array;
    try {
      pt = chacha20poly1305(this.recvKey, nonceFor(this.recvCtr), rec.subarray(0, 1 + TAG_BYTES)).decrypt(
        rec.subarray(1 + TAG_BYTES),
      );
    } catch {
      throw new HnError('invalid_signature', 'E2E record failed authentication');
    }
    this.recvCtr++;
    return { inner: pt[0]!, payload: pt.subarray(1) };
  }
}

function nonceFor(ctr: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(4, Math.floor(ctr / 2 ** 32));
  v.setUint32(8, ctr >>> 0);
  return n;
}

function deriveSession(
  self: NodeID,
  peer: NodeID,
  mine: E2eOffer,
  theirs: E2eOffer,
  shared: Uint8Array,
): E2eSession {
  const selfIsLo = self < peer;
  const lo = selfIsLo ? mine : theirs;
  const hi = selfIsLo ? theirs : mine;
  const salt = sha256(canonical({ lo, hi }));
  const prk = extract(sha256, shared, salt);
  shared.fill(0);
  const kLoHi = expand(sha256, prk, INFO_LO_HI, 32);
  const kHiLo = expand(sha256, prk, INFO_HI_LO, 32);
  const tag = expand(sha256, prk, INFO_TAG, TAG_BYTES);
  const binding = expand(sha256, prk, INFO_BINDING, 32);
  prk.fill(0);
  return selfIsLo ? new E2eSession(kLoHi, kHiLo, tag, binding) : new E2eSession(kHiLo, kLoHi, tag, binding);
}

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
          void pipe.send(session.seal(INNER_CONFIRM, new Uint8Array(0))).catch(() => undefined);
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
          port = new SecurePortImpl(pipe, session, peer);
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
      void this.pipe.send(this.session.seal(INNER_CLOSE, r)).catch(() => undefined);
    } catch {
      // counter exhausted: close anyway
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
    // relayPipe registers its forward handler synchronously, so the client hands this very
    // frame to it right after this callback returns.
    secureBytePort(relayPipe(client, from), o).then(opts.onPort, (e: unknown) =>
      opts.onError?.(from, e instanceof HnError ? e : new HnError('internal_error')),
    );
  });
}
