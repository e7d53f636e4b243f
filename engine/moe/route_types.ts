/**
 * M27 router records: settings, dependencies, the route candidate and the stored route record, and
 * the candidate's rationale (numbers and tags only) and `invoke` hint.
 */
import type { NodeID, TrustLevel } from '../core/types.js';
import type { EventEnvelope } from '../events/log.js';
import type { StorageAdapter } from '../store/types.js';
import type { Embedder } from './embedder.js';
import type { ExpertDescriptor } from './expert_registry.js';
import type { ExpertKind, ScoreParts } from './scorer.js';

export interface MoeSettings {
  top_k_default: number;
  scorer: 'auto' | 'rule_based' | 'learned';
  learned_min_samples: number;
  retrain_every_hours: number;
  auto_route_threshold: number;
  requests_per_user_per_hour: number;
  publish_route_events: boolean;
  handoff_enabled: boolean;
  handoff_default_timeout_hours: number;
  handoff_cooldown_hours: number;
  handoff_max_per_day: number;
  allow_external: boolean;
  share_feedback: boolean;
}

export interface MoeDeps {
  self: NodeID;
  db: StorageAdapter;
  settings(): MoeSettings;
  now(): number;
  append(type: string, data: Record<string, unknown>): Promise<EventEnvelope>;
  levelOf(n: NodeID): TrustLevel | 'revoked' | null;
  verify(o: Record<string, unknown>, n: NodeID): boolean;
  /** peers with an open link */
  reachable(n: NodeID): boolean;
  embedder?: Embedder;
  /** warnings without content (codes only) */
  warn?(msg: string, data: Record<string, unknown>): void;
}

export interface RouteCandidate {
  expert_id: string;
  kind: ExpertKind;
  score: number;
  expected_latency_minutes: number;
  rationale: string;
  public_rationale?: string;
  name?: string;
  invoke?: { capability: string; params: Record<string, unknown> };
}

export interface RouteRecord {
  route_id: string;
  requester: NodeID;
  routed_at: number;
  tags: string[];
  scorer: 'rule_based' | 'learned';
  candidates: { expert_id: string; kind: ExpertKind; score: number; features: number[] }[];
}

/** Hook the handoff manager installs: route filter (cooldown / daily-limit blocks) and recent load. */
export interface HumanFilter {
  blocked(expertId: string, now: number): string | null;
  recentLoad(expertId: string, now: number): number;
}

export function rationale(p: ScoreParts, tags: readonly string[], d: ExpertDescriptor): string {
  const shared = tags.filter((t) => d.topics.includes(t));
  return [
    shared.length ? `tags ${shared.join(', ')}` : 'no shared tag',
    `similarity ${p.sim.toFixed(2)}`,
    `reliability ${p.rel.toFixed(2)}`,
    `recency ${p.rec.toFixed(2)}`,
    ...(d.score_bias ? [`bias ${d.score_bias}`] : []),
  ].join('; ');
}

/** What the caller runs for a non-human candidate: the capability the record names, else `llm.chat`. */
export function invokeOf(d: ExpertDescriptor): { invoke?: RouteCandidate['invoke'] } {
  if (d.kind === 'human') return {};
  if (d.kind === 'external')
    return { invoke: { capability: 'external', params: { url: d.expert_id.slice(9) } } };
  const c0 = d.capabilities[0];
  if (d.kind === 'service' && c0)
    return {
      invoke: {
        capability: c0.capability,
        params: { ...(c0.selector ? { selector: c0.selector } : {}), host: d.host },
      },
    };
  const model = d.expert_id.slice(6, d.expert_id.lastIndexOf('@'));
  return { invoke: { capability: c0?.capability ?? 'llm.chat', params: { model, host: d.host } } };
}
