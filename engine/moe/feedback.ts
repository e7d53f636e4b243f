/**
 * M27 feedback (digest §3 feedback.record, §5 learned scorer): labels, poisoning caps, per-expert
 * reliability aggregates and the training trigger. Samples come from this node's records and, when
 * shared, from peers' `moe.feedback.recorded` events; the caps drop feedback from below member trust,
 * an expert about itself, more than 20 per recorder per day and more than 3 per (recorder, expert) per day.
 */
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import { ownerOf } from './expert_registry.js';
import type { ExpertKind, TrainingSample } from './scorer.js';

export interface Feedback {
  feedback_id: string;
  route_id?: string;
  handoff_id?: string;
  expert_id: string;
  kind: ExpertKind;
  tags: string[];
  helpful: boolean | null;
  user_rating: number | null;
  completion_time_seconds: number | null;
  handed_off_again: boolean;
  features: number[];
  feature_set: 'moe-f1';
  recorded_by: NodeID;
  recorded_at: number;
}

const DAY = 86_400_000;

/** 1 if helpful or rating ≥ 4; 0 if unhelpful, rating ≤ 2 or handed off again; else unlabeled. */
export function labelOf(f: Pick<Feedback, 'helpful' | 'user_rating' | 'handed_off_again'>): 0 | 1 | null {
  if (f.helpful === true || (f.user_rating !== null && f.user_rating >= 4)) return 1;
  if (f.helpful === false || (f.user_rating !== null && f.user_rating <= 2) || f.handed_off_again) return 0;
  return null;
}

const LEVELS: Record<string, number> = { member: 1, trusted: 2, anchor: 3 };

/** The accepted feedback set (one record per (ref, expert, recorder); a newer one replaces it). */
export class FeedbackSet {
  /** key `${recorder}|${ref}|${expert}` → feedback */
  readonly records = new Map<string, Feedback>();

  constructor(private readonly levelOf: (n: NodeID) => TrustLevel | 'revoked' | null) {}

  private key(f: Feedback) {
    return `${f.recorded_by}|${f.route_id ?? f.handoff_id}|${f.expert_id}`;
  }

  /** Why a record is refused by the caps, or null when it counts. */
  capReason(f: Feedback): string | null {
    const lvl = this.levelOf(f.recorded_by);
    if (!lvl || lvl === 'revoked' || !(LEVELS[lvl]! >= 1)) return 'below_member';
    const owner = ownerOf(f.expert_id);
    if (owner === f.recorded_by) return 'self_feedback';
    const k = this.key(f);
    let perRecorder = 0;
    let perPair = 0;
    for (const [key, r] of this.records) {
      if (key === k || r.recorded_by !== f.recorded_by) continue;
      if (Math.abs(r.recorded_at - f.recorded_at) >= DAY) continue;
      perRecorder++;
      if (r.expert_id === f.expert_id) perPair++;
    }
    if (perRecorder >= 20) return 'recorder_daily_cap';
    if (perPair >= 3) return 'pair_daily_cap';
    return null;
  }

  /** Add (or replace within 7 days); returns whether it counted. */
  add(f: Feedback): boolean {
    if (this.capReason(f) !== null) return false;
    const k = this.key(f);
    const cur = this.records.get(k);
    if (cur && f.recorded_at < cur.recorded_at) return false;
    this.cache = null;
    if (cur && f.recorded_at - cur.recorded_at > 7 * DAY) {
      // a new record after 7 days is a separate sample
      this.records.set(`${k}|${f.feedback_id}`, f);
      return true;
    }
    this.records.set(k, f);
    return true;
  }

  labeled(): TrainingSample[] {
    const out: TrainingSample[] = [];
    for (const f of this.records.values()) {
      const label = labelOf(f);
      if (label !== null && f.features.length === 10)
        out.push({ feedback_id: f.feedback_id, features: f.features, label });
    }
    return out;
  }

  /** helpful / rated counts and last activity per expert. */
  stats(expertId: string): { helpful: number; rated: number; last: number } {
    if (!this.cache) {
      const m = new Map<string, { helpful: number; rated: number; last: number }>();
      for (const f of this.records.values()) {
        const s = m.get(f.expert_id) ?? { helpful: 0, rated: 0, last: 0 };
        const l = labelOf(f);
        if (l !== null) {
          s.rated++;
          if (l === 1) s.helpful++;
        }
        s.last = Math.max(s.last, f.recorded_at);
        m.set(f.expert_id, s);
      }
      this.cache = m;
    }
    return this.cache.get(expertId) ?? { helpful: 0, rated: 0, last: 0 };
  }
  private cache: Map<string, { helpful: number; rated: number; last: number }> | null = null;
}

/** A peer's feedback record is used only when every field the scorer reads has the right shape. */
export function wellFormedFeedback(f: Feedback): boolean {
  return (
    typeof f.feedback_id === 'string' &&
    typeof f.expert_id === 'string' &&
    typeof f.recorded_at === 'number' &&
    Number.isFinite(f.recorded_at) &&
    (f.helpful === null || typeof f.helpful === 'boolean') &&
    (f.user_rating === null ||
      (Number.isInteger(f.user_rating) && f.user_rating >= 1 && f.user_rating <= 5)) &&
    typeof f.handed_off_again === 'boolean' &&
    (f.route_id === undefined || typeof f.route_id === 'string') &&
    (f.handoff_id === undefined || typeof f.handoff_id === 'string') &&
    Array.isArray(f.features) &&
    f.features.length === 10 &&
    f.features.every((x) => typeof x === 'number' && Number.isFinite(x))
  );
}

/** feedback.record input checks (digest §3): one of route_id / handoff_id, bounds, at least one signal. */
export function parseFeedbackInput(input: Record<string, unknown>): {
  hasRoute: boolean;
  hasHandoff: boolean;
  helpful: boolean | null;
  rating: number | null;
  ct: number | null;
  again: boolean;
  expertId: string;
} {
  const bad = (m: string, field?: string) => new HnError('bad_request', m, field ? { field } : {});
  const hasRoute = typeof input.route_id === 'string';
  const hasHandoff = typeof input.handoff_id === 'string';
  if (hasRoute === hasHandoff) throw bad('exactly one of route_id / handoff_id', 'route_id');
  if (typeof input.expert_id !== 'string' || input.expert_id.length > 700)
    throw bad('expert_id', 'expert_id');
  const helpful = input.helpful ?? null;
  if (helpful !== null && typeof helpful !== 'boolean') throw bad('helpful', 'helpful');
  const rating = input.user_rating ?? null;
  if (rating !== null && (!Number.isInteger(rating) || (rating as number) < 1 || (rating as number) > 5))
    throw bad('user_rating 1..5', 'user_rating');
  const ct = input.completion_time_seconds ?? null;
  if (ct !== null && (typeof ct !== 'number' || ct < 0 || ct > 604800 || !Number.isFinite(ct)))
    throw bad('completion_time_seconds', 'completion_time_seconds');
  const again = input.handed_off_again ?? false;
  if (typeof again !== 'boolean') throw bad('handed_off_again', 'handed_off_again');
  if (helpful === null && rating === null && ct === null && again === false) throw bad('at least one signal');
  return {
    hasRoute,
    hasHandoff,
    helpful: helpful as boolean | null,
    rating: rating as number | null,
    ct: ct as number | null,
    again,
    expertId: input.expert_id,
  };
}
