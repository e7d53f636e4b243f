/**
 * M27 handoff base (digest §6): what both roles share — listeners, timers, the conversation over
 * link messages (stored only in the two participants' `conversations` store), completion, the
 * 7-day quiet sweep — and the expert side: the offer re-check (consent, pause, window, daily limit,
 * cooldown), the expert's own answer, the decline penalty and the response delivery.
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { availableAt, localTime, normalizeTopics, ownerOf } from './expert_registry.js';
import {
  bad,
  DAY,
  deadlineBad,
  HOUR,
  str,
  view,
  type ConversationRec,
  type HandoffDeps,
  type HandoffListener,
  type HandoffRec,
  type HandoffState,
} from './handoff_types.js';

export class HandoffBase {
  protected readonly timers = new Map<string, () => void>();
  /** expert side: offers received (requester, at) for the cooldown and the daily limit */
  protected received: { requester: NodeID; at: number }[] = [];
  readonly listeners = new Set<HandoffListener>();
  protected stopped = false;

  constructor(protected readonly d: HandoffDeps) {}

  protected cfg() {
    return this.d.svc.d.settings();
  }

  protected emit(type: 'offer' | 'state' | 'message', h: HandoffRec, notify = false) {
    for (const l of this.listeners) l({ type, handoff: view(h), notify });
  }

  /** A failed background step (link send, retry): logged with its code and the handoff id only. */
  protected warn(what: string, id: string) {
    return (e: unknown) =>
      this.d.warn?.(`moe handoff: ${what} failed`, {
        handoff_id: id,
        code: e instanceof HnError ? e.code : 'internal_error',
      });
  }

  /** Tell the counterpart that the handoff closed (best effort: a closed link is logged, not fatal). */
  protected notifyClosed(peer: NodeID | null, id: string, state: 'completed' | 'cancelled' | 'timed_out') {
    if (peer)
      void this.d
        .sendLink(peer, 'moe.closed', { handoff_id: id, state })
        .catch(this.warn('close notice', id));
  }

  protected disarm(id: string) {
    this.timers.get(id)?.();
    this.timers.delete(id);
  }

  async complete(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    const store = (await this.d.db.get<HandoffRec>('handoffs', id)) ? 'handoffs' : 'offers';
    const h = await this.d.db.get<HandoffRec>(store, id);
    if (!h) throw new HnError('not_found', 'no such handoff');
    if (h.state !== 'accepted') throw bad(`handoff is ${h.state}`, 'handoff_id');
    h.state = 'completed';
    await this.d.db.put(store, h);
    this.emit('state', h);
    this.notifyClosed(h.role === 'requester' ? ownerOf(h.expert_id) : h.requester, id, 'completed');
    return view(h);
  }

  async message(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    const text = str(i.text, 4000, 'text');
    const store = (await this.d.db.get<HandoffRec>('handoffs', id)) ? 'handoffs' : 'offers';
    const h = await this.d.db.get<HandoffRec>(store, id);
    if (!h) throw new HnError('not_found', 'no such handoff');
    if (h.state !== 'accepted') throw bad('messages only while accepted', 'handoff_id');
    const peer = h.role === 'requester' ? ownerOf(h.expert_id)! : h.requester;
    await this.d.sendLink(peer, 'moe.message', { handoff_id: id, text });
    const conv = await this.d.db.get<ConversationRec>('conversations', id);
    const at = this.d.now();
    if (conv) {
      conv.messages.push({ from: this.d.self, text, at });
      await this.d.db.put('conversations', conv);
    }
    h.last_activity_at = at;
    await this.d.db.put(store, h);
    return { handoff_id: id, sent_at: at };
  }

  /** Link message from the counterpart: a chat line (accepted handoffs only). */
  async onMessage(peer: NodeID, p: { handoff_id: string; text: string }): Promise<void> {
    const store = (await this.d.db.get<HandoffRec>('handoffs', p.handoff_id)) ? 'handoffs' : 'offers';
    const h = await this.d.db.get<HandoffRec>(store, p.handoff_id);
    if (!h || h.state !== 'accepted') return;
    const counterpart = h.role === 'requester' ? ownerOf(h.expert_id) : h.requester;
    if (counterpart !== peer) return;
    const conv = await this.d.db.get<ConversationRec>('conversations', p.handoff_id);
    if (!conv) return;
    conv.messages.push({ from: peer, text: p.text, at: this.d.now() });
    await this.d.db.put('conversations', conv);
    h.last_activity_at = this.d.now();
    await this.d.db.put(store, h);
    this.emit('message', h, true);
  }

  /** Link message: the counterpart closed the handoff (completed / cancelled / timed_out). */
  async onClosed(peer: NodeID, p: { handoff_id: string; state: HandoffState }): Promise<void> {
    for (const store of ['handoffs', 'offers'] as const) {
      const h = await this.d.db.get<HandoffRec>(store, p.handoff_id);
      if (!h) continue;
      const counterpart = h.role === 'requester' ? ownerOf(h.expert_id) : h.requester;
      if (counterpart !== peer) continue;
      if (p.state === 'completed' && h.state === 'accepted') h.state = 'completed';
      else if (
        (p.state === 'cancelled' || p.state === 'timed_out') &&
        (h.state === 'pending' || h.state === 'accepted')
      )
        h.state = p.state;
      else continue;
      this.disarm(h.handoff_id);
      await this.d.db.put(store, h);
      this.emit('state', h);
    }
  }

  /** Accepted handoffs with 7 days without activity become completed (digest §6). */
  async sweepQuiet(): Promise<void> {
    const now = this.d.now();
    for (const store of ['handoffs', 'offers'] as const)
      for (const h of await this.d.db.getAll<HandoffRec>(store))
        if (h.state === 'accepted' && (h.last_activity_at ?? h.initiated_at) <= now - 7 * DAY) {
          h.state = 'completed';
          h.end_reason = 'quiet';
          await this.d.db.put(store, h);
          this.emit('state', h);
        }
  }

  async conversation(id: string): Promise<ConversationRec | undefined> {
    return this.d.db.get<ConversationRec>('conversations', id);
  }

  // ------------------------------------------------------------ expert side

  async onOffer(i: Record<string, unknown>, caller: NodeID): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    const expertId = str(i.expert_id, 700, 'expert_id');
    const context = str(i.context_summary, 4000, 'context_summary');
    if (i.requester !== caller) throw new HnError('unauthorized', 'requester must be the caller');
    if (typeof i.deadline_at !== 'number' || !Number.isFinite(i.deadline_at))
      throw bad('deadline_at', 'deadline_at');
    const tags = normalizeTopics(i.tags ?? [], 'tags', 0, 16);
    const now = this.d.now();
    if (ownerOf(expertId) !== this.d.self) throw new HnError('expert_unknown', 'not an expert of this node');
    const existing = await this.d.db.get<HandoffRec>('offers', id);
    if (existing && existing.requester === caller && existing.expert_id === expertId)
      return { handoff_id: id, received: true };
    if (existing) throw bad('duplicate handoff id', 'handoff_id');
    const desc = this.d.svc.registry.get(expertId, now);
    if (!desc || desc.kind !== 'human')
      throw new HnError('expert_unknown', undefined, { details: { expert_id: expertId } });
    const limit = Math.min(this.cfg().handoff_max_per_day, desc.max_handoffs_per_day ?? Infinity);
    const cd = this.cfg().handoff_cooldown_hours * HOUR;
    const reason = !desc.consent_to_route
      ? 'consent_revoked'
      : desc.paused
        ? 'paused'
        : !availableAt(desc.availability, now)
          ? 'outside_window'
          : cd > 0 && this.received.some((r) => r.requester === caller && r.at > now - cd)
            ? 'cooldown'
            : this.received.filter((r) => r.at > now - DAY).length >= limit
              ? 'daily_limit'
              : deadlineBad(i.deadline_at, now)
                ? 'deadline'
                : null;
    if (reason === 'deadline') throw bad('deadline_at out of range', 'deadline_at');
    if (reason)
      throw new HnError('expert_unavailable', `expert unavailable: ${reason}`, { details: { reason } });
    const o: HandoffRec = {
      handoff_id: id,
      route_id: '',
      requester: caller,
      expert_id: expertId,
      attempt: 1,
      tried: [expertId],
      initiated_at: now,
      deadline_at: i.deadline_at,
      state: 'pending',
      conversation_id: id,
      tags,
      role: 'expert',
      remaining: [],
      fallback: 'none',
      fallback_candidate: null,
      delivered: true,
      end_reason: null,
      pending_response: null,
      received_at: now,
    };
    this.received.push({ requester: caller, at: now });
    await this.d.db.put('conversations', {
      handoff_id: id,
      context_summary: context,
      messages: [],
    } satisfies ConversationRec);
    await this.d.db.put('offers', o);
    const { minute } = localTime(now, desc.availability.tz);
    const quiet = minute >= 22 * 60 || minute < 6 * 60;
    this.emit('offer', o, !quiet);
    return { handoff_id: id, received: true };
  }

  /** The expert's own answer to an offer (local UI). */
  async respond(i: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = str(i.handoff_id, 64, 'handoff_id');
    if (typeof i.accept !== 'boolean') throw bad('accept', 'accept');
    if (i.note !== undefined) str(i.note, 280, 'note', 0);
    const o = await this.d.db.get<HandoffRec>('offers', id);
    if (!o) throw new HnError('not_found', 'no such offer');
    if (o.state !== 'pending') throw bad(`offer is ${o.state}`, 'handoff_id');
    const now = this.d.now();
    if (o.deadline_at <= now) {
      o.state = 'timed_out';
      await this.d.db.put('offers', o);
      throw new HnError('human_handoff_timed_out', undefined, { details: { handoff: view(o) } });
    }
    await this.finishOffer(o, i.accept, 'declined');
    return view(o);
  }

  protected async finishOffer(
    o: HandoffRec,
    accept: boolean,
    reason: string,
    by: 'expert' | 'system' = 'expert',
  ) {
    o.state = accept ? 'accepted' : 'declined';
    if (accept) o.last_activity_at = this.d.now();
    o.end_reason = accept ? null : reason;
    o.pending_response = { accept, ...(accept ? {} : { reason }) };
    await this.d.db.put('offers', o);
    if (accept)
      await this.d.append('moe.handoff.accepted', { handoff_id: o.handoff_id, expert_id: o.expert_id });
    else
      await this.d.append('moe.handoff.declined', {
        handoff_id: o.handoff_id,
        expert_id: o.expert_id,
        by,
        reason,
      });
    // decline penalty: consecutive declines by this expert pause the registration (an accept resets)
    if (by === 'expert') {
      const st = (await this.d.db.get<{ key: string; n: number }>('state', `declines|${o.expert_id}`)) ?? {
        key: `declines|${o.expert_id}`,
        n: 0,
      };
      st.n = accept ? 0 : st.n + 1;
      await this.d.db.put('state', st);
      if (!accept && st.n >= 3) await this.d.svc.pause(o.expert_id, 'decline_penalty');
    }
    this.emit('state', o);
    await this.sendResponse(o).catch(this.warn('response delivery', o.handoff_id));
  }

  protected async sendResponse(o: HandoffRec) {
    if (!o.pending_response) return;
    await this.d.callPeer(o.requester, { mode: 'response', handoff_id: o.handoff_id, ...o.pending_response });
    const cur = await this.d.db.get<HandoffRec>('offers', o.handoff_id);
    if (cur) {
      cur.pending_response = null;
      await this.d.db.put('offers', cur);
    }
    o.pending_response = null;
  }

  /** Unregistering an expert: its pending offers become declined (by system, consent_revoked). */
  async expertRemoved(expertId: string, reason: string): Promise<void> {
    for (const o of await this.d.db.getAll<HandoffRec>('offers'))
      if (o.expert_id === expertId && o.state === 'pending')
        await this.finishOffer(o, false, reason === 'withdrawn' ? 'consent_revoked' : reason, 'system');
  }

  async inbox(): Promise<Record<string, unknown>[]> {
    return (await this.d.db.getAll<HandoffRec>('offers')).map(view);
  }
  async mine(): Promise<Record<string, unknown>[]> {
    return (await this.d.db.getAll<HandoffRec>('handoffs')).map(view);
  }
}
