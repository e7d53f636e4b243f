/**
 * M30 Evidence graph — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { bool, int, nullableStr, num } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

/** [evidence] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  claim_ttl_days: int(C.EVIDENCE_CLAIM_TTL_DAYS_DEFAULT, 1, 36500),
  dispute_min_trust: num(C.EVIDENCE_DISPUTE_MIN_TRUST, 0, 1),
  max_provenance_depth: int(C.EVIDENCE_MAX_PROVENANCE_DEPTH, 1, C.EVIDENCE_MAX_PROVENANCE_DEPTH),
  attestations_required: int(1, 1, 100),
  ebkh_endpoint: nullableStr(/^https?:\/\/\S+$/),
};

export const CAPABILITIES = [
  'experimental.evidence.claim.assert',
  'experimental.evidence.claim.dispute',
  'experimental.evidence.claim.attest',
  'experimental.evidence.claim.get',
  'experimental.evidence.claim.query',
  'experimental.evidence.provenance.trace',
  'experimental.evidence.subject.summary',
  'experimental.evidence.ebkh.sync',
] as const;

export const EVENT_TYPES = [
  'evidence.claim.asserted',
  'evidence.claim.attested',
  'evidence.dispute.opened',
  'evidence.dispute.retracted',
  'evidence.ebkh.synced',
  'evidence.ebkh.sync_partial',
] as const;

export const evidence: ModuleDefinition<'evidence', typeof config> = {
  name: 'evidence',
  seedId: 'M30',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Evidence graph',
    blurb: 'Signed claims with provenance, attestations and disputes (M30).',
    icon: '🔎',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('evidence', CAPABILITIES),
  }),
};

export default evidence;
