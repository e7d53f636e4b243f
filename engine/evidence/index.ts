/**
 * M30 Evidence graph — module definition. Signed subject/predicate/object claims with sources,
 * attestations, disputes and derivations, replicated through the event log; an optional EBKH adapter.
 * The logic lives in service.ts (explicit dependencies); this file wires it to the module host:
 * capabilities registered only while on, the six event types, the module's own stores (§6),
 * replication of peers' evidence events, draft extraction from other modules' events, the EBKH timer.
 */
import * as C from '../core/constants.js';
import { bool, int, nullableStr, num, strList } from '../core/config-fields.js';
import type { NodeID } from '../core/types.js';
import type { ModuleDefinition } from '../modules/module.js';
import { evidenceCapabilities, VC_CAPABILITIES } from './capabilities.js';
import { EvidenceService } from './service.js';
import { EVIDENCE_SCHEMA } from './store.js';

/** [evidence] config section (seed §8; fields from the module digest). The EBKH token is not here:
 * it lives in the module's own store (evidence_sync), never in the exportable config. */
export const config = {
  enabled: bool(false),
  claim_ttl_days: int(C.EVIDENCE_CLAIM_TTL_DAYS_DEFAULT, 1, 3650),
  dispute_min_trust: num(C.EVIDENCE_DISPUTE_MIN_TRUST, 0, 1),
  max_provenance_depth: int(C.EVIDENCE_MAX_PROVENANCE_DEPTH, 1, C.EVIDENCE_MAX_PROVENANCE_DEPTH),
  /** CC v3 rule: this many trusted attestations make a claim attested (digest §4.2, default 3) */
  attestations_required: int(3, 1, 100),
  trust_default: num(0.5, 0, 1),
  ebkh_trust: num(0.5, 0, 1),
  /** operator-defined multi-valued predicates (never a contradiction) */
  multi_valued_predicates: strList([], /^[a-z][a-z0-9_]{0,63}$/),
  summary_max_predicates: int(32, 1, 256),
  auto_extract: bool(true),
  ebkh_endpoint: nullableStr(/^https?:\/\/\S+$/),
  ebkh_sync_interval_minutes: int(60, 0, 10080),
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
const REPLICATED = new Set<string>(EVENT_TYPES.slice(0, 3));

/** Running services by node id: the app's local engine API (drafts, trust overrides, VC export). */
export const EVIDENCE_SERVICES = new Map<string, EvidenceService>();

export const evidence: ModuleDefinition<'evidence', typeof config> = {
  name: 'evidence',
  seedId: 'M30',
  config,
  capabilityNames: CAPABILITIES,
  extraCapabilityNames: [VC_CAPABILITIES.export, VC_CAPABILITIES.import],
  events: EVENT_TYPES.map((type) => ({ type })),
  stores: EVIDENCE_SCHEMA.stores,
  storesVersion: EVIDENCE_SCHEMA.version,
  view: {
    title: 'Evidence graph',
    blurb: 'Signed claims with provenance, attestations and disputes (M30).',
    icon: '🔎',
    load: () => import('./View.svelte'),
  },
  create(c) {
    let svc: EvidenceService | null = null;
    const need = () => {
      if (!svc) throw new Error('evidence module not started');
      return svc;
    };
    return {
      capabilities: () => evidenceCapabilities(need),
      async start() {
        const db = await c.openStore();
        const s = new EvidenceService({
          self: c.self,
          sign: (o) => c.sign(o),
          db,
          append: (t, d) => c.events.append(t, d),
          // community levels come from the node's membership view (the kit's community component)
          levelOf: (n: NodeID) => c.community.levelOf(n),
          promote: (target, level) => c.community.promote(target, level),
          signDataIntegrity: (m) => c.signDataIntegrity(m),
          now: () => c.clock.now(),
          settings: () => {
            const v = c.config();
            return { ...v, multi_valued_predicates: [...v.multi_valued_predicates] };
          },
          metrics: c.metrics,
          extract: c.config().auto_extract,
        });
        svc = s;
        EVIDENCE_SERVICES.set(c.self, s);
        c.events.subscribe((ev, source) => {
          // own appends are already stored; peers' evidence records and other modules' events are ingested
          if (source === null && ev.author === c.self && ev.event_type.startsWith('evidence.')) return;
          if (REPLICATED.has(ev.event_type) || !ev.event_type.startsWith('evidence.')) void s.ingest(ev);
        });
        // catch up: records that arrived while the module was off (or before a reload)
        for (const t of REPLICATED) await s.catchUp(await c.events.list({ type: t }));
        const minutes = c.config().ebkh_sync_interval_minutes;
        if (minutes > 0)
          c.clock.setInterval(() => {
            if (!c.config().ebkh_endpoint) return;
            // a failed scheduled sync is logged (host only; the report itself is kept by the service)
            s.ebkhSync({}).catch((e: unknown) =>
              c.log.warn('scheduled EBKH sync failed', { error: e as Error }),
            );
          }, minutes * 60_000);
      },
      stop() {
        if (svc && EVIDENCE_SERVICES.get(c.self) === svc) EVIDENCE_SERVICES.delete(c.self);
        svc = null;
      },
    };
  },
};

export default evidence;
