/**
 * M27 human handoff (digest §6): the state machine pending → accepted → completed, with decline →
 * next candidate (same handoff_id, attempt ≤ 3), deadline → timed_out, cancel → cancelled. Deadlines
 * are persisted and re-checked on start with the injectable clock, so a deadline that passed while
 * the app was closed becomes timed_out on reopen. This file holds the requester side and the
 * capability entry; the shared parts and the expert side are in handoff_base.ts.
 */
import { HnError } from '../core/errors.js';
import type { CallContext } from '../bus/types.js';
import type { NodeID } from '../core/types.js';
import { availableAt, ownerOf } from './expert_registry.js';
import { HandoffBase } from './handoff_base.js';
import {
  bad,
  DAY,
  HOUR,
  isObj,
  str,
  view,
  type ConversationRec,
  type FallbackCandidate,
  type HandoffRec,
} from './handoff_types.js';
import type { RouteRecord } from './router.js';

export * from './handoff_types.js';

const MAX_ATTEMPTS = 3;
const MAX_PENDING = 20;
const ROUTE_MAX_AGE = 30 * 60_000;

export class HandoffManager extends HandoffBase {
  /** requester side: offers sent (expert_id, at) for cooldown and load */
  private sent: { expert_id: string; at: number }[] = [];
  private blocks = new Map<string, number>();

  async start(): Promise<void> {
    const now = this.d.now();
    this.sent = (
      (await this.d.db.getAll<{ id: string; expert_id: string; at: number }>('sent')) ?? []
    ).filter((s) => s.at > now - 7 * DAY);
    this.received = (await this.d.db.getAll<HandoffRec>('offers')).map((o) => ({
      requester: o.requester,
      at: o.received_at ?? o.initiated_at,
    }));
    const blocks = await this.d.db.get<{ key: string; blocks: [string, number][] }>('state', 'blocks');
    this.blocks = new Map(blocks?.blocks ?? []);
    this.d.svc.humans = {
      blocked: (id, t) => this.blockedReason(id, t),
      recentLoad: (id, t) => this.sent.filter((s) => s.expert_id === id && s.at > t - 7 * DAY).length,
    };
    // timers survive closing the app: every pending deadline is re-armed (or fires now)
    for (const h of await this.d.db.getAll<HandoffRec>('handoffs'))
      if (h.state === 'pending') {
        if (h.deadline_at <= now) await this.timeout(h.handoff_id);
        else this.arm(h);
      }
    for (const o of await this.d.db.getAll<HandoffRec>('offers'))
      if (o.state === 'pending' && o.deadline_at <= now) {
        o.state = 'timed_out';
        o.end_reason = 'deadline';
        await this.d.db.put('offers', o);
      }
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.timers.values()) c();
    this.timers.clear();
  }

  blockedReason(expertId: string, now: number): 'cooldown' | 'daily_limit' | null {
    const cd = this.cfg().handoff_cooldown_hours * HOUR;
    if (cd > 0 && this.sent.some((s) => s.expert_id === expertId && s.at > now - cd)) return 'cooldown';
    const until = this.blocks.get(expertId);
    if (until !== undefined && until > now) return 'daily_limit';
    return null;
  }

  private async logSent(expertId: string, at: number) {
    const rec = { id: `${at}|${expertId}`, expert_id: expertId, at };
    this.sent.push(rec);
    await this.d.db.put('sent', rec);
  }

  private arm(h: HandoffRec) {
    this.timers.get(h.handoff_id)?.();
    const ms = Math.max(0, h.deadline_at - this.d.now());
    const cancel = this.d.setTimeout(
      () => void this.timeout(h.handoff_id).catch(this.warn('deadline', h.handoff_id)),
      ms,
    );
    this.timers.set(h.handoff_id, cancel);
  }

  private fallbackOf(route: RouteRecord | undefined): FallbackCandidate | null {
    const c = route?.candidates.find((x) => x.kind !== 'human');
    if (c) return { expert_id: c.expert_id, kind: c.kind, score: c.score };
    return this.d.svc.bestNonHuman(route?.tags ?? []);
  }

  // ------------------------------------------------------------ capability entry

  async handle(input: unknown, ctx: CallContext): Promise<unknown> {
    if (!isObj(input) || typeof input.mode !== 'string') throw bad('mode is required', 'mode');
    const local = ctx.isLocal && ctx.caller === this.d.self;
    const mode = input.mode;
    if (['initiate', 'status', 'cancel', 'respond', 'complete', 'message'].includes(mode)) {
      if (!local) throw new HnError('unauthorized', 'local mode');
      if (mode === 'initiate') return this.initiate(input);
      if (mode === 'status') return this.status(input);
      if (mode === 'cancel') return this.cancel(input);
      if (mode === 'respond') return this.respond(input);
      if (mode === 'complete') return this.complete(input);
      return this.message(input);
    }
    if (mode === 'offer' || mode === 'response') {
      if (local) throw new HnError('unauthorized', 'node-to-node mode');
      return mode === 'offer' ? this.onOffer(input, ctx.caller) : this.onResponse(input, ctx.caller);
    }
    throw bad('unknown mode', 'mode');
  }

  // ------------------------------------------------------------ requester side

  async initiate(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.cfg().handoff_enabled) throw new HnError('unauthorized', 'handoffs are switched off here');
    const expertId = str(i.expert_id, 700, 'expert_id');
    const routeId = str(i.route_id, 64, 'route_id');
    const context = str(i.context_summary, 4000, 'context_summary');
    const dm = i.deadline_minutes ?? this.cfg().handoff_default_timeout_hours * 60;
    if (!Number.isInteger(dm) || (dm as number) < 5 || (dm as number) > 1440 * 30)
      throw bad('deadline_minutes', 'deadline_minutes');
    if (i.deadline_minutes !== undefined && ((dm as number) < 5 || (dm as number) > 1440))
      throw bad('deadline_minutes 5..1440', 'deadline_minutes');
    const fallback = i.fallback ?? 'next_candidate';
    if (fallback !== 'next_candidate' && fallback !== 'none') throw bad('fallback', 'fallback');
    if (
      i.permitted_replies !== undefined &&
      (!Array.isArray(i.permitted_replies) || i.permitted_replies.some((x) => x !== 'text'))
    )
      throw bad('permitted_replies', 'permitted_replies');
    const now = this.d.now();
    const desc = this.d.svc.registry.get(expertId, now);
    if (!desc) throw new HnError('expert_unknown', undefined, { details: { expert_id: expertId } });
    if (desc.kind !== 'human') throw bad('handoff targets a human expert', 'expert_id');
    const route = await this.d.svc.route(routeId);
    if (!route || route.requester !== this.d.self) throw bad('unknown route', 'route_id');
    if (now - route.routed_at > ROUTE_MAX_AGE) throw bad('stale route (older than 30 minutes)', 'route_id');
    if (!route.candidates.some((c) => c.expert_id === expertId))
      throw bad('expert is not a candidate of that route', 'expert_id');
    const unavailable = this.localUnavailable(expertId, now);
    if (unavailable)
      throw new HnError('expert_unavailable', `expert unavailable: ${unavailable}`, {
        details: { reason: unavailable },
      });
    const pending = (await this.d.db.getAll<HandoffRec>('handoffs')).filter(
      (h) => h.state === 'pending',
    ).length;
    if (pending >= MAX_PENDING)
      throw new HnError('rate_limited', 'too many pending handoffs', { retry_after_ms: 60_000 });
    const id = this.d.svc.newId();
    const h: HandoffRec = {
      handoff_id: id,
      route_id: routeId,
      requester: this.d.self,
      expert_id: expertId,
      attempt: 1,
      tried: [expertId],
      initiated_at: now,
      deadline_at: now + (dm as number) * 60_000,
      state: 'pending',
      conversation_id: id,
      tags: route.tags,
      role: 'requester',
      remaining:
        fallback === 'none'
          ? []
          : route.candidates
              .filter((c) => c.kind === 'human' && c.expert_id !== expertId)
              .map((c) => c.expert_id),
      fallback: fallback as 'next_candidate' | 'none',
      fallback_candidate: null,
      delivered: false,
      end_reason: null,
    };
    await this.d.db.put('conversations', {
      handoff_id: id,
      context_summary: context,
      messages: [],
    } satisfies ConversationRec);
    await this.d.db.put('handoffs', h);
    await this.logSent(expertId, now);
    await this.announce(h);
    this.arm(h);
    const refused = await this.deliver(h);
    const cur = (await this.d.db.get<HandoffRec>('handoffs', id))!;
    if (refused && cur.state === 'declined' && cur.attempt === 1)
      throw new HnError('expert_unavailable', `expert unavailable: ${refused}`, {
        details: { reason: refused, handoff: view(cur) },
      });
    return view(cur);
  }

  private localUnavailable(expertId: string, now: number): string | null {
    const desc = this.d.svc.registry.get(expertId, now);
    if (!desc) return 'consent_revoked';
    if (desc.paused) return 'paused';
    if (!desc.consent_to_route) return 'consent_revoked';
    if (!availableAt(desc.availability, now)) return 'outside_window';
    return this.blockedReason(expertId, now);
  }

  private async announce(h: HandoffRec) {
    await this.d.append('moe.handoff.initiated', {
      handoff_id: h.handoff_id,
      route_id: h.route_id,
      expert_id: h.expert_id,
      requester: h.requester,
      attempt: h.attempt,
      deadline_at: h.deadline_at,
    });
  }

  /** Deliver the current offer; returns the refusal reason when the expert node refused it. */
  async deliver(h: HandoffRec): Promise<string | null> {
    const host = ownerOf(h.expert_id);
    const conv = await this.d.db.get<ConversationRec>('conversations', h.handoff_id);
    if (!host || !conv) return null;
    try {
      await this.d.callPeer(host, {
        mode: 'offer',
        handoff_id: h.handoff_id,
        requester: h.requester,
        expert_id: h.expert_id,
        context_summary: conv.context_summary,
        tags: h.tags,
        deadline_at: h.deadline_at,
        permitted_replies: ['text'],
      });
      const cur = await this.d.db.get<HandoffRec>('handoffs', h.handoff_id);
      if (cur && cur.state === 'pending' && cur.expert_id === h.expert_id && !cur.delivered) {
        cur.delivered = true;
        await this.d.db.put('handoffs', cur);
      }
      return null;
    } catch (e) {
      const code = e instanceof HnError ? e.code : 'internal_error';
      if (code === 'expert_unavailable' || code === 'expert_unknown' || code === 'unauthorized') {
        // the wire may drop `details`: the reason is also the message's last word
        const fromMsg = /expert unavailable: ([a-z_]+)$/.exec((e as HnError).message)?.[1];
        const reason = String(
          (e as HnError).details?.reason ?? fromMsg ?? (code === 'expert_unknown' ? 'consent_revoked' : code),
        );
        if (reason === 'daily_limit') {
          this.blocks.set(h.expert_id, this.d.now() + DAY);
          await this.d.db.put('state', { key: 'blocks', blocks: [...this.blocks] });
        }
        await this.declined(h.handoff_id, h.expert_id, 'system', reason);
        return reason;
      }
      return null; // unreachable: retried when the link comes up (retryUndelivered)
    }
  }

  /** Re-send offers that could not be delivered (called when a peer link opens and periodically). */
  async retryUndelivered(): Promise<void> {
    if (this.stopped) return;
    for (const h of await this.d.db.getAll<HandoffRec>('handoffs'))
      if (h.state === 'pending' && !h.delivered && h.deadline_at > this.d.now()) await this.deliver(h);
    for (const o of await this.d.db.getAll<HandoffRec>('offers'))
      if (o.pending_response) await this.sendResponse(o).catch(this.warn('response delivery', o.handoff_id));
  }

  /** The current attempt was declined: next human candidate under the same handoff, or the end. */
  private async declined(
    id: string,
    expertId: string,
    by: 'requester' | 'system' | 'expert',
    reason: string,
  ) {
    const h = await this.d.db.get<HandoffRec>('handoffs', id);
    if (!h || h.state !== 'pending' || h.expert_id !== expertId) return;
    if (by !== 'expert')
      await this.d.append('moe.handoff.declined', { handoff_id: id, expert_id: expertId, by, reason });
    const now = this.d.now();
    let next: string | undefined;
    while (h.attempt < MAX_ATTEMPTS && h.remaining.length && now < h.deadline_at) {
      const cand = h.remaining.shift()!;
      if (!this.localUnavailable(cand, now)) {
        next = cand;
        break;
      }
    }
    if (next) {
      h.attempt += 1;
      h.expert_id = next;
      h.tried.push(next);
      h.delivered = false;
      await this.d.db.put('handoffs', h);
      await this.logSent(next, now);
      await this.announce(h);
      this.emit('state', h);
      await this.deliver(h);
      return;
    }
    h.state = 'declined';
    h.end_reason = reason;
    h.fallback_candidate = this.fallbackOf(await this.d.svc.route(h.route_id));
    this.disarm(id);
    await this.d.db.put('handoffs', h);
    this.emit('state', h);
  }

  async timeout(id: string): Promise<void> {
    const h = await this.d.db.get<HandoffRec>('handoffs', id);
    if (!h || h.state !== 'pending') return;
    if (h.deadline_at > this.d.now()) return this.arm(h);
    h.state = 'timed_out';
    h.end_reason = 'deadline';
    h.fallback_candidate = this.fallbackOf(await this.d.svc.route(h.route_id));
    this.disarm(id);
    await this.d.db.put('handoffs', h);
    await this.d.append('moe.handoff.timed_out', {
      handoff_id: id,
      expert_id: h.expert_id,
      deadline_at: h.deadline_at,
    });
    this.emit('state', h);
    this.notifyClosed(ownerOf(h.expert_id), id, 'timed_out');
  }

  async onResponse(i: Record<string, unknown>, caller: NodeID): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    if (typeof i.accept !== 'boolean') throw bad('accept', 'accept');
    const h = await this.d.db.get<HandoffRec>('handoffs', id);
    if (!h) throw new HnError('not_found', 'no such handoff');
    if (ownerOf(h.expert_id) !== caller) throw new HnError('unauthorized', 'not the handoff counterpart');
    if (h.state !== 'pending') return { handoff_id: id, state: h.state };
    if (i.accept) {
      if (h.deadline_at <= this.d.now()) {
        await this.timeout(id);
        return { handoff_id: id, state: 'timed_out' };
      }
      h.state = 'accepted';
      h.last_activity_at = this.d.now();
      this.disarm(id);
      await this.d.db.put('handoffs', h);
      this.emit('state', h);
    } else {
      const reason = typeof i.reason === 'string' && i.reason.length <= 32 ? i.reason : 'declined';
      await this.declined(id, h.expert_id, 'expert', reason);
    }
    const cur = (await this.d.db.get<HandoffRec>('handoffs', id))!;
    return { handoff_id: id, state: cur.state };
  }

  async status(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    const h =
      (await this.d.db.get<HandoffRec>('handoffs', id)) ?? (await this.d.db.get<HandoffRec>('offers', id));
    if (!h) throw new HnError('not_found', 'no such handoff');
    if (h.role === 'requester' && (h.state === 'declined' || h.state === 'timed_out')) {
      const code = h.state === 'declined' ? 'human_handoff_declined' : 'human_handoff_timed_out';
      throw new HnError(code, undefined, {
        details: {
          handoff: view(h),
          ...(h.fallback_candidate ? { fallback_candidate: h.fallback_candidate } : {}),
        },
      });
    }
    return view(h);
  }

  async cancel(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    const h = await this.d.db.get<HandoffRec>('handoffs', id);
    if (!h) throw new HnError('not_found', 'no such handoff');
    if (h.state !== 'pending' && h.state !== 'accepted') throw bad(`handoff is ${h.state}`, 'handoff_id');
    const wasPending = h.state === 'pending';
    h.state = 'cancelled';
    h.end_reason = 'cancelled';
    this.disarm(id);
    await this.d.db.put('handoffs', h);
    // audit: the requester withdrew the offer (by requester); an accepted conversation just ends
    if (wasPending)
      await this.d.append('moe.handoff.declined', {
        handoff_id: id,
        expert_id: h.expert_id,
        by: 'requester',
        reason: 'cancelled',
      });
    this.emit('state', h);
    this.notifyClosed(ownerOf(h.expert_id), id, 'cancelled');
    return view(h);
  }
}
