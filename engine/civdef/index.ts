/**
 * M31 Civil defence — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { NODE_ID_RE, bool, int, oneOf, strList } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

/** [civdef] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  region: oneOf('NRW', ['NRW']),
  audit_retention_years: int(C.CIVDEF_AUDIT_RETENTION_YEARS, 1, 100),
  ack_max_per_minute_per_node: int(C.CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE, 1, 1000),
  trust_roots_extra: strList([], NODE_ID_RE),
  require_cosign: bool(false),
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

export const civdef: ModuleDefinition<'civdef', typeof config> = {
  name: 'civdef',
  seedId: 'M31',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Civil defence',
    blurb: 'Role-gated alerts with a tamper-evident audit (M31).',
    icon: '🚨',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('civdef', CAPABILITIES),
  }),
};

export default civdef;
