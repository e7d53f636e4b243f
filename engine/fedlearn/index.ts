/**
 * M28 Federated learning — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { bool, fieldError, int, num, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

/** [fedlearn] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  max_lora_rank: int(C.FEDLEARN_MAX_LORA_RANK, 1, C.FEDLEARN_MAX_LORA_RANK),
  max_lora_target_modules: int(C.FEDLEARN_MAX_LORA_TARGET_MODULES, 1, C.FEDLEARN_MAX_LORA_TARGET_MODULES),
  max_train_steps: int(C.FEDLEARN_MAX_TRAIN_STEPS, 1, C.FEDLEARN_MAX_TRAIN_STEPS),
  min_participants: int(
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MAX_PARTICIPANTS,
  ),
  max_participants: int(
    C.FEDLEARN_MAX_PARTICIPANTS,
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MAX_PARTICIPANTS,
  ),
  dp_noise_scale: num(C.FEDLEARN_DP_NOISE_SCALE_DEFAULT, 0, 100),
  clip_norm: num(C.FEDLEARN_CLIP_NORM_DEFAULT, 0, 1e6),
  submission_max_bytes: int(C.FEDLEARN_SUBMISSION_MAX_BYTES, 1, C.FEDLEARN_SUBMISSION_MAX_BYTES),
  require_secure_aggregation: bool(false),
  auto_apply_aggregated: bool(false),
  training_vram_budget_mb: int(8192, 0, 1 << 20),
  training_disk_budget_mb: int(4096, 0, 1 << 24),
  max_round_minutes: int(120, 1, 7 * 24 * 60),
  takeover_grace_seconds: int(600, 1, 86400),
  announce_min_level: oneOf('anchor', ['member', 'trusted', 'anchor']),
  submission_retention_hours: int(24, 1, 24 * 365),
};

export const CAPABILITIES = [
  'experimental.fedlearn.round.announce',
  'experimental.fedlearn.round.list',
  'experimental.fedlearn.round.join',
  'experimental.fedlearn.round.submit',
  'experimental.fedlearn.round.status',
  'experimental.fedlearn.round.finalize',
  'experimental.fedlearn.adapter.fetch',
  'experimental.fedlearn.adapter.apply',
] as const;

export const EVENT_TYPES = [
  'fedlearn.round.announced',
  'fedlearn.round.joined',
  'fedlearn.round.consent.granted',
  'fedlearn.round.submitted',
  'fedlearn.round.aggregated',
  'fedlearn.round.completed',
  'fedlearn.round.aborted',
  'fedlearn.round.takeover',
  'fedlearn.adapter.published',
  'fedlearn.adapter.applied',
] as const;

export const fedlearn: ModuleDefinition<'fedlearn', typeof config> = {
  name: 'fedlearn',
  seedId: 'M28',
  config,
  checkConfig(s) {
    if (s.min_participants > s.max_participants)
      throw fieldError('fedlearn.min_participants', 'must not exceed fedlearn.max_participants');
  },
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Federated learning',
    blurb: 'LoRA fine-tuning on local data, merged with FedAvg (M28).',
    icon: '🎓',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('fedlearn', CAPABILITIES),
  }),
};

export default fedlearn;
