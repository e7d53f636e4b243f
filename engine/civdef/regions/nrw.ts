/**
 * The NRW region adapter (digest §3.5): role schema with rank and severity cap, the region's
 * trust roots, ARS codes and approximate bounds for bbox checks.
 * Bounds are rough rectangles (±0.05°) taken from public maps; they only bound bboxes, never locate anyone.
 * ARS (Kreis level) per the Destatis Gemeindeverzeichnis; Gemeinde-level ARS are not shipped in v1.
 */
import type { NodeID } from '../../core/types.js';
import type { BBox } from '../target.js';

export const SEVERITIES = ['info', 'advisory', 'warning', 'emergency', 'extreme'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const sevRank = (s: Severity): number => SEVERITIES.indexOf(s);

export interface RoleSpec {
  org: 'KatS' | 'Feuerwehr' | 'THW' | 'DRK';
  rank: number;
  max_severity: Severity | null;
  may_cosign_cross_org: boolean;
  default_scopes: string[];
}

export interface RegionInfo {
  name: string;
  ars?: string;
  bounds?: BBox;
}

const PUB = ['alert.publish', 'alert.cancel', 'alert.ack', 'alert.cosign', 'role.issue', 'role.revoke'];
/** role tail after the region → (segments of the region: 3 = Kreis, 4 = Gemeinde, spec) */
export const NRW_ROLE_SCHEMA: Record<string, RoleSpec & { region_segments: number }> = {
  'KatS.Stabsleiter': {
    org: 'KatS',
    rank: 40,
    max_severity: 'extreme',
    may_cosign_cross_org: true,
    default_scopes: [...PUB, 'audit.export'],
    region_segments: 3,
  },
  'Feuerwehr.Wehrleiter': {
    org: 'Feuerwehr',
    rank: 30,
    max_severity: 'emergency',
    may_cosign_cross_org: false,
    default_scopes: PUB,
    region_segments: 4,
  },
  'THW.OV.Leiter': {
    org: 'THW',
    rank: 30,
    max_severity: 'emergency',
    may_cosign_cross_org: false,
    default_scopes: PUB,
    region_segments: 3,
  },
  'DRK.Ortsverein.Bereitschaftsleiter': {
    org: 'DRK',
    rank: 20,
    max_severity: 'warning',
    may_cosign_cross_org: false,
    default_scopes: PUB,
    region_segments: 3,
  },
  'Feuerwehr.Mitglied': {
    org: 'Feuerwehr',
    rank: 10,
    max_severity: null,
    may_cosign_cross_org: false,
    default_scopes: ['alert.ack'],
    region_segments: 4,
  },
  'THW.Helfer': {
    org: 'THW',
    rank: 10,
    max_severity: null,
    may_cosign_cross_org: false,
    default_scopes: ['alert.ack'],
    region_segments: 3,
  },
  'DRK.Sanitaeter': {
    org: 'DRK',
    rank: 10,
    max_severity: null,
    may_cosign_cross_org: false,
    default_scopes: ['alert.ack'],
    region_segments: 3,
  },
  'KatS.Auditor': {
    org: 'KatS',
    rank: 0,
    max_severity: null,
    may_cosign_cross_org: false,
    default_scopes: ['alert.ack', 'audit.export'],
    region_segments: 3,
  },
};

const KREISE: Record<string, RegionInfo> = {
  Kleve: { name: 'Kreis Kleve', ars: '05154', bounds: [5.85, 51.35, 6.6, 51.9] },
  Wesel: { name: 'Kreis Wesel', ars: '05170', bounds: [6.2, 51.4, 7.05, 51.85] },
  Borken: { name: 'Kreis Borken', ars: '05554', bounds: [6.35, 51.7, 7.3, 52.2] },
  Duesseldorf: { name: 'Düsseldorf', ars: '05111', bounds: [6.65, 51.1, 6.95, 51.36] },
  Koeln: { name: 'Köln', ars: '05315', bounds: [6.75, 50.8, 7.2, 51.1] },
  Muenster: { name: 'Münster', ars: '05515', bounds: [7.45, 51.83, 7.8, 52.07] },
};
const NRW_BOUNDS: BBox = [5.8, 50.3, 9.5, 52.55];

export interface RegionAdapter {
  region_code: string;
  audit_retention_years: number;
  /** role spec of a role string, with its embedded region; null = unknown role */
  roleSpec(role: string): (RoleSpec & { region: string }) | null;
  /** true when the role is known and its embedded region equals `cert.region` */
  validateRole(cert: { role: string; region: string }): boolean;
  regionInfo(code: string): RegionInfo | null;
  trust_roots: NodeID[];
}

export function nrwAdapter(trustRoots: NodeID[], audit_retention_years = 10): RegionAdapter {
  const roleSpec = (role: string) => {
    const segs = role.split('.');
    if (segs[0] !== 'DE' || segs[1] !== 'NRW') return null;
    for (const [tail, spec] of Object.entries(NRW_ROLE_SCHEMA)) {
      const t = tail.split('.');
      if (segs.length !== spec.region_segments + t.length) continue;
      if (segs.slice(spec.region_segments).join('.') !== tail) continue;
      return { ...spec, region: segs.slice(0, spec.region_segments).join('.') };
    }
    return null;
  };
  return {
    region_code: 'DE.NRW',
    audit_retention_years,
    trust_roots: trustRoots,
    roleSpec,
    validateRole: (cert) => {
      const s = roleSpec(cert.role);
      return s !== null && s.region === cert.region;
    },
    regionInfo(code) {
      const segs = code.split('.');
      if (segs[0] !== 'DE' || segs[1] !== 'NRW') return null;
      if (segs.length === 2) return { name: 'Nordrhein-Westfalen', ars: '05', bounds: NRW_BOUNDS };
      const k = KREISE[segs[2]!];
      const base: RegionInfo = k ?? { name: segs[2]!, bounds: NRW_BOUNDS };
      if (segs.length === 3) return base;
      return {
        name: `${segs.slice(3).join(' ')} (${base.name})`,
        ...(base.ars ? { ars: base.ars } : {}),
        ...(base.bounds ? { bounds: base.bounds } : {}),
      };
    },
  };
}
