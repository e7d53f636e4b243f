/**
 * The relay's byte accounting and forwarding (core digest §8.4, issue #18).
 *
 * - Every byte the relay queues towards a connection — forward frames, signals, roster news —
 *   goes through `queueTo` and counts in that connection's `pending`.
 * - Everything a connection sends is charged to one byte budget per connection (text and binary).
 * - Forward frames are never dropped. A target over its high-water mark holds up its senders'
 *   frames for it per (sender, target), and each sender is told `{t:"flow", peer, paused:true}`
 *   and its socket is paused, as TCP would: a backlog for a reader that is only slower waits in the
 *   sender's buffers, not in the relay's memory. A pause lasts at most `slowReaderPauseMs`; then the
 *   sender reads on, its frames for that target are held and its frames to other peers keep flowing,
 *   so a reader that stopped cannot freeze its senders (attack 3). A sender that ignores the notice
 *   and holds more than twice the high-water mark is paused (its own fault).
 * - Signals to a target over its high-water mark are refused with `rate_limited`. A sender that
 *   keeps signalling inside the `retry_after_ms` it was given ignores it: past
 *   IGNORED_WAITS_FREE such messages each refusal is a strike, so a flooder is closed within a
 *   second instead of making the relay parse and drop its flood (issue #18 attack 1).
 * - A target that stays over its mark for `slowConsumerMs` is cut off; its held frames are freed.
 */
import type { NodeID } from '../engine/core/types.js';
import { RELAY_FORWARD_MAX_BYTES, forwardFrameAddr, rewriteForwardAddr } from '../engine/net/relay-wire.js';
import { shortId, type RelayCtx } from './context.js';
import type { Conn, Held } from './types.js';

/** Refused signals a sender may send inside its retry window before each one costs a strike
 * (an honest peer's burst of ICE candidates to a busy target stays under it). */
export const IGNORED_WAITS_FREE = 16;

export function createForwarder(ctx: RelayCtx) {
  const { o, m } = ctx;
  let pendingMax = 0;
  const holdCap = () => 2 * o.forwardHighWaterBytes;

  const over = (t: Conn) => t.pending > o.forwardHighWaterBytes;
  const markOver = (t: Conn) => {
    if (t.overSince === 0) t.overSince = o.now();
  };

  /** Queue bytes towards `t`, accounted until the socket has written them. */
  const queueTo = (t: Conn, data: Buffer | string, len: number, binary: boolean) => {
    if (t.state === 'closed' || t.ws.readyState !== t.ws.OPEN) return;
    t.pending += len;
    if (t.pending > pendingMax) {
      pendingMax = t.pending;
      m.set('hearthnet_relay_forward_pending_bytes_max', {}, pendingMax);
    }
    if (over(t)) markOver(t);
    t.ws.send(data, { binary }, () => {
      t.pending = Math.max(0, t.pending - len);
      if (t.pending <= o.forwardLowWaterBytes) {
        t.overSince = 0;
        if (t.waitingSenders.size) drain(t);
      }
    });
  };

  /** The target drained: pass held frames on in order; tell each fully flushed sender to go on. */
  const drain = (t: Conn) => {
    for (const s of [...t.waitingSenders]) {
      const h = s.held.get(t)!;
      while (h.frames.length && !over(t)) {
        const f = h.frames.shift()!;
        h.bytes -= f.length;
        s.heldBytes -= f.length;
        queueTo(t, f, f.length, true);
      }
      if (h.frames.length) return; // over again: wait for the next drain
      unhold(s, t, h);
      ctx.sendJson(s, { t: 'flow', peer: t.nodeId, paused: false });
    }
  };

  const slowReason = (t: Conn) => `slow:${t.id}`;

  /**
   * `t` went over its mark while `c` sends to it: hold the pair's frames, tell the sender, and pause
   * its socket for up to `slowReaderPauseMs` — a reader that is only slower drains by then and the
   * backlog never left the sender; past it, `c` reads on and its frames for `t` are held.
   */
  const hold = (c: Conn, t: Conn): Held => {
    const h: Held = { frames: [], bytes: 0, timer: null };
    c.held.set(t, h);
    t.waitingSenders.add(c);
    m.inc('hearthnet_relay_backpressure_pauses_total');
    ctx.sendJson(c, { t: 'flow', peer: t.nodeId, paused: true });
    ctx.pauseReading(c, slowReason(t));
    h.timer = setTimeout(() => {
      h.timer = null;
      ctx.resumeReading(c, slowReason(t));
    }, o.slowReaderPauseMs);
    return h;
  };

  /** `c` holds nothing more for `t` (flushed, or one of them closed): it may read again. */
  const unhold = (c: Conn, t: Conn, h: Held) => {
    if (h.timer) clearTimeout(h.timer);
    c.heldBytes -= h.bytes;
    c.held.delete(t);
    t.waitingSenders.delete(c);
    ctx.resumeReading(c, slowReason(t));
    if (c.heldBytes <= holdCap()) ctx.resumeReading(c, 'hold');
  };

  /** Byte budget of everything a connection sends; returns ms until `len` bytes are affordable. */
  const chargeBytes = (c: Conn, len: number): number => {
    const now = o.now();
    const rate = o.connectionBytesPerSecond;
    const burst = Math.max(rate, 2 * RELAY_FORWARD_MAX_BYTES);
    c.byteTokens = Math.min(burst, c.byteTokens + ((now - c.byteTokensAt) / 1000) * rate);
    c.byteTokensAt = now;
    c.byteTokens -= len; // may go negative: binary is paced by pausing until it is paid back
    return c.byteTokens >= 0 ? 0 : Math.ceil((-c.byteTokens / rate) * 1000);
  };

  const payBack = (c: Conn, wait: number) => {
    ctx.pauseReading(c, 'bytes');
    m.inc('hearthnet_relay_budget_pauses_total');
    setTimeout(() => ctx.resumeReading(c, 'bytes'), Math.max(1, wait)).unref?.();
  };

  /**
   * Refuse a signal with `rate_limited` + `retry_after_ms`; one sent inside an earlier refusal's
   * window ignores it, and past IGNORED_WAITS_FREE of those each refusal is a strike.
   */
  const refuse = (c: Conn, reason: string, message: string, retry: number, to?: NodeID) => {
    const now = o.now();
    c.ignoredWaits = now < c.waitUntil ? c.ignoredWaits + 1 : 0;
    c.waitUntil = Math.max(c.waitUntil, now + retry);
    const strike = c.ignoredWaits > IGNORED_WAITS_FREE;
    if (strike) m.inc('hearthnet_relay_rejects_total', { reason: 'retry_ignored' });
    ctx.reject(c, 'rate_limited', reason, message, {
      retry_after_ms: retry,
      ...(to ? { to } : {}),
      strike,
    });
  };

  /** Signals are text: refused (rate_limited) when the target is not reading or the budget is spent. */
  const signal = (c: Conn, target: Conn, msg: Record<string, unknown>, bytes: number): boolean => {
    const wait = chargeBytes(c, bytes);
    if (wait > 0) {
      c.byteTokens += bytes; // refused: not charged
      refuse(c, 'byte_budget', 'over this connection’s byte budget', wait);
      return false;
    }
    if (target.pending + bytes > o.forwardHighWaterBytes) {
      markOver(target);
      refuse(c, 'target_slow', 'the target is not reading', 1000, target.nodeId!);
      return false;
    }
    const text = JSON.stringify(msg);
    queueTo(target, text, Buffer.byteLength(text), false);
    return true;
  };

  /**
   * Per-pair budget: shape a sender to its budget per second; disconnect if it stays capped.
   * A run of capped windows ends only when a window closes under budget or the sender stays idle a
   * full second after being let go — never because the relay's own timers ran late under load.
   */
  const chargePair = (c: Conn, target: Conn, len: number) => {
    const now = o.now();
    let p = c.pairs.get(target.id);
    if (!p) {
      p = {
        winStart: now,
        bytes: 0,
        frames: 0,
        capped: false,
        cappedSince: null,
        lastAt: now,
        timer: null,
        queue: [],
      };
      c.pairs.set(target.id, p);
    }
    if (now - p.winStart >= 1000) {
      if (!p.capped || now - p.lastAt >= 1000) p.cappedSince = null;
      p.winStart = now;
      p.bytes = 0;
      p.frames = 0;
      p.capped = false;
    }
    p.lastAt = now;
    p.bytes += len;
    p.frames += 1;
    if (p.capped || (p.bytes < o.pairBytesPerSecond && p.frames < o.pairFramesPerSecond)) return;
    p.capped = true;
    p.cappedSince ??= p.winStart;
    if (p.winStart + 1000 - p.cappedSince >= o.overBudgetGraceMs) {
      ctx.reject(c, 'rate_limited', 'forward_budget', 'forwarding stayed over the per-pair budget', {
        close: true,
        retry_after_ms: 1000,
      });
      return;
    }
    const reason = `budget:${target.id}`;
    ctx.pauseReading(c, reason);
    m.inc('hearthnet_relay_budget_pauses_total');
    const pair = p;
    const windowEnd = () => {
      // a timer may fire before the relay's clock says the window is over (timers run on a monotonic clock, `o.now`
      // is the wall clock or a test's): wait out the rest, or the queue would go on charged to the capped window
      const left = pair.winStart + 1000 - o.now();
      if (left > 0) {
        pair.timer = setTimeout(windowEnd, left);
        return;
      }
      pair.timer = null;
      pair.lastAt = o.now();
      // frames read in the capped window go on now, charged to the new one, until it caps again (a new timer) or
      // the connection is being closed (over budget: `release` frees the rest)
      while (pair.queue.length && !pair.timer && c.ws.readyState === c.ws.OPEN) {
        const f = pair.queue.shift()!;
        c.heldBytes -= f.length;
        route(c, target, f);
      }
      ctx.resumeReading(c, reason);
    };
    pair.timer = setTimeout(windowEnd, Math.max(1, pair.winStart + 1000 - now));
  };

  /** Connections that sent something in this event-loop turn, and what the turn has handled in all. */
  let turnConns: Conn[] = [];
  let turnTotal = 0;
  const nextTurn = () => {
    const cs = turnConns;
    turnConns = [];
    turnTotal = 0;
    for (const c of cs) {
      c.turnBytes = -1;
      ctx.resumeReading(c, 'turn');
    }
  };

  /**
   * Fair shares of a busy event loop: libuv reads up to 2 MiB from a readable socket in one go, so
   * with dozens of bulk senders one turn ran for hundreds of ms and a small message waited behind
   * them all. Once a turn has handled 4 × `turnReadBytes`, a connection past its `turnReadBytes`
   * has its socket paused until the next turn (a relay that is not busy never pauses anyone).
   */
  const chargeTurn = (c: Conn, len: number) => {
    if (c.turnBytes < 0) {
      c.turnBytes = 0;
      if (turnConns.push(c) === 1) setImmediate(nextTurn);
    }
    c.turnBytes += len;
    turnTotal += len;
    if (c.turnBytes > o.turnReadBytes && turnTotal > 4 * o.turnReadBytes) ctx.pauseReading(c, 'turn');
  };

  /** Offline-target replies come from their own bucket; a flood past it costs strikes. */
  const takeOffline = (c: Conn): boolean => {
    const now = o.now();
    const rate = o.messagesPerSecond;
    c.offlineTokens = Math.min(rate, c.offlineTokens + ((now - c.offlineTokensAt) / 1000) * rate);
    c.offlineTokensAt = now;
    if (c.offlineTokens < 1) return false;
    c.offlineTokens -= 1;
    return true;
  };

  const binary = (c: Conn, buf: Buffer) => {
    // a connection the relay is closing (over budget, strikes) forwards nothing it had read but not yet handled
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (c.state !== 'joined') {
      ctx.reject(c, 'bad_request', 'forward_before_hello', 'binary frames need a joined connection');
      return;
    }
    if (!o.forward) {
      ctx.reject(c, 'bad_request', 'forward_disabled', 'forwarding is disabled on this relay');
      return;
    }
    const wait = chargeBytes(c, buf.length);
    if (wait > 0) payBack(c, wait);
    if (buf.length > RELAY_FORWARD_MAX_BYTES) {
      ctx.reject(c, 'bad_request', 'oversized', `forward frame above ${RELAY_FORWARD_MAX_BYTES} bytes`);
      return;
    }
    const to = forwardFrameAddr(buf);
    if (to === null) {
      ctx.reject(c, 'bad_request', 'malformed_frame', 'malformed forward frame');
      return;
    }
    if (to === c.nodeId) {
      ctx.reject(c, 'bad_request', 'forward_to_self', 'cannot forward to oneself');
      return;
    }
    const target = ctx.rooms.get(c.bucket!)?.get(to);
    if (!target) {
      // Tell the sender within its offline bucket; past it, each frame is a strike.
      if (takeOffline(c))
        ctx.reject(c, 'forward_target_offline', 'forward_target_offline', 'target is not in this room', {
          to,
          strike: false,
        });
      else if (ctx.recentlyLeft(c.bucket!, to))
        m.inc('hearthnet_relay_rejects_total', { reason: 'forward_target_gone' });
      else ctx.reject(c, 'rate_limited', 'forward_flood', 'forwarding to absent peers', { to });
      return;
    }
    rewriteForwardAddr(buf, c.nodeId!);
    m.inc('hearthnet_relay_messages_forwarded_total', { kind: 'forward' });
    m.inc('hearthnet_relay_forward_bytes_total', {}, buf.length);
    const p = c.pairs.get(target.id);
    if (p?.timer) {
      // over its per-pair budget in this window (reading is paused; this frame was already read): wait for the next
      p.queue.push(buf);
      c.heldBytes += buf.length;
      return;
    }
    route(c, target, buf);
  };

  /** Pass a frame on to `target`, or hold it while the target is over its mark; charge the pair's budget. */
  const route = (c: Conn, target: Conn, buf: Buffer) => {
    if (target.state === 'closed') return;
    let h = c.held.get(target);
    if (h || over(target)) {
      h ??= hold(c, target);
      h.frames.push(buf);
      h.bytes += buf.length;
      c.heldBytes += buf.length;
      markOver(target);
      if (c.heldBytes > holdCap()) ctx.pauseReading(c, 'hold');
    } else queueTo(target, buf, buf.length, true);
    chargePair(c, target, buf.length);
  };

  /** A connection closed: free what it held and what was held for it. */
  const release = (c: Conn) => {
    for (const [t, h] of c.held) unhold(c, t, h);
    for (const s of c.waitingSenders) unhold(s, c, s.held.get(c)!);
    for (const p of c.pairs.values()) {
      if (p.timer) clearTimeout(p.timer);
      for (const f of p.queue.splice(0)) c.heldBytes -= f.length;
    }
    c.pairs.clear();
    c.pending = 0;
  };

  /** Receivers stuck over the mark are cut off (they are not reading, so no error could reach them). */
  const sweep = () => {
    const now = o.now();
    for (const c of ctx.conns) {
      if (
        c.overSince !== 0 &&
        now - c.overSince >= o.slowConsumerMs &&
        (c.pending > o.forwardLowWaterBytes || c.waitingSenders.size)
      ) {
        m.inc('hearthnet_relay_rejects_total', { reason: 'slow_consumer' });
        ctx.log('warning', 'reject', {
          reason: 'slow_consumer',
          peer: shortId(c.nodeId),
          room: shortId(c.room),
        });
        c.ws.terminate();
      }
    }
  };

  /** Every byte the relay holds for peers right now (queued and held). */
  const queuedBytes = () => {
    let n = 0;
    for (const c of ctx.conns) n += c.pending + c.heldBytes;
    return n;
  };

  const send = (c: Conn, msg: Record<string, unknown>) => {
    const text = JSON.stringify(msg);
    queueTo(c, text, Buffer.byteLength(text), false);
  };

  return { binary, signal, release, sweep, queuedBytes, send, chargeBytes, chargeTurn };
}

export type Forwarder = ReturnType<typeof createForwarder>;
export type { NodeID };
