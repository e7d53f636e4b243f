/**
 * Test helpers for the relay suites: a raw `ws` client with awaitable message queues and a
 * helper that joins a room by answering the challenge. Every wait is bounded.
 */
import WebSocket from 'ws';
import type { NodeID } from '../../engine/core/types.js';
import type { KeyPair } from '../../engine/identity/identity.js';
import { RELAY_SUBPROTOCOL, RelayClient, buildRelayHello } from '../../engine/net/relay-client.js';
import type { RelayPass } from '../../engine/net/relay-wire.js';

export type Json = Record<string, any>;

export class RawClient {
  readonly ws: WebSocket;
  readonly texts: Json[] = [];
  readonly bins: Buffer[] = [];
  closeInfo: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;
  readonly closedP: Promise<{ code: number; reason: string }>;

  constructor(url: string, protocols: string | string[] = RELAY_SUBPROTOCOL) {
    this.ws = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('error', () => undefined);
    this.closedP = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.bins.push(Buffer.from(data));
      else this.texts.push(JSON.parse(data.toString('utf8')) as Json);
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Wait until `cond()` holds (re-checked on every message/close), or fail after `ms`. */
  async until<T>(cond: () => T | undefined | false | null, what: string, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = cond();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Next text message of type `t` not yet consumed by `take`. */
  private taken = new Set<Json>();
  async take(t: string, pred: (m: Json) => boolean = () => true, ms?: number): Promise<Json> {
    return this.until(
      () => {
        const m = this.texts.find((x) => x.t === t && !this.taken.has(x) && pred(x));
        if (m) this.taken.add(m);
        return m;
      },
      `message ${t}`,
      ms,
    );
  }

  has(t: string, pred: (m: Json) => boolean = () => true): boolean {
    return this.texts.some((x) => x.t === t && pred(x));
  }

  send(obj: unknown) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendBinary(b: Uint8Array) {
    this.ws.send(b, { binary: true });
  }

  /** Many binary messages in one TCP write (the socket corked around them): the relay reads them in one chunk. */
  sendBinaryBurst(bs: Uint8Array[]) {
    const sock = (this.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    sock.cork();
    for (const b of bs) this.ws.send(b, { binary: true });
    sock.uncork();
  }

  async closed(ms = 15_000) {
    await this.until(() => this.closeInfo, 'close', ms);
    return this.closeInfo!;
  }

  close() {
    try {
      this.ws.close();
    } catch {
      // ignore
    }
  }
}

/** Connect, answer the challenge with a signed hello, and wait for `welcome`. */
export async function joinRaw(
  wsUrl: string,
  kp: KeyPair,
  room: NodeID,
  displayName?: string,
  pass?: RelayPass,
): Promise<{ c: RawClient; welcome: Json }> {
  const c = new RawClient(wsUrl);
  await c.opened;
  const ch = await c.take('challenge');
  c.send(buildRelayHello(kp, room, ch.nonce as string, Date.now(), displayName, pass));
  const welcome = await c.until(
    () =>
      c.texts.find((m) => m.t === 'welcome') ??
      (c.texts.find((m) => m.t === 'error') ? c.texts.find((m) => m.t === 'error') : undefined),
    'welcome',
  );
  if (welcome.t !== 'welcome') throw new Error(`join failed: ${welcome.code}`);
  return { c, welcome };
}

/** Poll a condition with a bound (for relay-side state such as metrics). */
export async function eventually<T>(
  cond: () => T | undefined | false | null,
  what: string,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Parse Prometheus text into {series → value}; throws on a malformed line. */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line.startsWith('#') && !/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) {
        throw new Error(`bad comment line: ${line}`);
      }
      continue;
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})?) (-?[0-9.e+]+|[+-]Inf|NaN)$/.exec(
        line,
      );
    if (!m) throw new Error(`bad metric line: ${line}`);
    out.set(m[1]!, Number(m[4]));
  }
  return out;
}

/**
 * Engine RelayClients of `room` on `wsUrl`, each with its relay errors' codes collected in `errorsOf`;
 * `cleanup` is told how to close each one.
 */
export function passClients(wsUrl: string, room: NodeID, cleanup: (f: () => unknown) => void) {
  const errorsOf = new Map<RelayClient, string[]>();
  const client = (kp: KeyPair, pass?: RelayPass) => {
    const c = new RelayClient({
      url: wsUrl,
      keyPair: kp,
      room,
      WebSocket,
      reconnect: false,
      ...(pass ? { pass } : {}),
    });
    const errs: string[] = [];
    errorsOf.set(c, errs);
    c.on('relay_error', (e) => errs.push(e.code));
    cleanup(() => c.close());
    c.start();
    return c;
  };
  return { client, errorsOf };
}
