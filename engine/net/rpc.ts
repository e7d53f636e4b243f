/**
 * The RPC part of a PeerSession (core digest §5.4–§5.6): signed outbound calls and streams, and
 * inbound calls checked in order of cost — budgets first (per peer: calls, bytes; per capability:
 * the bus's buckets, keyed by a registered name, never by the caller's string), then the
 * envelope, then the signature. Every refusal is answered (`rate_limited` with `retry_after_ms`,
 * `bad_request`, ...), never dropped in silence.
 */
import type { Bus } from '../bus/bus.js';
import { parseRef } from '../bus/bus.js';
import type { CallOptions, StreamFrame } from '../bus/types.js';
import {
  CALL_SKEW_FUTURE_SECONDS,
  CALL_SKEW_PAST_SECONDS,
  REQUEST_REPLAY_WINDOW_SECONDS,
  RPC_DEFAULT_TIMEOUT_SECONDS,
  STREAM_ACK_INTERVAL_FRAMES,
  STREAM_ACK_TIMEOUT_SECONDS,
  STREAM_WINDOW_FRAMES,
} from '../core/constants.js';
import { HnError, toHnError } from '../core/errors.js';
import { ulid, ULID_RE } from '../core/ulid.js';
import { signObject, verifyObjectAsync } from '../identity/identity.js';
import { STREAM_RECEIVE_QUEUE_MAX } from './budget.js';
import { sanitizeError, type CallMsg, type Incoming } from './control.js';
import { nowSec, type SessionCore } from './session-types.js';

interface PendingUnary {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
interface PendingStream {
  push: (m: Incoming) => void;
  fail: (e: unknown) => void;
}
interface Inbound {
  abort: AbortController;
  acked: number;
  ackWaiter?: () => void;
}

/** Label for a capability a peer named: the registered name, or one shared bucket for the rest. */
export const UNREGISTERED_LABEL = '_unregistered';
/** Replay-window entries kept per link; the call budget keeps a real peer far below it. */
const SEEN_IDS_MAX = 100_000;

export class RpcPart {
  private unary = new Map<string, PendingUnary>();
  private streams = new Map<string, PendingStream>();
  private inbound = new Map<string, Inbound>();
  /** calls whose signature is being checked (async verifier), by request id */
  private verifying = new Map<string, AbortController>();
  private seenIds = new Map<string, number>();

  constructor(private readonly s: SessionCore) {}

  // ---------- outbound ----------

  private envelope(
    ref: { name: string; version: string },
    input: unknown,
    stream: boolean,
    timeoutMs: number,
  ) {
    const d = this.s.d;
    const id = ulid();
    const signed = signObject(d.keys, {
      capability: ref.name,
      version: ref.version,
      request_id: id,
      from: d.keys.nodeId,
      community: d.communityId,
      timestamp: nowSec(() => this.s.now()),
      body: input as Record<string, unknown>,
    });
    const { request_id: _r, ...rest } = signed;
    const msg = { type: 'call', id, ...rest, stream, timeout_ms: timeoutMs } as unknown as CallMsg;
    return { id, msg };
  }

  call(ref: { name: string; version: string }, input: unknown, opts: CallOptions = {}): Promise<unknown> {
    this.s.assertOpen();
    const timeoutMs = opts.timeout_ms ?? RPC_DEFAULT_TIMEOUT_SECONDS * 1000;
    const { id, msg } = this.envelope(ref, input, false, timeoutMs);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.unary.delete(id);
      };
      const timer = setTimeout(() => {
        done();
        void this.s.send({ type: 'cancel', id });
        reject(new HnError('timeout', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        done();
        void this.s.send({ type: 'cancel', id });
        reject(
          opts.signal?.reason instanceof HnError ? opts.signal.reason : new HnError('timeout', 'cancelled'),
        );
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.unary.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.s
        .sendStrict(msg)
        .catch((e) =>
          this.unary
            .get(id)
            ?.reject(
              toHnError(e).code === 'too_large'
                ? new HnError('bad_request', 'call body over 1 MiB')
                : new HnError('partition', 'link closed'),
            ),
        );
    });
  }

  /** A response settles its call once its signature verified (engine verifier, WebCrypto where it passed). */
  async onRes(m: Incoming) {
    const p = this.unary.get(m.id);
    if (!p) return;
    const peer = this.s.peer;
    const ok =
      m.from === peer &&
      (await verifyObjectAsync(
        {
          type: 'bus.response',
          request_id: m.id,
          from: m.from,
          timestamp: m.timestamp,
          body: m.body,
          signature: m.signature,
        },
        peer,
      ));
    // a call that ended meanwhile (link closed, caller cancelled) has settled already: both are no-ops then
    if (!ok) return p.reject(new HnError('invalid_signature', 'response signature does not verify'));
    p.resolve(m.body?.output);
  }

  onErr(m: Incoming) {
    const p = this.unary.get(m.id) ?? null;
    const e = HnError.fromObject(sanitizeError(m.error));
    if (p) {
      this.unary.delete(m.id);
      p.reject(e);
    }
    this.streams.get(m.id)?.fail(e);
  }

  onFrame(m: Incoming) {
    this.streams.get(m.id)?.push(m);
  }

  onAck(m: Incoming) {
    const s = this.inbound.get(m.id);
    if (s && Number.isInteger(m.upto) && m.upto > s.acked) {
      s.acked = m.upto;
      s.ackWaiter?.();
    }
  }

  onCancel(m: Incoming) {
    // a call still having its signature checked is cancelled too: it then dispatches with an aborted signal
    (this.inbound.get(m.id)?.abort ?? this.verifying.get(m.id))?.abort(
      new HnError('timeout', 'cancelled by the caller'),
    );
  }

  stream(
    ref: { name: string; version: string },
    input: unknown,
    opts: CallOptions = {},
  ): AsyncIterable<StreamFrame> {
    const self = this;
    const s = this.s;
    return {
      [Symbol.asyncIterator]: async function* () {
        s.assertOpen();
        const timeoutMs = opts.timeout_ms ?? RPC_DEFAULT_TIMEOUT_SECONDS * 1000;
        const { id, msg } = self.envelope(ref, input, true, timeoutMs);
        const q: Incoming[] = [];
        let wake: (() => void) | null = null;
        let failure: unknown = null;
        let expectSeq = 1;
        let finished = false;
        self.streams.set(id, {
          push: (f) => {
            // bounded: a server that ignores the window fails its own stream
            if (q.length >= STREAM_RECEIVE_QUEUE_MAX)
              failure ??= new HnError('bad_request', 'stream frames beyond the window');
            else q.push(f);
            wake?.();
          },
          fail: (e) => {
            failure = e;
            wake?.();
          },
        });
        const timer = setTimeout(() => {
          failure = new HnError('timeout', `stream exceeded ${timeoutMs} ms`);
          wake?.();
        }, timeoutMs);
        const onAbort = () => {
          failure =
            opts.signal?.reason instanceof HnError ? opts.signal.reason : new HnError('timeout', 'cancelled');
          wake?.();
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const unsubClose = s.addCloseListener(() => {
          failure ??= new HnError('partition', 'link closed during the stream');
          wake?.();
        });
        try {
          await s.sendStrict(msg);
          while (true) {
            while (!q.length && !failure) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (failure) throw failure;
            const f = q.shift()!;
            if (f.seq !== expectSeq) throw new HnError('bad_request', 'stream frame out of sequence');
            expectSeq++;
            if (f.seq % STREAM_ACK_INTERVAL_FRAMES === 0) void s.send({ type: 'ack', id, upto: f.seq });
            if (f.event === 'error') throw HnError.fromObject(sanitizeError(f.data));
            yield { event: String(f.event), data: f.data };
            if (f.event === 'done') {
              finished = true;
              return;
            }
          }
        } finally {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          self.streams.delete(id);
          unsubClose();
          if (!finished) void s.send({ type: 'cancel', id });
        }
      },
    };
  }

  // ---------- inbound ----------

  /** Budgets in order of cost; throws `rate_limited` (with `retry_after_ms`) when one is spent. */
  private admitBudget(m: Incoming, bytes: number): string {
    const { budget, d } = this.s;
    const limited = (label: string, reason: string, wait: number, what: string) => {
      d.metrics.inc('hearthnet_rate_limited_total', { capability: label, reason });
      return new HnError('rate_limited', what, { retry_after_ms: wait });
    };
    const overHard = budget.callsHard.take() > 0;
    const wait = budget.calls.take();
    if (wait > 0) throw limited('_total', overHard ? 'hard' : 'soft', wait, 'too many calls from this peer');
    const bwait = budget.bytes.take(bytes);
    if (bwait > 0) throw limited('_total', 'bytes', bwait, 'too many bytes of calls from this peer');
    if (typeof m.capability !== 'string' || typeof m.version !== 'string' || m.version.length > 16)
      throw new HnError('bad_request', 'malformed call envelope');
    const ref = m.version ? `${m.capability}@${m.version}` : m.capability;
    parseRef(ref); // bad_request for names no one can register (long, not dotted lowercase)
    const label = d.bus.has(ref) ? (m.capability as string) : UNREGISTERED_LABEL;
    const rate = d.bus.rateCheck(this.s.peer, label);
    if (rate !== 'ok')
      throw new HnError('rate_limited', 'too many calls to this capability', { retry_after_ms: 1000 });
    return ref;
  }

  async onCall(m: Incoming, bytes: number) {
    const id = typeof m.id === 'string' && ULID_RE.test(m.id) ? m.id : null;
    const d = this.s.d;
    const peer = this.s.peer;
    const err = (e: unknown) => id && void this.s.send({ type: 'err', id, error: toHnError(e).toObject() });
    try {
      const ref = this.admitBudget(m, bytes);
      if (!id || typeof m.timestamp !== 'number' || typeof m.signature !== 'string' || !('body' in m))
        throw new HnError('bad_request', 'malformed call envelope');
      const signed = {
        capability: m.capability,
        version: m.version,
        request_id: id,
        from: m.from,
        community: m.community,
        timestamp: m.timestamp,
        body: m.body,
        signature: m.signature,
      };
      // the signature check is async (WebCrypto where it passed its self-test): a cancel or link close
      // that arrives meanwhile reaches this call through `verifying`
      const abort = new AbortController();
      const mine = !this.verifying.has(id) && !this.inbound.has(id);
      if (mine) this.verifying.set(id, abort);
      let verified: boolean;
      try {
        verified = m.from === peer && (await verifyObjectAsync(signed, peer));
      } finally {
        if (mine) this.verifying.delete(id);
      }
      if (!verified) {
        d.metrics.inc('hearthnet_signature_failures_total', { reason: 'call' });
        throw new HnError(
          'invalid_signature',
          'call signature does not verify or sender is not the link peer',
        );
      }
      if (m.community !== d.communityId) throw new HnError('unauthorized', 'call from another community');
      const t = nowSec(() => this.s.now());
      if (m.timestamp < t - CALL_SKEW_PAST_SECONDS || m.timestamp > t + CALL_SKEW_FUTURE_SECONDS)
        throw new HnError('expired', 'call timestamp outside the allowed window');
      this.pruneSeen();
      const rk = `${m.from}|${id}`;
      if (this.seenIds.has(rk)) throw new HnError('bad_request', 'replayed request id');
      this.seenIds.set(rk, this.s.now() + REQUEST_REPLAY_WINDOW_SECONDS * 1000);
      const timeoutMs = Number.isInteger(m.timeout_ms) && m.timeout_ms > 0 ? m.timeout_ms : undefined;
      const origin = {
        caller: peer,
        isLocal: false,
        traceId: id,
        signal: abort.signal,
        ...(timeoutMs ? { timeoutMs } : {}),
      };
      if (m.stream === true) return await this.serveStream(id, ref, m.body, origin, abort);
      this.inbound.set(id, { abort, acked: 0 });
      try {
        const output = await d.bus.dispatch(ref, m.body, origin);
        const res = signObject(d.keys, {
          type: 'bus.response',
          request_id: id,
          from: d.keys.nodeId,
          timestamp: nowSec(() => this.s.now()),
          body: { output, meta: { served_by: d.keys.nodeId, trace_id: id } },
        });
        void this.s.send({
          type: 'res',
          id,
          from: res.from,
          timestamp: res.timestamp,
          body: res.body,
          signature: res.signature,
        });
      } finally {
        this.inbound.delete(id);
      }
    } catch (e) {
      err(e);
    }
  }

  private async serveStream(
    id: string,
    ref: string,
    body: unknown,
    origin: Parameters<Bus['dispatch']>[2],
    abort: AbortController,
  ) {
    const slot: Inbound = { abort, acked: 0 };
    this.inbound.set(id, slot);
    let seq = 0;
    try {
      for await (const f of this.s.d.bus.dispatchStream(ref, body, origin)) {
        while (seq - slot.acked >= STREAM_WINDOW_FRAMES) {
          const acked = await new Promise<boolean>((r) => {
            const t = setTimeout(() => r(false), STREAM_ACK_TIMEOUT_SECONDS * 1000);
            slot.ackWaiter = () => {
              clearTimeout(t);
              r(true);
            };
            abort.signal.addEventListener('abort', () => slot.ackWaiter?.(), { once: true });
          });
          if (abort.signal.aborted) throw abort.signal.reason;
          if (!acked) {
            abort.abort(new HnError('timeout', 'stream acks stopped'));
            throw new HnError('timeout', 'no ack within the stream window timeout');
          }
        }
        await this.s.send({ type: 'frame', id, seq: ++seq, event: f.event, data: f.data });
      }
    } catch (e) {
      await this.s.send({ type: 'frame', id, seq: seq + 1, event: 'error', data: toHnError(e).toObject() });
    } finally {
      this.inbound.delete(id);
    }
  }

  private pruneSeen() {
    if (this.seenIds.size < 1000) return;
    const t = this.s.now();
    for (const [k, exp] of this.seenIds) if (exp < t) this.seenIds.delete(k);
    // still over the cap (a flood inside the window): the oldest go; the timestamp window still
    // refuses their replay once they age past CALL_SKEW_PAST_SECONDS
    for (const k of this.seenIds.keys()) {
      if (this.seenIds.size <= SEEN_IDS_MAX) break;
      this.seenIds.delete(k);
    }
  }

  teardown(e: HnError) {
    for (const p of this.unary.values()) p.reject(e);
    this.unary.clear();
    for (const st of this.streams.values()) st.fail(e);
    for (const st of this.inbound.values()) st.abort.abort(e);
    for (const a of this.verifying.values()) a.abort(e);
  }
}
