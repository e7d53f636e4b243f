/**
 * Sim peer: a small independent peer written from protocol/core/06 (link frames, hello/auth,
 * signed calls, event gossip). It is "the suite on the wire": it can forge, tamper and misbehave.
 * Link frame: u8 version=1 | u8 kind (1 CONTROL) | u8 flags (bit0 MORE) | u8 0 | u32 channel | u32 msg_no | payload.
 */
import { b64u, signBytes, signObj, utf8, verifyObj, type SuiteKey } from '../../lib/crypto.js';
import type { RawPort } from '../target.js';

const HEADER = 12;
const dec = new TextDecoder();

export interface SimPeerOptions {
  key: SuiteKey;
  community: string;
  /** protocol fields for the hello (M32 negotiation); omit for a pre-M32 peer */
  protocol_versions?: string[];
  descriptor?: Record<string, unknown>;
  /** expected SUT NodeID */
  to?: string | null;
}

export class SimPeer {
  private msgNo = 0;
  private recvNo = 0;
  private parts: Uint8Array[] = [];
  private waiters = new Map<string, { resolve: (m: any) => void; reject: (e: Error) => void }>();
  private nonce = b64u(crypto.getRandomValues(new Uint8Array(32)));
  private peerHello: any = null;
  readonly received: any[] = [];
  peer: string | null = null;
  state: 'handshaking' | 'open' | 'closed' = 'handshaking';
  closeMsg: any = null;
  private openWait: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private reqCounter = 0;

  constructor(
    readonly port: RawPort,
    private o: SimPeerOptions,
  ) {
    port.onMessage((b) => this.onBytes(b));
    port.onClose((r) => {
      this.state = 'closed';
      this.openWait?.reject(new Error(`link closed: ${this.closeMsg?.reason ?? r}`));
      for (const w of this.waiters.values()) w.reject(new Error('link closed'));
      this.waiters.clear();
    });
  }

  async send(m: Record<string, unknown> | string): Promise<void> {
    const body = utf8(typeof m === 'string' ? m : JSON.stringify(m));
    const room = this.port.maxMessageBytes - HEADER;
    for (let off = 0; off < body.length || off === 0; off += room) {
      const piece = body.subarray(off, off + room);
      const f = new Uint8Array(HEADER + piece.length);
      const dv = new DataView(f.buffer);
      f[0] = 1;
      f[1] = 1;
      f[2] = off + room < body.length ? 1 : 0;
      dv.setUint32(8, ++this.msgNo);
      f.set(piece, HEADER);
      await this.port.send(f);
      if (off + room >= body.length) break;
    }
  }

  private onBytes(b: Uint8Array) {
    if (b.length < HEADER || b[0] !== 1 || b[1] !== 1) return; // the sim peer only speaks CONTROL
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const no = dv.getUint32(8);
    if (no !== this.recvNo + 1) return this.port.close('msg_no gap');
    this.recvNo = no;
    this.parts.push(b.slice(HEADER));
    if (b[2]! & 1) return;
    const total = this.parts.reduce((n, p) => n + p.length, 0);
    const all = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      all.set(p, o);
      o += p.length;
    }
    this.parts = [];
    let m: any;
    try {
      m = JSON.parse(dec.decode(all));
    } catch {
      return;
    }
    this.onControl(m);
  }

  private onControl(m: any) {
    this.received.push(m);
    if (m.type === 'link.close') {
      this.closeMsg = m;
      this.openWait?.reject(new Error(`link refused: ${m.reason}`));
      return;
    }
    if (this.state === 'handshaking') {
      if (m.type === 'link.hello') {
        this.peerHello = m;
        void this.send(
          signObj(this.o.key, {
            type: 'link.auth',
            from: this.o.key.nodeId,
            to: m.from,
            community_id: this.o.community,
            my_nonce: this.nonce,
            peer_nonce: m.nonce,
            dtls_local: null,
            dtls_remote: null,
            ts: Math.floor(Date.now() / 1000),
          }),
        );
      } else if (m.type === 'link.auth') {
        if (!this.peerHello || m.peer_nonce !== this.nonce || !verifyObj(m, this.peerHello.from)) {
          this.openWait?.reject(new Error('SUT auth does not verify'));
          return;
        }
        this.peer = this.peerHello.from;
        this.state = 'open';
        this.openWait?.resolve();
      }
      return;
    }
    if (m.type === 'ping') void this.send({ type: 'pong', nonce: m.nonce, ts: m.ts });
    if ((m.type === 'res' || m.type === 'err') && this.waiters.has(m.id)) {
      this.waiters.get(m.id)!.resolve(m);
      this.waiters.delete(m.id);
    }
  }

  /** Send our hello and run the handshake; rejects with the SUT's close reason when refused. */
  open(timeoutMs = 5000): Promise<void> {
    const p = new Promise<void>((resolve, reject) => {
      this.openWait = { resolve, reject };
      setTimeout(() => reject(new Error('handshake timeout')), timeoutMs);
    });
    void this.send({
      type: 'link.hello',
      v: 1,
      from: this.o.key.nodeId,
      to: this.o.to ?? null,
      community_id: this.o.community,
      nonce: this.nonce,
      transport: 'memory',
      app_version: 'hearthnet-conformance-simpeer/1.0.0',
      contract_version: '3.0',
      ...(this.o.protocol_versions ? { protocol_versions: this.o.protocol_versions } : {}),
      ...(this.o.descriptor ? { descriptor: this.o.descriptor } : {}),
    });
    return p;
  }

  /** A ULID-shaped request id (Crockford base32, 26 chars), unique per sim peer. */
  private requestId(): string {
    const A = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    let t = Date.now();
    let s = '';
    for (let i = 0; i < 10; i++) {
      s = A[t % 32] + s;
      t = Math.floor(t / 32);
    }
    let n = ++this.reqCounter;
    let r = '';
    for (let i = 0; i < 16; i++) {
      r = A[(n % 32) | 0] + r;
      n = Math.floor(n / 32);
    }
    return s + r;
  }

  /**
   * Signed capability call. `tamper` changes the signed envelope after signing (SIG-01), `extra`
   * adds body fields before signing (CJ-01). Resolves with `{output}` or `{error:{code,message}}`.
   */
  async call(
    capability: string,
    body: Record<string, unknown>,
    opts: { tamper?: (signed: any) => any; timeoutMs?: number } = {},
  ): Promise<{ output: any } | { error: { code: string; message: string } }> {
    const id = this.requestId();
    const signed = signObj(this.o.key, {
      capability,
      version: '',
      request_id: id,
      from: this.o.key.nodeId,
      community: this.o.community,
      timestamp: Math.floor(Date.now() / 1000),
      body,
    });
    const { request_id: _r, ...unsignedRest } = signed as Record<string, unknown>;
    let rest: Record<string, unknown> = unsignedRest;
    if (opts.tamper) rest = opts.tamper(rest);
    const reply = new Promise<any>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      setTimeout(() => reject(new Error(`no answer to ${capability}`)), opts.timeoutMs ?? 5000);
    });
    await this.send({ type: 'call', id, ...rest, stream: false, timeout_ms: 5000 });
    const m = await reply;
    if (m.type === 'err')
      return { error: { code: String(m.error?.error), message: String(m.error?.message ?? '') } };
    const ok = verifyObj(
      {
        type: 'bus.response',
        request_id: id,
        from: m.from,
        timestamp: m.timestamp,
        body: m.body,
        signature: m.signature,
      },
      this.peer!,
    );
    if (!ok)
      return {
        error: {
          code: 'suite:response_signature_invalid',
          message: 'SUT response signature does not verify',
        },
      };
    return { output: m.body?.output };
  }

  /**
   * A signed call whose body goes on the wire as `bodyText` verbatim (e.g. `-0`, `1E30`, `4.50`, unsorted
   * keys) while the signature covers the envelope with `canonicalBody` — the canonical text of that body
   * as an independent source states it (RFC 8785's examples, hand-derived bytes). The SUT parses the text
   * itself and accepts the call only if its own canonicalisation gives exactly those bytes.
   */
  async callRaw(
    capability: string,
    bodyText: string,
    canonicalBody: string,
    timeoutMs = 5000,
  ): Promise<{ output: any } | { error: { code: string; message: string } }> {
    const id = this.requestId();
    const ts = Math.floor(Date.now() / 1000);
    const q = JSON.stringify;
    // envelope keys are ASCII: sorted by hand, no canonicaliser involved
    const canon = `{"body":${canonicalBody},"capability":${q(capability)},"community":${q(this.o.community)},"from":${q(this.o.key.nodeId)},"request_id":${q(id)},"timestamp":${ts},"version":""}`;
    const signature = signBytes(this.o.key, utf8(canon));
    const reply = new Promise<any>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      setTimeout(() => reject(new Error(`no answer to ${capability}`)), timeoutMs);
    });
    await this.send(
      `{"type":"call","id":${q(id)},"capability":${q(capability)},"version":"","from":${q(this.o.key.nodeId)},"community":${q(this.o.community)},"timestamp":${ts},"body":${bodyText},"signature":${q(signature)},"stream":false,"timeout_ms":5000}`,
    );
    const m = await reply;
    if (m.type === 'err')
      return { error: { code: String(m.error?.error), message: String(m.error?.message ?? '') } };
    return { output: m.body?.output };
  }

  /** Gossip events (live push). */
  push(events: unknown[]): Promise<void> {
    return this.send({ type: 'ev.push', community_id: this.o.community, events });
  }

  /** Round-trip a ping (liveness of the link after abuse). */
  async alive(timeoutMs = 2000): Promise<boolean> {
    if (this.state !== 'open') return false;
    const before = this.received.length;
    const nonce = b64u(crypto.getRandomValues(new Uint8Array(8)));
    await this.send({ type: 'ping', nonce, ts: Date.now() });
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (this.received.slice(before).some((m) => m.type === 'pong' && m.nonce === nonce)) return true;
      if (this.state !== 'open') return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  close() {
    this.port.close('sim peer done');
  }
}

/** A signed event envelope authored by a sim identity (X02 shape, protocol/core/04). */
export function simEvent(
  key: SuiteKey,
  community: string,
  type: string,
  data: Record<string, unknown>,
  seq: number,
  prev: string | null,
  lamport: number,
  eventId: string,
) {
  return signObj(key, {
    schema_version: 1,
    event_id: eventId,
    lamport,
    wall_clock: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    community_id: community,
    author: key.nodeId,
    event_type: type,
    data,
    seq,
    prev,
  });
}
