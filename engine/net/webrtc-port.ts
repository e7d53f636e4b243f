/**
 * A direct link: a WebRTC data channel through simple-peer, as a BytePort. The simple-peer
 * constructor is injected (the browser build bundles simple-peer, Node passes `@roamhq/wrtc`),
 * so the engine stays free of platform imports. Signalling data (SDP/ICE) goes out through
 * `onSignal` and comes in through `signal()`; it is never logged.
 */
import { HnError } from '../core/errors.js';
import type { BytePort } from './port.js';

/** The part of simple-peer's instance API this module uses. */
export interface SimplePeerLike {
  signal(data: unknown): void;
  write(chunk: Uint8Array): boolean;
  destroy(err?: Error): void;
  on(ev: 'signal', cb: (data: unknown) => void): void;
  on(ev: 'connect' | 'close' | 'drain', cb: () => void): void;
  on(ev: 'data', cb: (d: Uint8Array) => void): void;
  on(ev: 'error', cb: (e: Error) => void): void;
  /** simple-peer's RTCDataChannel (set once connected) */
  _channel?: {
    send(data: Uint8Array): void;
    bufferedAmount: number;
    bufferedAmountLowThreshold: number;
    onbufferedamountlow: ((ev: unknown) => void) | null;
    onmessage?: ((ev: { data: unknown }) => void) | null;
    readyState?: string;
  } | null;
  /** set by simple-peer once destroyed */
  destroyed?: boolean;
  _pc?: {
    localDescription?: { sdp?: string } | null;
    remoteDescription?: { sdp?: string } | null;
    sctp?: { maxMessageSize?: number } | null;
  };
}
export type SimplePeerCtor = new (opts: Record<string, unknown>) => SimplePeerLike;

export interface WebRtcOptions {
  initiator: boolean;
  SimplePeer: SimplePeerCtor;
  /** `@roamhq/wrtc` under Node; omitted in browsers */
  wrtc?: unknown;
  iceServers?: RTCIceServer[];
  onSignal: (data: unknown) => void;
  /** give up when the channel is not open within this time */
  timeoutMs?: number;
}

export interface DirectLink {
  port: BytePort;
  /** SHA-256 DTLS fingerprints from the local and the remote SDP, for link.auth */
  dtlsLocal: string;
  dtlsRemote: string;
}

/** Bytes queued on the data channel before `send` waits, and the level that wakes it (issue #11). */
export const SEND_HIGH_WATER = 1 << 20;
export const SEND_LOW_WATER = 256 << 10;

const FINGERPRINT_RE = /^a=fingerprint:sha-256 ([0-9A-Fa-f:]{95})\s*$/m;
export function sdpFingerprint(sdp: string | undefined | null): string | null {
  const m = sdp ? FINGERPRINT_RE.exec(sdp) : null;
  return m ? m[1]!.toUpperCase() : null;
}

/** Start a WebRTC connection; resolves with the open channel as a BytePort. */
export function openWebRtc(o: WebRtcOptions): {
  signal: (data: unknown) => void;
  ready: Promise<DirectLink>;
  destroy: () => void;
} {
  const peer = new o.SimplePeer({
    initiator: o.initiator,
    trickle: true,
    config: { iceServers: o.iceServers ?? [] },
    channelConfig: { ordered: true },
    allowHalfTrickle: false,
    ...(o.wrtc ? { wrtc: o.wrtc } : {}),
  });
  let closed = false;
  let recv: ((m: Uint8Array) => void) | undefined;
  const early: Uint8Array[] = [];
  const closeCbs: ((r: string) => void)[] = [];
  let drainWaiters: (() => void)[] = [];
  const shut = (reason: string) => {
    if (closed) return;
    closed = true;
    for (const w of drainWaiters) w();
    drainWaiters = [];
    for (const cb of closeCbs.splice(0)) cb(reason);
  };
  peer.on('signal', (d) => o.onSignal(d));
  const deliver = (bytes: Uint8Array) => {
    if (recv) recv(bytes);
    else early.push(bytes);
  };
  peer.on('data', (d) => {
    // until 'connect' (below) messages come through simple-peer's stream: a Buffer view of the message's
    // own ArrayBuffer is taken as is (no copy); only a view into a larger (possibly pooled) buffer is copied
    const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
    deliver(
      whole
        ? new Uint8Array(d.buffer, 0, d.byteLength)
        : new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice(),
    );
  });
  peer.on('drain', () => {
    const w = drainWaiters;
    drainWaiters = [];
    for (const f of w) f();
  });
  peer.on('close', () => shut('data channel closed'));
  const ready = new Promise<DirectLink>((resolve, reject) => {
    const t = setTimeout(() => {
      reject(new HnError('partition', 'WebRTC connection timed out'));
      peer.destroy();
    }, o.timeoutMs ?? 10_000);
    peer.on('error', (e) => {
      clearTimeout(t);
      reject(new HnError('partition', `WebRTC failed: ${(e as { code?: string }).code ?? e.name}`));
      shut('error');
    });
    peer.on('connect', () => {
      clearTimeout(t);
      const dtlsLocal = sdpFingerprint(peer._pc?.localDescription?.sdp);
      const dtlsRemote = sdpFingerprint(peer._pc?.remoteDescription?.sdp);
      if (!dtlsLocal || !dtlsRemote) {
        peer.destroy();
        return reject(new HnError('partition', 'no DTLS fingerprint in the SDP'));
      }
      const sctpMax = peer._pc?.sctp?.maxMessageSize;
      // Send on the data channel itself, not through simple-peer's stream: its write() stops at 64 KiB
      // buffered and refills only on 'bufferedamountlow' at 64 KiB, so the channel ran dry between link
      // fragments (profile in docs/decisions.md, issue #11). We keep up to SEND_HIGH_WATER queued and wake
      // senders when it drains below SEND_LOW_WATER.
      const ch = peer._channel;
      // Receive from the data channel itself too: simple-peer pushes every message through its readable
      // stream, whose process.nextTick shim costs a timer per message on the receiver's main thread (issue #11
      // profile). From here on each message's own ArrayBuffer is handed over as is.
      if (ch && 'onmessage' in ch) {
        const prevMsg = ch.onmessage;
        ch.onmessage = (ev) => {
          if (peer.destroyed) return;
          const d = ev.data;
          if (d instanceof ArrayBuffer) deliver(new Uint8Array(d));
          else if (typeof prevMsg === 'function') prevMsg.call(ch, ev); // not binary: simple-peer's path
        };
      }
      // without 'bufferedamountlow' events (an old wrtc build) a waiting sender re-checks every 20 ms
      const lowEvents = !!ch && typeof ch.bufferedAmountLowThreshold === 'number';
      if (ch && lowEvents) {
        ch.bufferedAmountLowThreshold = SEND_LOW_WATER;
        const prev = ch.onbufferedamountlow;
        ch.onbufferedamountlow = (ev) => {
          if (typeof prev === 'function') prev.call(ch, ev);
          const w = drainWaiters;
          drainWaiters = [];
          for (const f of w) f();
        };
      }
      const port: BytePort = {
        async send(msg) {
          if (closed) throw new HnError('closed', 'data channel closed');
          if (!ch || typeof ch.send !== 'function') {
            const ok = peer.write(msg);
            if (!ok) await new Promise<void>((r) => drainWaiters.push(r));
            return;
          }
          try {
            ch.send(msg);
          } catch (e) {
            peer.destroy();
            shut('error');
            throw new HnError('closed', `data channel send failed: ${(e as Error).name}`);
          }
          while (!closed && ch.bufferedAmount > SEND_HIGH_WATER)
            await new Promise<void>((r) => {
              drainWaiters.push(r);
              if (!lowEvents) setTimeout(r, 20);
            });
        },
        onMessage(cb) {
          recv = cb;
          for (const m of early.splice(0)) cb(m);
        },
        onClose(cb) {
          if (closed) cb('closed');
          else closeCbs.push(cb);
        },
        close(reason = 'closed') {
          peer.destroy();
          shut(reason);
        },
        get closed() {
          return closed;
        },
        // Chromium's SCTP cap is 256 KiB; link frames stay at 64 KiB anyway
        maxMessageBytes: Math.min(sctpMax && sctpMax > 0 ? sctpMax : 65536, 262144),
      };
      resolve({ port, dtlsLocal, dtlsRemote });
    });
  });
  // the caller (the mesh) handles `ready`'s failure and logs it; this covers the time before it attaches
  ready.catch(() => undefined);
  return {
    signal: (d) => {
      if (!closed) {
        try {
          peer.signal(d);
        } catch {
          /* malformed signal data from a peer: ignored, the connection times out */
        }
      }
    },
    ready,
    destroy: () => {
      peer.destroy();
      shut('destroyed');
    },
  };
}
