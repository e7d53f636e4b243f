/**
 * The eight capabilities of seed §2.5 over one EvidenceService. assert, dispute, attest and
 * ebkh.sync are `self` (the node never signs for a remote caller); get, query, trace and summary
 * are `member`, so peers can fetch on demand. Schemas come from protocol/schemas via `descriptor`.
 */
import type { Capability } from '../bus/types.js';
import { descriptor } from '../modules/registry.js';
import { EVIDENCE_CAPABILITIES as N, type EvidenceService } from './service.js';

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
  ];
}
