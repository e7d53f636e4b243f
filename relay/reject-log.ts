/**
 * Refusal log lines, aggregated (issue #18): a flood of refused messages must not become a flood
 * of log lines. Per connection and reason, the first refusal is logged at once; later ones are
 * counted and written as one line with `count` when their one-second window is over (at the next
 * refusal of that reason, at the relay's sweep, or when the connection closes). A refusal that
 * closes the connection is always logged at once, with what was pending before it.
 */
import { shortId, type RelayCtx } from './context.js';
import type { Conn } from './types.js';

export const REJECT_LOG_WINDOW_MS = 1000;

export interface RejectNote {
  reason: string;
  code: string;
  closed: boolean;
}

export function createRejectLog(log: RelayCtx['log'], now: () => number) {
  const line = (c: Conn, reason: string, code: string, count: number, closed: boolean) =>
    log('warning', 'reject', {
      reason,
      code,
      peer: shortId(c.nodeId),
      room: shortId(c.room),
      closed,
      count,
    });

  /** One refusal of `c`. */
  const note = (c: Conn, n: RejectNote) => {
    const t = now();
    const s = c.refusals.get(n.reason);
    if (!s) {
      line(c, n.reason, n.code, 1, n.closed);
      if (!n.closed) c.refusals.set(n.reason, { since: t, count: 0, code: n.code });
      return;
    }
    s.count++;
    s.code = n.code;
    if (n.closed || t - s.since >= REJECT_LOG_WINDOW_MS) {
      line(c, n.reason, n.code, s.count, n.closed);
      s.since = t;
      s.count = 0;
    }
  };

  /** Write what a window holds once it is over (`all`: every window, the connection is gone). */
  const flush = (c: Conn, all = false) => {
    if (c.refusals.size === 0) return;
    const t = now();
    for (const [reason, s] of c.refusals) {
      if (!all && t - s.since < REJECT_LOG_WINDOW_MS) continue;
      if (s.count > 0) line(c, reason, s.code, s.count, false);
      c.refusals.delete(reason);
    }
  };

  return { note, flush };
}
