/**
 * M31 Civil defence — module definition. Role-certified alerts distributed through the event log,
 * acks, revocations and a hash-chained, signed audit with RFC 9162 checkpoints. The logic lives in
 * service.ts (explicit dependencies); this file wires it to the module host: the eleven capabilities
 * (registered only while on), the ten event types, the module's own stores, receipt of peers' events.
 * M30 and M29 are reached only through the bus.
 */
import { HnError } from '../core/errors.js';
import * as C from '../core/constants.js';
import { NODE_ID_RE, bool, int, nullableStr, oneOf, strList } from '../core/config-fields.js';
import type { Capability } from '../bus/types.js';
import type { ModuleDefinition } from '../modules/module.js';
import { descriptor } from '../modules/registry.js';
import { toJsonl } from './audit.js';
import { CIVDEF_SCHEMA, CivDefService } from './service.js';

/** [civdef] config section (seed §8; fields from the module digest). */
export const config = {
  enabled: bool(false),
  region: oneOf('NRW', ['NRW']),
  audit_retention_years: int(C.CIVDEF_AUDIT_RETENTION_YEARS, 1, 100),
  ack_max_per_minute_per_node: int(C.CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE, 1, 1000),
  /** deployment trust roots of the region (pilot: substitute issuers such as a Wehrleiter's key) */
  trust_roots_extra: strList([], NODE_ID_RE),
  /** severities that need an issuer cosignature (§4.2 step 6) */
  require_issuer_cosign: strList(['emergency', 'extreme'], /^(info|advisory|warning|emergency|extreme)$/),
  allow_public_ack: bool(false),
  federation_forward: bool(false),
  /** the resident's home region (settings), e.g. DE.NRW.Kleve.Issum */
  home_region: nullableStr(/^[A-Za-zÄÖÜäöüß0-9-]+(\.[A-Za-zÄÖÜäöüß0-9-]+){1,7}$/),
  mirror_to_evidence: bool(false),
  lora_panic_signal: bool(true),
};

export const CAPABILITIES = [
  'experimental.civdef.alert.publish',
  'experimental.civdef.alert.cancel',
  'experimental.civdef.alert.list',
  'experimental.civdef.alert.get',
  'experimental.civdef.alert.subscribe',
  'experimental.civdef.alert.ack',
  'experimental.civdef.alert.acks',
  'experimental.civdef.role.register',
  'experimental.civdef.role.list',
  'experimental.civdef.role.revoke',
  'experimental.civdef.audit.export',
] as const;

export const EVENT_TYPES = [
  'civdef.alert.published',
  'civdef.alert.forwarded',
  'civdef.alert.acked',
  'civdef.alert.cancelled',
  'civdef.alert.dropped.revoked',
  'civdef.alert.foreign_role',
  'civdef.role.registered',
  'civdef.role.revoked',
  'civdef.audit.checkpointed',
  'civdef.audit.broken',
] as const;
const RECEIVED = new Set<string>([
  'civdef.alert.published',
  'civdef.alert.forwarded',
  'civdef.alert.acked',
  'civdef.alert.cancelled',
  'civdef.role.registered',
  'civdef.role.revoked',
  'civdef.audit.checkpointed',
]);

/** Running services by node id: the app's local engine API (prepare/cosign, verify, re-checkpoint). */
export const CIVDEF_SERVICES = new Map<string, CivDefService>();

function capabilities(svc: () => CivDefService): Capability[] {
  const P = 'experimental.civdef.';
  const self = { trust_required: 'self' as const };
  const member = { trust_required: 'member' as const, idempotent: true };
  const d = (n: string, o: Record<string, unknown>) => descriptor(P + n, 'civdef', o);
  return [
    { descriptor: d('alert.publish', self), handler: async (i) => svc().publish(i) },
    { descriptor: d('alert.cancel', self), handler: async (i) => svc().cancel(i) },
    {
      descriptor: d('alert.list', member),
      handler: async (i, ctx) => svc().list(i, ctx.caller, ctx.isLocal),
    },
    { descriptor: d('alert.get', member), handler: async (i, ctx) => svc().get(i, ctx.caller, ctx.isLocal) },
    {
      descriptor: d('alert.subscribe', { trust_required: 'member' }),
      handler: (i, ctx) => svc().subscribe(i, ctx.caller, ctx.isLocal, ctx.signal),
    },
    { descriptor: d('alert.ack', self), handler: async (i) => svc().ack(i) },
    {
      descriptor: d('alert.acks', member),
      handler: async (i, ctx) => svc().acks(i, ctx.caller, ctx.isLocal),
    },
    { descriptor: d('role.register', { trust_required: 'member' }), handler: async (i) => svc().register(i) },
    { descriptor: d('role.list', member), handler: async (i) => ({ certs: svc().listRoles(i) }) },
    { descriptor: d('role.revoke', self), handler: async (i) => svc().revoke(i) },
    {
      descriptor: d('audit.export', self),
      handler: async function* (i) {
        const { frames, report } = await svc().exportFrames(i);
        for (const f of frames) yield { event: f.type, data: { line: toJsonl([f]).trimEnd(), frame: f } };
        if (!report.ok) {
          const { HnError } = await import('../core/errors.js');
          throw new HnError('civdef_audit_chain_broken', `audit chain broken at ${report.first_bad_seq}`);
        }
      },
    },
  ];
}

export const civdef: ModuleDefinition<'civdef', typeof config> = {
  name: 'civdef',
  seedId: 'M31',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  stores: CIVDEF_SCHEMA.stores,
  storesVersion: CIVDEF_SCHEMA.version,
  view: {
    title: 'Civil defence',
    blurb: 'Role-gated alerts with a tamper-evident audit (M31).',
    icon: '🚨',
    load: () => import('./View.svelte'),
  },
  create(c) {
    let svc: CivDefService | null = null;
    const need = () => {
      if (!svc) throw new Error('civdef module not started');
      return svc;
    };
    return {
      capabilities: () => capabilities(need),
      async start() {
        const db = await c.openStore();
        const s = new CivDefService({
          self: c.self,
          sign: (o) => c.sign(o),
          db,
          append: (t, d) => c.events.append(t, d),
          now: () => c.clock.now(),
          settings: () => {
            const v = c.config();
            return {
              trust_roots: [...v.trust_roots_extra],
              ack_max_per_minute_per_node: v.ack_max_per_minute_per_node,
              require_issuer_cosign: [...v.require_issuer_cosign],
              allow_public_ack: v.allow_public_ack,
              federation_forward: v.federation_forward,
              home_region: v.home_region,
              mirror_to_evidence: v.mirror_to_evidence,
              lora_panic_signal: v.lora_panic_signal,
            };
          },
          call: (cap, input, opts) => c.bus.call(cap, input, opts as never),
          has: (cap) => c.bus.has(cap),
          metrics: c.metrics,
          log: c.log,
        });
        await s.start();
        svc = s;
        CIVDEF_SERVICES.set(c.self, s);
        c.events.subscribe((ev, source) => {
          if (source === null || ev.author === c.self) return;
          if (RECEIVED.has(ev.event_type)) s.ingest(ev);
        });
        // catch up: events that arrived while the module was off (or before a reload)
        for (const t of RECEIVED)
          for (const ev of await c.events.list({ type: t })) if (ev.author !== c.self) s.ingest(ev);
        c.clock.setInterval(
          () =>
            void s.verifyAudit().catch((e: unknown) =>
              c.log.warn('civdef: daily audit verification failed', {
                code: e instanceof HnError ? e.code : 'internal',
              }),
            ),
          86_400_000,
        );
      },
      stop() {
        if (svc && CIVDEF_SERVICES.get(c.self) === svc) CIVDEF_SERVICES.delete(c.self);
        svc = null;
      },
    };
  },
};

export default civdef;
