/** Shared vocabulary of the engine: how a peer is linked, and an injectable clock. */

/** How a peer is reached: a direct WebRTC channel, forwarded through the relay, or in-process (tests). */
export type LinkKind = 'direct' | 'relayed' | 'memory';

/** Cancel a timer returned by a Clock. */
export type CancelTimer = () => void;

/**
 * Time as a module sees it. Injectable (NodeOptions.clock) so tests can advance time; the module
 * host cancels every timer a module made when the module stops.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): CancelTimer;
  setInterval(fn: () => void, ms: number): CancelTimer;
}

/** The real clock (optionally with a custom `now`). */
export function systemClock(now: () => number = Date.now): Clock {
  return {
    now,
    setTimeout(fn, ms) {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    },
    setInterval(fn, ms) {
      const t = setInterval(fn, ms);
      return () => clearInterval(t);
    },
  };
}

/** A manual clock for tests: time moves only when `advance` is called; due timers fire in order. */
export function manualClock(start = 0): Clock & { advance(ms: number): void } {
  let t = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void; every: number | null }>();
  const add = (fn: () => void, ms: number, every: number | null) => {
    const id = ++seq;
    timers.set(id, { at: t + Math.max(0, ms), fn, every });
    return () => void timers.delete(id);
  };
  return {
    now: () => t,
    setTimeout: (fn, ms) => add(fn, ms, null),
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    advance(ms) {
      const end = t + ms;
      for (;;) {
        let next: [number, { at: number; fn: () => void; every: number | null }] | null = null;
        for (const e of timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
        if (!next) break;
        const [id, timer] = next;
        t = timer.at;
        if (timer.every === null) timers.delete(id);
        else timer.at += timer.every;
        timer.fn();
      }
      t = end;
    },
  };
}

/**
 * The tail of a serial queue: the next job runs once `p` has settled, whichever way. This is not
 * where `p`'s error goes: whoever awaits `p` itself receives it (the queue hands `p` back).
 */
export function queueTail(p: Promise<unknown>): Promise<void> {
  return p.then(
    () => undefined,
    () => undefined,
  );
}
