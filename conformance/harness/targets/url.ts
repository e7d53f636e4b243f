/**
 * `url` target: any implementation speaking harness protocol v1 (conformance/README.md) over
 * HTTP + JSON, with `Authorization: Bearer <admin token>`. raw_link and x08_accept are WebSockets
 * where each message is one link (or X08) message. Ops the SUT does not list in `info.ops` are
 * simply absent here, so cases that need them are skipped naming the op.
 */
import WebSocket from 'ws';
import { BridgePort } from '../bridge-port.js';
import {
  viaJson,
  type CallResult,
  type LinkRow,
  type RawPort,
  type Target,
  type TargetInfo,
} from '../target.js';

export interface UrlTargetOptions {
  /** base URL, e.g. http://127.0.0.1:7311 */
  url: string;
  token: string;
  /** relay for `link/open` (op link); default: none (the SUT links its peers its own way) */
  relayUrl?: string;
  /** ms to wait for linkAll */
  linkTimeoutMs?: number;
}

export class UrlTarget implements Target {
  readonly kind = 'url' as const;
  private cached: TargetInfo | null = null;
  private sockets = new Set<WebSocket>();

  constructor(private o: UrlTargetOptions) {
    // optional ops exist only when the SUT offers them (checked in info())
  }

  private href(path: string): string {
    return new URL(path, this.o.url.endsWith('/') ? this.o.url : this.o.url + '/').href;
  }

  private async req(method: 'GET' | 'POST', path: string, body?: unknown): Promise<any> {
    const r = await fetch(this.href(path), {
      method,
      headers: {
        authorization: `Bearer ${this.o.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`harness ${method} ${path}: HTTP ${r.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : null;
  }

  async info(): Promise<TargetInfo> {
    const i = (await this.req('GET', 'harness/v1/info')) as TargetInfo;
    if (i.harness_version !== '1') throw new Error(`harness version ${String(i.harness_version)} is not 1`);
    this.cached = i;
    const ops = new Set(i.ops);
    // a missing op means the method is absent: the runner skips the cases that need it
    if (!ops.has('link')) Object.assign(this, { linkAll: undefined, links: undefined });
    if (!ops.has('config')) Object.assign(this, { config: undefined });
    if (!ops.has('raw_link')) Object.assign(this, { rawLink: undefined });
    if (!ops.has('x08_accept')) Object.assign(this, { x08Accept: undefined });
    if (!ops.has('vector')) Object.assign(this, { vector: undefined });
    if (!ops.has('x08_token')) Object.assign(this, { x08Token: undefined });
    return viaJson(i);
  }

  async x08Token(
    peer: number,
    o: { local: string; purpose: string; session_id: string },
  ): Promise<{ token: string }> {
    const r = await this.req('POST', 'harness/v1/x08/token', { peer, ...o });
    if (typeof r?.token !== 'string')
      throw new Error(`harness x08/token: no token (${JSON.stringify(r?.error ?? r)})`);
    return { token: r.token };
  }

  async vector(peer: number, family: string, op: string, input: unknown): Promise<CallResult> {
    const r = await this.req('POST', 'harness/v1/vector', { peer, family, op, input: viaJson(input) });
    if (r && typeof r === 'object' && 'error' in r)
      return {
        error: { code: String(r.error?.code ?? 'internal_error'), message: String(r.error?.message ?? '') },
      };
    return viaJson({ output: r?.output });
  }

  async reset(): Promise<void> {
    await this.req('POST', 'harness/v1/reset', {});
  }

  async call(peer: number, capability: string, input: unknown): Promise<CallResult> {
    const r = await this.req('POST', 'harness/v1/call', { peer, capability, input: viaJson(input) });
    if (r && typeof r === 'object' && 'error' in r)
      return {
        error: { code: String(r.error?.code ?? 'internal_error'), message: String(r.error?.message ?? '') },
      };
    return viaJson({ output: r?.output });
  }

  async events(peer: number, cursor = 0) {
    const r = await this.req('GET', `harness/v1/events/poll?peer=${peer}&cursor=${cursor}&wait_ms=0`);
    return viaJson({ events: r.events as any[], cursor: Number(r.cursor) });
  }

  async linkAll(): Promise<void> {
    const peers = (this.cached ?? (await this.info())).peers;
    await this.req('POST', 'harness/v1/link/open', this.o.relayUrl ? { relay_url: this.o.relayUrl } : {});
    const deadline = Date.now() + (this.o.linkTimeoutMs ?? 15_000);
    while (true) {
      const rows = await Promise.all(peers.map((_, i) => this.links(i)));
      if (
        rows.every((r, i) =>
          peers.every((id, j) => j === i || r.some((l) => l.peer === id && l.state === 'open')),
        )
      )
        return;
      if (Date.now() > deadline) return; // the case reports what is missing
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  async links(peer: number): Promise<LinkRow[]> {
    return viaJson((await this.req('GET', `harness/v1/link/list?peer=${peer}`)).links as LinkRow[]);
  }

  async config(peer: number, modules: Record<string, boolean>): Promise<void> {
    await this.req('POST', 'harness/v1/config', { peer, modules });
  }

  private socket(path: string): Promise<RawPort> {
    const u = new URL(this.href(path));
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(u.href, { headers: { authorization: `Bearer ${this.o.token}` } });
    ws.binaryType = 'nodebuffer';
    this.sockets.add(ws);
    const port = new BridgePort({
      out: (msg) =>
        new Promise<void>((res, rej) => {
          if (ws.readyState !== WebSocket.OPEN) return rej(new Error('socket closed'));
          ws.send(msg, (e) => (e ? rej(e) : res()));
        }),
      close: (reason) => ws.close(1000, reason.slice(0, 120)),
    });
    ws.on('message', (d: Buffer) => port.deliver(new Uint8Array(d)));
    ws.on('close', (_code, reason) => {
      this.sockets.delete(ws);
      port.remoteClose(reason.toString() || 'closed');
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(port));
      ws.once('error', (e) => reject(e));
    });
  }

  async rawLink(peer: number): Promise<RawPort> {
    return this.socket(`harness/v1/raw?peer=${peer}`);
  }

  async x08Accept(peer: number, o: { purpose: string; token: string; local: string }): Promise<RawPort> {
    const q = new URLSearchParams({ peer: String(peer), purpose: o.purpose, token: o.token, from: o.local });
    return this.socket(`harness/v1/x08?${q}`);
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }
}
