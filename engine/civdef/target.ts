/**
 * M31 region codes and alert targets (digest §3.1, §4.4): whole-segment prefix matching, bbox checks.
 * Pure functions; every malformed target is `civdef_alert_target_invalid`.
 */
import { HnError } from '../core/errors.js';

export const SEGMENT_RE = /^[A-Za-zÄÖÜäöüß0-9-]+$/;
export const CHANNELS = ['push', 'lora', 'federation', 'local'] as const;
export type Channel = (typeof CHANNELS)[number];
export type BBox = [number, number, number, number];

export interface AlertTarget {
  region: string;
  bbox: BBox | null;
  roles: string[];
  channels: Channel[];
}

const invalid = (why: string): never => {
  throw new HnError('civdef_alert_target_invalid', why);
};

/** A region code (or role pattern when `maxSegments` is raised): 2..8 segments, ≤128 chars. */
export function isRegionCode(v: unknown, maxSegments = 8): v is string {
  if (typeof v !== 'string' || v.length > 128 || v.normalize('NFC') !== v) return false;
  const segs = v.split('.');
  return segs.length >= 2 && segs.length <= maxSegments && segs.every((s) => SEGMENT_RE.test(s));
}

/** Whole-segment prefix: `DE.NRW.Kleve` ⊑ `DE.NRW.Kleve.Issum`, but not ⊑ `DE.NRW.Klever`. */
export function segmentPrefix(prefix: string, code: string): boolean {
  if (prefix === code) return true;
  return code.startsWith(prefix + '.');
}

/** Either is a prefix of the other (home region ↔ target region, §4.4). */
export const regionsOverlap = (a: string, b: string): boolean => segmentPrefix(a, b) || segmentPrefix(b, a);

export function bboxInside(inner: BBox, outer: BBox): boolean {
  return inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3];
}
export const pointInBBox = (lon: number, lat: number, b: BBox): boolean =>
  lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3];

export function parseBBox(v: unknown): BBox | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || v.length !== 4 || !v.every((n) => typeof n === 'number' && Number.isFinite(n)))
    invalid('bbox must be [minLon,minLat,maxLon,maxLat]');
  const [a, b, c, d] = v as number[];
  if (a! < -180 || c! > 180 || b! < -90 || d! > 90) invalid('bbox outside WGS84');
  if (!(a! < c! && b! < d!)) invalid('bbox needs min < max');
  return [a!, b!, c!, d!];
}

/** Validate and normalise an `AlertTarget` (shape only; region support is the adapter's job). */
export function parseTarget(v: unknown): AlertTarget {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid('target must be an object');
  const t = v as Record<string, unknown>;
  for (const k of Object.keys(t))
    if (!['region', 'bbox', 'roles', 'channels'].includes(k)) invalid(`unknown target field ${k}`);
  if (!isRegionCode(t.region)) invalid('target.region is not a region code');
  const bbox = parseBBox(t.bbox);
  const roles = t.roles ?? [];
  if (!Array.isArray(roles) || roles.length > 16 || !roles.every((r) => isRegionCode(r, 12)))
    invalid('target.roles must be ≤16 role patterns');
  const channels = t.channels ?? ['local', 'push'];
  if (
    !Array.isArray(channels) ||
    channels.length === 0 ||
    !channels.every((c) => (CHANNELS as readonly string[]).includes(c as string)) ||
    new Set(channels).size !== channels.length
  )
    invalid('target.channels must be a non-empty set of push|lora|federation|local');
  return {
    region: t.region as string,
    bbox,
    roles: [...new Set(roles as string[])].sort(),
    channels: [...(channels as Channel[])].sort(),
  };
}

/** §4.4: does a node (home region, optional in-memory position, its active roles) match a target? */
export function matchesTarget(
  target: AlertTarget,
  node: { home_region: string | null; position?: { lon: number; lat: number } | null; roles: string[] },
): boolean {
  if (!node.home_region || !regionsOverlap(node.home_region, target.region)) return false;
  if (target.bbox && node.position && !pointInBBox(node.position.lon, node.position.lat, target.bbox))
    return false;
  if (target.roles.length === 0) return true;
  return node.roles.some((r) => target.roles.some((p) => segmentPrefix(p, r)));
}
