/**
 * The event-sync part of a PeerSession (core digest §6.6): heads exchange, batched pulls and live
 * push, in one bounded ordered queue per link. Bounds (issue #18): a peer's `sync.heads` requests
 * are paced by its sync budget (refused with `rate_limited` + `retry_after_ms`); one request makes
 * us send at most SYNC_REPLY_MAX_BYTES of events; and what we already sent this peer on this link
 * is never sent again (a per-link watermark), so repeating a request costs the requester, not us.
 */
import { HnError } from '../core/errors.js';
import { ulid } from '../core/ulid.js';
import type { EventEnvelope, Heads } from '../events/log.js';
import { PEER_SYNC_PER_SECOND, SESSION_QUEUE_MAX, SYNC_REPLY_MAX_BYTES } from './budget.js';
import { checkHeads, sanitizeError, type Incoming } from './control.js';
import type { SessionCore } from './session-types.js';

/** Events one push or batch may carry (core §5.6: ev.push ≤ 500 events/s per link). */
const PUSH_MAX_EVENTS = 500;
const BATCH_MAX_EVENTS = 256;
/** Heads rounds one sync() makes (capped replies continue, refusals wait and retry). */
const SYNC_ROUNDS_MAX = 64;

export class SyncPart {
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private waiters = new Map<string, (m: Incoming) => void>();
  private received = new Map<string, number>();
  /** author → highest seq this link's peer has been sent by us (in answers to its requests) */
  private delivered = new Map<string, number>();

  constructor(private readonly s: SessionCore) {}

  /** Run `fn` after everything queued before it; false (and nothing queued) when the queue is full. */
  private enqueue(fn: () => Promise<unknown>): boolean {
    if (this.queued >= SESSION_QUEUE_MAX) return false;
    this.queued++;
    const run = () => fn().finally(() => this.queued--);
    // a job that fails (a batch the log refuses, a closed link) is logged; the queue goes on
    this.queue = this.queue.then(run, run).catch((e: unknown) => {
      if (this.s.state === 'open')
        this.s.d.log?.warn('event sync job failed', { peer: this.s.peer, error: e as Error });
      else this.s.d.log?.debug('event sync job ended with the link', { peer: this.s.peer });
    });
    return true;
  }

  private dropped(reason: string) {
    this.s.d.metrics.inc('hearthnet_rate_limited_total', { capability: '_sync', reason });
  }

  /** Events (ev.push, sync.events) cost bytes of the peer's budget before any signature is checked. */
  private affordable(bytes: number): boolean {
    if (this.s.budget.bytes.take(bytes) === 0) return true;
    this.dropped('bytes');
    return false;
  }

  onPush(m: Incoming, bytes: number) {
    if (!Array.isArray(m.events) || m.events.length > PUSH_MAX_EVENTS) return;
    if (!this.affordable(bytes)) return; // anti-entropy recovers what a dropped push carried
    const ok = this.enqueue(async () => {
      await this.s.d.events.receive(m.events, this.s.peer);
    });
    if (!ok) this.dropped('queue');
  }

  onHeads(m: Incoming) {
    if (typeof m.id !== 'string' || m.id.length > 64) return;
    const refuse = (wait: number) => {
      this.dropped('sync');
      void this.s.send({
        type: 'sync.heads.res',
        id: m.id,
        error: { error: 'rate_limited', message: 'too many sync requests', retry_after_ms: wait },
      });
    };
    const wait = this.s.budget.sync.take();
    if (wait > 0) return refuse(wait);
    if (!this.enqueue(() => this.answerHeads(m))) refuse(1000);
  }

  onEvents(m: Incoming, bytes: number) {
    if (!this.affordable(bytes)) return;
    if (!this.enqueue(() => this.receiveBatch(m))) this.dropped('queue');
  }

  onHeadsRes(m: Incoming) {
    // resolve only after every batch sent before it has been stored
    if (!this.enqueue(async () => this.waiters.get(`heads:${m.id}`)?.(m)))
      this.waiters.get(`heads:${m.id}`)?.({
        type: 'sync.heads.res',
        id: m.id,
        error: { error: 'rate_limited' },
      });
  }

  onEventsRes(m: Incoming) {
    this.waiters.get(`events:${m.id}:${m.batch}`)?.(m);
  }

  /** Their heads raised to what we already sent them on this link. */
  private effectiveHeads(theirs: Heads): Heads {
    if (!this.delivered.size) return theirs;
    const authors: Heads['authors'] = { ...theirs.authors };
    for (const [a, seq] of this.delivered) {
      const have = authors[a]?.seq;
      if (typeof have !== 'number' || have < seq) authors[a] = { seq, hash: null };
    }
    return { ...theirs, authors };
  }

  private noteDelivered(events: EventEnvelope[]) {
    for (const ev of events) {
      const prev = this.delivered.get(ev.author) ?? 0;
      if (ev.seq > prev) this.delivered.set(ev.author, ev.seq);
    }
  }

  private async answerHeads(m: Incoming) {
    const { d } = this.s;
    let batch = 0;
    let bytes = 0;
    try {
      for await (const events of d.events.missingFor(this.effectiveHeads(checkHeads(m.heads)))) {
        this.noteDelivered(events);
        const msg = {
          type: 'sync.events' as const,
          id: m.id as string,
          batch: ++batch,
          community_id: d.communityId,
          events,
        };
        bytes += JSON.stringify(events).length;
        await this.s.send(msg); // paced by the link: one batch at a time
        if (bytes >= SYNC_REPLY_MAX_BYTES) break; // the rest waits for the peer's next round
      }
    } catch {
      /* malformed heads: answer with ours only */
    }
    await this.s.send({
      type: 'sync.heads.res',
      id: m.id,
      heads: await d.events.heads(),
      ...(bytes >= SYNC_REPLY_MAX_BYTES ? { more: true } : {}),
    });
  }

  private async receiveBatch(m: Incoming) {
    const { d } = this.s;
    if (m.community_id !== d.communityId || !Array.isArray(m.events)) return;
    const r = await d.events.receive(m.events.slice(0, BATCH_MAX_EVENTS), this.s.peer);
    if (this.received.has(m.id)) this.received.set(m.id, this.received.get(m.id)! + r.accepted);
    await this.s.send({
      type: 'sync.events.res',
      id: m.id,
      batch: m.batch,
      accepted: r.accepted,
      duplicates: r.duplicates,
      rejected: r.rejected.slice(0, BATCH_MAX_EVENTS),
    });
  }

  /** One heads request: resolves with the peer's `sync.heads.res` (its batches stored first). */
  private async requestHeads(): Promise<{ id: string; res: Incoming }> {
    const s = this.s;
    const id = ulid();
    this.received.set(id, 0);
    let unsub = () => {};
    const res = await new Promise<Incoming>((resolve, reject) => {
      const t = setTimeout(() => reject(new HnError('timeout', 'sync heads not answered')), 60_000);
      this.waiters.set(`heads:${id}`, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      unsub = s.addCloseListener(() => reject(new HnError('partition', 'link closed during sync')));
      s.d.events
        .heads()
        .then((heads) => s.send({ type: 'sync.heads', id, heads }))
        .catch((e: unknown) => {
          clearTimeout(t);
          reject(e);
        });
    }).finally(() => {
      this.waiters.delete(`heads:${id}`);
      unsub();
    });
    return { id, res };
  }

  /** Exchange heads; each side sends exactly what the other lacks. Resolves with the counts. */
  async sync(): Promise<{ sent: number; received: number }> {
    const s = this.s;
    s.assertOpen();
    let received = 0;
    let theirs: Incoming | null = null;
    // a paced peer answers rate_limited (wait and ask again) or `more` (its reply was capped)
    for (let round = 0; round < SYNC_ROUNDS_MAX; round++) {
      const { id, res } = await this.requestHeads();
      received += this.received.get(id) ?? 0;
      this.received.delete(id);
      if (res.error !== undefined) {
        const e = HnError.fromObject(sanitizeError(res.error));
        if (e.code !== 'rate_limited' || round === SYNC_ROUNDS_MAX - 1) throw e;
        await new Promise((r) => setTimeout(r, Math.min(5000, e.retry_after_ms ?? 1000)));
        continue;
      }
      theirs = res;
      if (res.more !== true) break;
      await new Promise((r) => setTimeout(r, 1000 / PEER_SYNC_PER_SECOND));
    }
    if (!theirs) throw new HnError('rate_limited', 'peer kept refusing sync', { retry_after_ms: 1000 });
    const id = ulid();
    let sent = 0;
    let batch = 0;
    for await (const events of s.d.events.missingFor(checkHeads(theirs.heads))) {
      const b = ++batch;
      const res = await new Promise<Incoming>((resolve, reject) => {
        const t = setTimeout(() => reject(new HnError('timeout', 'sync batch not acknowledged')), 60_000);
        this.waiters.set(`events:${id}:${b}`, (m) => {
          clearTimeout(t);
          resolve(m);
        });
        void s.send({ type: 'sync.events', id, batch: b, community_id: s.d.communityId, events });
      }).finally(() => this.waiters.delete(`events:${id}:${b}`));
      sent += Number(res.accepted) || 0;
    }
    return { sent, received };
  }
}
