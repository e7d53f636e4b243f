/**
 * M27 Mixture of experts — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { bool, int, num, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

/** [moe] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  top_k_default: int(C.MOE_TOP_K_DEFAULT, 1, 64),
  scorer: oneOf('auto', ['auto', 'rule_based', 'learned']),
  learned_min_samples: int(C.MOE_LEARNED_SCORER_MIN_FEEDBACK_SAMPLES, 1, 1_000_000),
  retrain_every_hours: int(24, 1, 24 * 365),
  auto_route_threshold: num(0.85, 0, 1),
  requests_per_user_per_hour: int(60, 1, 100_000),
  publish_route_events: bool(false),
  handoff_enabled: bool(true),
  handoff_default_timeout_hours: int(C.MOE_HUMAN_HANDOFF_DEFAULT_TIMEOUT_HOURS, 1, 24 * 30),
  handoff_cooldown_hours: int(C.MOE_HUMAN_HANDOFF_COOLDOWN_HOURS, 0, 24 * 30),
  handoff_max_per_day: int(C.MOE_HUMAN_RATE_LIMIT_PER_DAY, 0, 1000),
  allow_external: bool(false),
  share_feedback: bool(true),
};

export const CAPABILITIES = [
  'experimental.moe.expert.register',
  'experimental.moe.expert.list',
  'experimental.moe.expert.unregister',
  'experimental.moe.route.query',
  'experimental.moe.route.handoff',
  'experimental.moe.feedback.record',
] as const;

export const EVENT_TYPES = [
  'moe.expert.registered',
  'moe.expert.unregistered',
  'moe.route.computed',
  'moe.handoff.initiated',
  'moe.handoff.accepted',
  'moe.handoff.declined',
  'moe.handoff.timed_out',
  'moe.feedback.recorded',
] as const;

export const moe: ModuleDefinition<'moe', typeof config> = {
  name: 'moe',
  seedId: 'M27',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Mixture of experts',
    blurb: 'Route a question to the best models, services or people (M27).',
    icon: '🧭',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('moe', CAPABILITIES),
  }),
};

export default moe;
