/**
 * An injectable clock: the real one for the app, a virtual one for tests, the simulated channel and
 * the bench (burst timing, duty-cycle windows and rate limits run in virtual time).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** resolve after `ms` on this clock */
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A virtual clock: time moves only through `advance`/`runUntil`; timers fire in time order. */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];
  constructor(start = 1_767_225_600_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    const i = this.timers.indexOf(handle as Timer);
    if (i >= 0) this.timers.splice(i, 1);
  }
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, ms));
  }
  /** The same time as the module kit's clock shape (cancel functions, intervals), for `createNode({ clock })`. */
  asKitClock(): {
    now(): number;
    setTimeout(fn: () => void, ms: number): () => void;
    setInterval(fn: () => void, ms: number): () => void;
  } {
    return {
      now: () => this.now(),
      setTimeout: (fn, ms) => {
        const h = this.setTimeout(fn, ms);
        return () => this.clearTimeout(h);
      },
      setInterval: (fn, ms) => {
        let h: unknown;
        let live = true;
        const tick = () => {
          if (!live) return;
          h = this.setTimeout(tick, Math.max(1, ms));
          fn();
        };
        h = this.setTimeout(tick, Math.max(1, ms));
        return () => {
          live = false;
          this.clearTimeout(h);
        };
      },
    };
  }
  get pending(): number {
    return this.timers.length;
  }
  /** Let promise continuations run (several macrotask turns, so stream reads settle). */
  async settle(): Promise<void> {
    for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 0));
  }
  /** Advance by `ms`, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await this.settle();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
      await this.settle();
    }
    this.t = end;
    await this.settle();
  }
}
