/** ProtocolVersion (M32 A3.1): strict parse, format, precedence, compatibility and link negotiation (pure). */
import type { ProtocolVersion } from '../core/types.js';

export const PROTOCOL_VERSION_RE =
  /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(?:-([0-9A-Za-z]+(?:\.[0-9A-Za-z-]+)*))?$/;

/** Strict parse; null when `s` is not a ProtocolVersion (no `v`, no `+build`, suffix ≤ 32 chars). */
export function parseVersion(s: unknown): ProtocolVersion | null {
  if (typeof s !== 'string') return null;
  const m = PROTOCOL_VERSION_RE.exec(s);
  if (!m || (m[4] ?? '').length > 32) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), suffix: m[4] ?? '' };
}

export const formatVersion = (v: ProtocolVersion): string =>
  `${v.major}.${v.minor}.${v.patch}${v.suffix ? `-${v.suffix}` : ''}`;

/** Semver precedence: numeric triple, then a suffixed version below the plain one, then pre-release rules. */
export function compareVersions(a: ProtocolVersion, b: ProtocolVersion): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  if (a.suffix === b.suffix) return 0;
  if (!a.suffix) return 1;
  if (!b.suffix) return -1;
  const pa = a.suffix.split('.');
  const pb = b.suffix.split('.');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) return Number(x) < Number(y) ? -1 : 1;
    if (nx) return -1;
    if (ny) return 1;
    return x < y ? -1 : 1;
  }
  return pa.length === pb.length ? 0 : pa.length < pb.length ? -1 : 1;
}

export const isCompatible = (a: ProtocolVersion, b: ProtocolVersion): boolean => a.major === b.major;

/** Sort version strings descending (unparseable ones dropped). */
export function sortDescending(list: readonly string[]): string[] {
  return list
    .map(parseVersion)
    .filter((v): v is ProtocolVersion => v !== null)
    .sort((a, b) => compareVersions(b, a))
    .map(formatVersion);
}

export type Negotiation =
  | { ok: true; agreed: string; major: number }
  | { ok: false; error: 'protocol_descriptor_invalid' | 'protocol_unsupported_capability' };

/**
 * A3.3: highest common major M, then min(best local in M, best peer in M). Symmetric in its arguments.
 * `protocol_descriptor_invalid` when one side offers no parseable version.
 */
export function negotiate(local: readonly unknown[], peer: readonly unknown[]): Negotiation {
  const l = local.map(parseVersion).filter((v): v is ProtocolVersion => v !== null);
  const p = peer.map(parseVersion).filter((v): v is ProtocolVersion => v !== null);
  if (!l.length || !p.length) return { ok: false, error: 'protocol_descriptor_invalid' };
  const majors = new Set(l.map((v) => v.major));
  const common = [...new Set(p.map((v) => v.major))].filter((m) => majors.has(m));
  if (!common.length) return { ok: false, error: 'protocol_unsupported_capability' };
  const M = Math.max(...common);
  const best = (xs: ProtocolVersion[]) =>
    xs.filter((v) => v.major === M).reduce((x, y) => (compareVersions(x, y) >= 0 ? x : y));
  const a = best(l);
  const b = best(p);
  return { ok: true, agreed: formatVersion(compareVersions(a, b) <= 0 ? a : b), major: M };
}
