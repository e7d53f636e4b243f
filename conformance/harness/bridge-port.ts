/**
 * A RawPort whose bytes travel over something else (Playwright `evaluate`, a WebSocket): sends are
 * handed to `out` in order; bytes that arrive before a receiver registers are held and land on a
 * later tick, as on any real channel (never inside `onMessage` itself).
 */
import type { RawPort } from './target.js';

export class BridgePort implements RawPort {
  private recv: ((m: Uint8Array) => void) | null = null;
  private pending: Uint8Array[] = [];
  private closeCbs: ((r: string) => void)[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  closed = false;

  constructor(
    private readonly o: {
      /** carry one message to the other side (called in order, one at a time) */
      out: (msg: Uint8Array) => Promise<unknown> | void;
      /** tell the other side this end closed */
      close?: (reason: string) => Promise<unknown> | void;
      maxMessageBytes?: number;
    },
  ) {}

  get maxMessageBytes(): number {
    return this.o.maxMessageBytes ?? 256 * 1024;
  }

  /** bytes from the other side */
  deliver(m: Uint8Array): void {
    if (this.closed) return;
    if (this.recv && !this.pending.length) this.recv(m);
    else this.pending.push(m);
  }

  /** the other side closed */
  remoteClose(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs) cb(reason);
  }

  async send(msg: Uint8Array): Promise<void> {
    if (this.closed) throw Object.assign(new Error('port closed'), { code: 'closed' });
    const copy = new Uint8Array(msg);
    this.chain = this.chain.then(() => this.o.out(copy)).catch(() => undefined);
  }

  onMessage(cb: (m: Uint8Array) => void): void {
    this.recv = cb;
    setTimeout(() => {
      for (const m of this.pending.splice(0)) if (!this.closed) cb(m);
    }, 0);
  }

  onClose(cb: (r: string) => void): void {
    this.closeCbs.push(cb);
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.remoteClose(reason);
    const c = this.o.close;
    if (c) this.chain = this.chain.then(() => c(reason)).catch(() => undefined);
  }
}
