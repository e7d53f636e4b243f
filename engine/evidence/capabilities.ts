/**
 * The eight capabilities of seed §2.5 over one EvidenceService. assert, dispute, attest and
 * ebkh.sync are `self` (the node never signs for a remote caller); get, query, trace and summary
 * are `member`, so peers can fetch on demand. Schemas come from protocol/schemas via `descriptor`.
 */
import type { Capability } from '../bus/types.js';
import { descriptor } from '../modules/registry.js';
import { EVIDENCE_CAPABILITIES as N, type EvidenceService } from './service.js';

/** Beyond the seed (decision in docs/decisions.md, "M30 VC on the bus"): not in the seed catalogue. */
export const VC_CAPABILITIES = {
  export: 'experimental.evidence.vc.export',
  import: 'experimental.evidence.vc.import',
} as const;
const CLAIM_ID = { type: 'string', minLength: 1, maxLength: 128 };
const LEVEL = { enum: ['unverified', 'cited', 'cross_referenced', 'attested', 'disputed'] };
const VC_SCHEMAS = {
  export: {
    request_schema: {
      type: 'object',
      required: ['claim_id'],
      additionalProperties: false,
      properties: { claim_id: CLAIM_ID },
    },
    response_schema: {
      type: 'object',
      required: ['credential'],
      properties: { credential: { type: 'object', required: ['@context', 'type', 'issuer', 'proof'] } },
    },
  },
  import: {
    request_schema: {
      type: 'object',
      required: ['credential'],
      additionalProperties: false,
      properties: { credential: { type: 'object' } },
    },
    response_schema: {
      type: 'object',
      required: ['claim_id', 'stored', 'evidence_level'],
      properties: { claim_id: CLAIM_ID, stored: { type: 'boolean' }, evidence_level: LEVEL },
    },
  },
};

export function evidenceCapabilities(svc: () => EvidenceService): Capability[] {
  const self = { trust_required: 'self' as const };
  const member = { trust_required: 'member' as const, idempotent: true };
  return [
    { descriptor: descriptor(N.assert, 'evidence', self), handler: async (i) => svc().assert(i) },
    { descriptor: descriptor(N.dispute, 'evidence', self), handler: async (i) => svc().dispute(i) },
    { descriptor: descriptor(N.attest, 'evidence', self), handler: async (i) => svc().attest(i) },
    { descriptor: descriptor(N.get, 'evidence', member), handler: async (i) => svc().get(i) },
    { descriptor: descriptor(N.query, 'evidence', member), handler: async (i) => svc().query(i) },
    { descriptor: descriptor(N.trace, 'evidence', member), handler: async (i) => svc().trace(i) },
    { descriptor: descriptor(N.summary, 'evidence', member), handler: async (i) => svc().summary(i) },
    {
      descriptor: descriptor(N.sync, 'evidence', { ...self, timeout_seconds: 120 }),
      handler: async (i) => svc().ebkhSync(i ?? {}),
    },
    {
      descriptor: descriptor(VC_CAPABILITIES.export, 'evidence', { ...self, ...VC_SCHEMAS.export }),
      handler: async (i) => svc().exportVc(i),
    },
    {
      descriptor: descriptor(VC_CAPABILITIES.import, 'evidence', { ...self, ...VC_SCHEMAS.import }),
      handler: async (i) => svc().importVc(i),
    },
  ];
}
