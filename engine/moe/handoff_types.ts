/**
 * M27 human handoff records and helpers (digest §4, §6): the Handoff record both nodes keep, the
 * private conversation record, the dependencies the handoff manager needs, and the public view.
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { StorageAdapter } from '../store/types.js';
import type { MoeService } from './router.js';
import type { ExpertKind } from './scorer.js';

export type HandoffState = 'pending' | 'accepted' | 'declined' | 'completed' | 'timed_out' | 'cancelled';

export interface FallbackCandidate {
  expert_id: string;
  kind: ExpertKind;
  score: number;
}

export interface HandoffRec {
  handoff_id: string;
  route_id: string;
  requester: NodeID;
  expert_id: string;
  attempt: number;
  tried: string[];
  initiated_at: number;
  deadline_at: number;
  state: HandoffState;
  conversation_id: string;
  tags: string[];
  role: 'requester' | 'expert';
  /** requester: remaining human candidates in rank order */
  remaining: string[];
  fallback: 'next_candidate' | 'none';
  fallback_candidate: FallbackCandidate | null;
  delivered: boolean;
  end_reason: string | null;
  /** expert: a response still to be delivered to the requester */
  pending_response?: { accept: boolean; reason?: string } | null;
  received_at?: number;
  /** accepted handoffs: last accept/message time (7 days quiet → completed) */
  last_activity_at?: number;
}

export interface ConversationRec {
  handoff_id: string;
  context_summary: string;
  messages: { from: NodeID; text: string; at: number }[];
}

export interface HandoffDeps {
  self: NodeID;
  db: StorageAdapter;
  svc: MoeService;
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  /** node-to-node mode of route.handoff on a peer */
  callPeer(peer: NodeID, input: Record<string, unknown>): Promise<unknown>;
  sendLink(peer: NodeID, type: string, payload: Record<string, unknown>): Promise<void>;
  /** warnings without content (codes and ids only) */
  warn?(msg: string, data: Record<string, unknown>): void;
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
export const bad = (m: string, field?: string) => new HnError('bad_request', m, field ? { field } : {});
export const str = (x: unknown, max: number, field: string, min = 1): string => {
  if (typeof x !== 'string' || x.trim().length < min || x.length > max)
    throw bad(`${field}: ${min}..${max} characters`, field);
  return x;
};

/** What the Ask/Experts views listen to: an offer arrived (notify unless quiet hours), state changed. */
export type HandoffListener = (e: {
  type: 'offer' | 'state' | 'message';
  handoff: Record<string, unknown>;
  notify: boolean;
}) => void;

export function deadlineBad(deadline: number, now: number): boolean {
  return deadline <= now || deadline > now + 31 * DAY;
}

/** The public Handoff record (no context text; that lives in the conversation store). */
export function view(h: HandoffRec): Record<string, unknown> {
  return {
    handoff_id: h.handoff_id,
    route_id: h.route_id,
    requester: h.requester,
    expert_id: h.expert_id,
    attempt: h.attempt,
    tried: [...h.tried],
    initiated_at: h.initiated_at,
    deadline_at: h.deadline_at,
    state: h.state,
    conversation_id: h.conversation_id,
    role: h.role,
    tags: [...h.tags],
    ...(h.end_reason ? { end_reason: h.end_reason } : {}),
    ...(h.fallback_candidate ? { fallback_candidate: h.fallback_candidate } : {}),
  };
}
