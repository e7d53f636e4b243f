/**
 * M31 civil defence: the module's stores (digest §6), the stored alert record, the settings and the
 * explicit dependencies of the service, shared by the service's layers (core, receive, reads, service).
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { StorageAdapter } from '../store/types.js';
import type { AlertEnvelope, AlertStub, Cancel } from './alert.js';
import type { Severity } from './regions/nrw.js';
import type { RoleCertificate, Revocation, Signer } from './role.js';

export const STORES = {
  alerts: 'civdef_alerts',
  acks: 'civdef_acks',
  certs: 'civdef_certs',
  revocations: 'civdef_revocations',
  audit: 'civdef_audit',
  meta: 'civdef_audit_meta',
  witness: 'civdef_audit_witness',
  settings: 'civdef_settings',
} as const;
const S = STORES;

export const CIVDEF_SCHEMA = {
  version: 1,
  stores: [
    {
      name: S.alerts,
      keyPath: 'alert_id',
      indexes: [
        { name: 'by_region', keyPath: 'region' },
        { name: 'by_published', keyPath: 'published_at' },
        { name: 'by_expires', keyPath: 'expires_at' },
        { name: 'by_severity', keyPath: 'sev' },
        { name: 'by_publisher', keyPath: 'publisher' },
        { name: 'by_state', keyPath: 'state' },
      ],
    },
    {
      name: S.acks,
      keyPath: 'k',
      indexes: [
        { name: 'by_alert', keyPath: 'alert_id' },
        { name: 'by_acker', keyPath: 'acker' },
      ],
    },
    {
      name: S.certs,
      keyPath: 'cert_id',
      indexes: [
        { name: 'by_holder', keyPath: 'holder' },
        { name: 'by_issuer', keyPath: 'issuer' },
        { name: 'by_role', keyPath: 'role' },
        { name: 'by_region', keyPath: 'region' },
        { name: 'by_expires', keyPath: 'expires_at' },
      ],
    },
    { name: S.revocations, keyPath: 'cert_id' },
    {
      name: S.audit,
      keyPath: 'seq',
      indexes: [
        { name: 'by_alert', keyPath: 'alert_id' },
        { name: 'by_event', keyPath: 'event' },
        { name: 'by_at', keyPath: 'at' },
      ],
    },
    { name: S.meta, keyPath: 'key' },
    { name: S.witness, keyPath: 'chain' },
    { name: S.settings, keyPath: 'key' },
  ],
};

export interface CivDefSettings {
  trust_roots: string[];
  ack_max_per_minute_per_node: number;
  require_issuer_cosign: string[];
  allow_public_ack: boolean;
  federation_forward: boolean;
  home_region: string | null;
  mirror_to_evidence?: boolean;
  lora_panic_signal?: boolean;
}

export interface AlertRecord {
  alert_id: string;
  envelope: AlertEnvelope | null;
  stub: AlertStub | null;
  region: string;
  sev: number;
  severity: Severity;
  published_at: string;
  expires_at: string;
  publisher: NodeID;
  restricted: boolean;
  state: 'active' | 'cancelled';
  cancel: Cancel | null;
  foreign_role: boolean;
  uncosigned: boolean;
  publisher_revoked: boolean;
  matched: boolean;
}

export interface CivDefDeps {
  self: NodeID;
  sign: Signer;
  db: StorageAdapter;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  now?: () => number;
  settings: () => CivDefSettings;
  /** a bus call (local or to a peer); used for M30 (claim.get), M29 (panic) and role-restricted pulls */
  call?: (cap: string, input: unknown, opts?: { peer?: NodeID }) => Promise<any>;
  has?: (cap: string) => boolean;
  metrics?: Metrics;
  log?: {
    warn(msg: string, d?: Record<string, unknown>): void;
    info(msg: string, d?: Record<string, unknown>): void;
  };
}

export type MetaRow = {
  key: string;
  degraded: { first_bad_seq: number; reason: string } | null;
  last_checkpoint: { seq: number; tree_size: number; tree_root: string } | null;
};
/** `hops`: the federation hops a cancel or revocation came with (§4.3), so a bridge can stop loops. */
export type Notice =
  | { kind: 'alert'; record: AlertRecord; notify: boolean }
  | { kind: 'cancelled'; record: AlertRecord; by_cert_bundle: RoleCertificate[]; hops: NodeID[] }
  | { kind: 'revoked'; revocation: Revocation; cert: RoleCertificate | null; hops: NodeID[] };

export const bad = (m: string): never => {
  throw new HnError('bad_request', m);
};
export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Federation hops from the wire (unsigned, §3.3): an array of ≤ 8 NodeIDs, else null. */
export const hopsOf = (v: unknown): NodeID[] | null =>
  v === undefined
    ? []
    : Array.isArray(v) && v.length <= 8 && v.every((x) => typeof x === 'string')
      ? (v as NodeID[])
      : null;
