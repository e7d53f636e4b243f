/**
 * M27 expert registry (digest §4, §5): a materialised view of signed `moe.expert.*` events. An event
 * counts only when its author owns the expert_id (human:<author>, model/service …@<author>) or is an
 * anchor (externals; humans only with a consent grant signed by the member). Latest valid event per
 * expert_id wins; unregistrations are kept as tombstones so a replayed older registration cannot
 * resurrect an expert. Availability windows are evaluated in the expert's zone with Intl.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { canonicalString } from '../core/canonical.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import { isNodeId } from '../identity/identity.js';
import { normalizeTopic, TOPIC_MAX } from './embedder.js';
import { KINDS, type ExpertKind } from './scorer.js';

export interface Slot {
  days: number[];
  start: string;
  end: string;
}
export interface AvailabilityWindow {
  tz: string;
  always?: boolean;
  slots: Slot[];
}
export interface ConsentGrant {
  expert_id: string;
  topics_hash: string;
  iat: number;
  exp: number;
  purpose: 'experimental.moe.expert.register';
  signature: string;
}
export interface ExpertDescriptor {
  expert_id: string;
  kind: ExpertKind;
  topics: string[];
  capabilities: { capability: string; selector?: string }[];
  availability: AvailabilityWindow;
  consent_to_route: boolean;
  score_bias: number;
  name: string | null;
  public_rationale: string | null;
  host: NodeID;
  registered_at: number;
  expires_at: number | null;
  max_handoffs_per_day: number | null;
  paused: boolean;
  pause_reason: string | null;
  consent_grant?: ConsentGrant;
}
export interface RegistryEntry {
  expert_id: string;
  descriptor: ExpertDescriptor | null;
  /** ordering key of the winning event: [time, event_id] */
  at: number;
  event_id: string;
  removed_at?: number;
  reason?: string;
}

const DAY = 86_400_000;
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

const bad = (message: string, field?: string) => new HnError('bad_request', message, field ? { field } : {});
const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

const tzOk = new Map<string, boolean>();
export function validTimeZone(tz: unknown): tz is string {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) return false;
  let ok = tzOk.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      ok = true;
    } catch {
      ok = false;
    }
    tzOk.set(tz, ok);
  }
  return ok;
}

/** Validate an availability window; unknown keys (e.g. `weekdays_19_21_local`) → bad_request. */
export function checkAvailability(a: unknown): AvailabilityWindow {
  if (!isObj(a)) throw bad('availability must be an object', 'availability');
  for (const k of Object.keys(a))
    if (!['tz', 'always', 'slots'].includes(k)) throw bad(`availability.${k} is not a field`, 'availability');
  if (!validTimeZone(a.tz)) throw bad('availability.tz must be an IANA time zone', 'availability.tz');
  if (a.always !== undefined && typeof a.always !== 'boolean')
    throw bad('availability.always', 'availability');
  const slots = a.slots ?? [];
  if (!Array.isArray(slots) || slots.length > 14)
    throw bad('availability.slots: at most 14', 'availability.slots');
  const out: Slot[] = [];
  for (const s of slots) {
    if (!isObj(s) || Object.keys(s).some((k) => !['days', 'start', 'end'].includes(k)))
      throw bad('availability slot {days,start,end}', 'availability.slots');
    const days = s.days;
    if (
      !Array.isArray(days) ||
      days.length < 1 ||
      days.length > 7 ||
      !days.every((d) => Number.isInteger(d) && (d as number) >= 1 && (d as number) <= 7)
    )
      throw bad('slot days are ISO weekdays 1..7', 'availability.slots');
    if (typeof s.start !== 'string' || !HHMM.test(s.start) || typeof s.end !== 'string' || !HHMM.test(s.end))
      throw bad('slot start/end are "HH:MM"', 'availability.slots');
    out.push({ days: [...new Set(days as number[])].sort(), start: s.start, end: s.end });
  }
  if (!a.always && out.length === 0) throw bad('availability needs slots or always', 'availability');
  return { tz: a.tz, ...(a.always ? { always: true } : {}), slots: out };
}

const fmtCache = new Map<string, Intl.DateTimeFormat>();
const WD: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
/** ISO weekday and minute of day at `ms` in zone `tz`. */
export function localTime(ms: number, tz: string): { day: number; minute: number } {
  let f = fmtCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    fmtCache.set(tz, f);
  }
  let day = 1;
  let h = 0;
  let m = 0;
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'weekday') day = WD[p.value] ?? 1;
    else if (p.type === 'hour') h = Number(p.value) % 24;
    else if (p.type === 'minute') m = Number(p.value);
  }
  return { day, minute: h * 60 + m };
}
const mins = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Is `ms` inside the window? `end ≤ start` crosses midnight into the next day. */
export function availableAt(a: AvailabilityWindow, ms: number): boolean {
  if (a.always) return true;
  const { day, minute } = localTime(ms, a.tz);
  const prev = day === 1 ? 7 : day - 1;
  for (const s of a.slots) {
    const st = mins(s.start);
    const en = mins(s.end);
    if (st < en) {
      if (s.days.includes(day) && minute >= st && minute < en) return true;
    } else if ((s.days.includes(day) && minute >= st) || (s.days.includes(prev) && minute < en)) return true;
  }
  return false;
}

/** Next time the window opens (15-minute steps, up to 8 days), or null. */
export function nextAvailableAt(a: AvailabilityWindow, ms: number): number | null {
  if (availableAt(a, ms)) return ms;
  const step = 15 * 60_000;
  let t = Math.ceil(ms / step) * step;
  for (let i = 0; i < 8 * 96; i++, t += step) if (availableAt(a, t)) return t;
  return null;
}

export function topicsHash(topics: readonly string[]): string {
  return sha256Hex(canonicalString([...topics].sort()));
}

export interface RegisterInput {
  kind: ExpertKind;
  topics: string[];
  capabilities?: { capability: string; selector?: string }[];
  availability?: unknown;
  consent_to_route?: boolean;
  score_bias?: number;
  name?: string;
  public_rationale?: string;
  expires_at?: number;
  max_handoffs_per_day?: number;
  on_behalf_of?: NodeID;
  consent_grant?: ConsentGrant;
  model_id?: string;
  url?: string;
}

export function normalizeTopics(raw: unknown, field = 'topics', min = 1, max = 32): string[] {
  if (!Array.isArray(raw) || raw.length < min || raw.length > max)
    throw bad(`${field}: ${min}..${max} items`, field);
  const out = new Set<string>();
  for (const t of raw) {
    if (typeof t !== 'string' || t.length > 256) throw bad(`${field}: strings`, field);
    const n = normalizeTopic(t);
    if (n.length < 1 || n.length > TOPIC_MAX)
      throw bad(`${field}: each 1..64 characters after normalisation`, field);
    out.add(n);
  }
  return [...out].sort();
}

/**
 * Check a register request and derive the descriptor (digest §3). `callerIsAnchor` is the caller's
 * community level; errors are bad_request / unauthorized and nothing is stored.
 */
export function buildDescriptor(
  input: unknown,
  ctx: {
    self: NodeID;
    callerIsAnchor: boolean;
    now: number;
    verify: (o: Record<string, unknown>, n: NodeID) => boolean;
  },
): ExpertDescriptor {
  if (!isObj(input)) throw bad('request must be an object');
  const i = input as Record<string, unknown>;
  const kind = i.kind as ExpertKind;
  if (!KINDS.includes(kind)) throw bad('kind must be human|model|service|external', 'kind');
  const topics = normalizeTopics(i.topics);
  const caps = i.capabilities ?? [];
  if (!Array.isArray(caps) || caps.length > 8) throw bad('capabilities: 0..8', 'capabilities');
  const capabilities = caps.map((c) => {
    if (!isObj(c) || typeof c.capability !== 'string' || !/^[a-z][a-z0-9_.@-]{0,127}$/.test(c.capability))
      throw bad('capabilities[].capability', 'capabilities');
    if (c.selector !== undefined && (typeof c.selector !== 'string' || c.selector.length > 64))
      throw bad('capabilities[].selector', 'capabilities');
    return { capability: c.capability, ...(c.selector ? { selector: c.selector as string } : {}) };
  });
  if (kind === 'service' && capabilities.length === 0)
    throw bad('a service names its capability', 'capabilities');
  const bias = i.score_bias ?? 0;
  if (typeof bias !== 'number' || !Number.isFinite(bias)) throw bad('score_bias is a number', 'score_bias');
  if (Math.abs(bias) > 5 || (Math.abs(bias) > 1 && !ctx.callerIsAnchor))
    throw new HnError('unauthorized', 'score_bias out of range for this caller', { field: 'score_bias' });
  const strField = (k: string, max: number) => {
    const v = i[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v.length > max) throw bad(`${k}: at most ${max} characters`, k);
    return v;
  };
  const name = strField('name', 64);
  const public_rationale = strField('public_rationale', 280);
  const consent = i.consent_to_route;
  if (consent !== undefined && typeof consent !== 'boolean') throw bad('consent_to_route is a boolean');
  let availability: AvailabilityWindow;
  if (kind === 'human') {
    if (consent !== true) throw bad('a human expert needs consent_to_route: true', 'consent_to_route');
    availability = checkAvailability(i.availability);
  } else
    availability =
      i.availability === undefined
        ? { tz: 'UTC', always: true, slots: [] }
        : checkAvailability(i.availability);
  let expires_at: number | null = null;
  if (i.expires_at !== undefined) {
    if (typeof i.expires_at !== 'number' || i.expires_at <= ctx.now || i.expires_at > ctx.now + 365 * DAY)
      throw bad('expires_at must be within 365 days', 'expires_at');
    expires_at = i.expires_at;
  } else if (kind === 'human') expires_at = ctx.now + 90 * DAY;
  let max_handoffs_per_day: number | null = null;
  if (i.max_handoffs_per_day !== undefined) {
    const m = i.max_handoffs_per_day;
    if (kind !== 'human' || !Number.isInteger(m) || (m as number) < 1 || (m as number) > 5)
      throw bad('max_handoffs_per_day: 1..5 (humans)', 'max_handoffs_per_day');
    max_handoffs_per_day = m as number;
  }
  let host = ctx.self;
  let expert_id: string;
  let consent_grant: ConsentGrant | undefined;
  if (kind === 'human') {
    if (i.on_behalf_of !== undefined) {
      if (!isNodeId(i.on_behalf_of)) throw bad('on_behalf_of', 'on_behalf_of');
      if (!ctx.callerIsAnchor)
        throw new HnError('unauthorized', 'only an anchor registers on behalf of a member');
      const member = i.on_behalf_of as NodeID;
      expert_id = `human:${member}`;
      const g = i.consent_grant;
      if (!validGrant(g, expert_id, topics, ctx.now, (o) => ctx.verify(o, member)))
        throw new HnError('unauthorized', 'missing or invalid consent grant', { field: 'consent_grant' });
      consent_grant = g as ConsentGrant;
      host = member;
    } else expert_id = `human:${ctx.self}`;
  } else if (kind === 'model') {
    const m = i.model_id;
    if (typeof m !== 'string' || !/^[A-Za-z0-9._:/-]{1,128}$/.test(m))
      throw bad('model_id is required for a model', 'model_id');
    expert_id = `model:${m}@${ctx.self}`;
  } else if (kind === 'service') {
    const c0 = capabilities[0]!;
    expert_id = `service:${c0.capability}${c0.selector ? `#${c0.selector}` : ''}@${ctx.self}`;
  } else {
    if (!ctx.callerIsAnchor) throw new HnError('unauthorized', 'only an anchor registers external experts');
    const u = i.url;
    if (typeof u !== 'string' || u.length > 512 || !/^https:\/\/[^\s]+$/.test(u))
      throw bad('url must be https', 'url');
    expert_id = `external:${u}`;
  }
  return {
    expert_id,
    kind,
    topics,
    capabilities,
    availability,
    consent_to_route: kind === 'human' ? true : consent !== false,
    score_bias: bias,
    name,
    public_rationale,
    host,
    registered_at: ctx.now,
    expires_at,
    max_handoffs_per_day,
    paused: false,
    pause_reason: null,
    ...(consent_grant ? { consent_grant } : {}),
  };
}

export function validGrant(
  g: unknown,
  expertId: string,
  topics: readonly string[],
  now: number,
  verify: (o: Record<string, unknown>) => boolean,
): boolean {
  if (!isObj(g)) return false;
  return (
    g.expert_id === expertId &&
    g.purpose === 'experimental.moe.expert.register' &&
    g.topics_hash === topicsHash(topics) &&
    typeof g.iat === 'number' &&
    typeof g.exp === 'number' &&
    g.iat <= now + 60_000 &&
    g.exp > now &&
    g.exp - g.iat <= 90 * DAY &&
    typeof g.signature === 'string' &&
    verify(g)
  );
}

/** Who may author an event about this expert id. */
export function ownerOf(expertId: string): NodeID | null {
  if (expertId.startsWith('human:')) return expertId.slice(6) as NodeID;
  if (expertId.startsWith('model:') || expertId.startsWith('service:')) {
    const at = expertId.lastIndexOf('@');
    return at > 0 ? (expertId.slice(at + 1) as NodeID) : null;
  }
  return null; // externals: anchors only
}

type Level = TrustLevel | 'revoked' | null;

/** The registry view. `apply` returns true when the event changed the view. */
export class ExpertRegistry {
  readonly entries = new Map<string, RegistryEntry>();

  constructor(
    private readonly levelOf: (n: NodeID) => Level,
    private readonly verify: (o: Record<string, unknown>, n: NodeID) => boolean,
  ) {}

  /** Decide whether an event by `author` about this descriptor counts (digest §5). */
  accepts(author: NodeID, d: ExpertDescriptor, at: number): boolean {
    const level = this.levelOf(author);
    if (level === null || level === 'revoked') return false;
    const anchor = level === 'anchor';
    if (!KINDS.includes(d.kind) || typeof d.expert_id !== 'string') return false;
    if (typeof d.score_bias !== 'number' || Math.abs(d.score_bias) > (anchor ? 5 : 1)) return false;
    if (!Array.isArray(d.topics) || d.topics.length < 1 || d.topics.length > 32) return false;
    if (d.topics.some((t) => typeof t !== 'string' || normalizeTopic(t) !== t || t.length > TOPIC_MAX || !t))
      return false;
    try {
      checkAvailability(d.availability);
    } catch {
      return false;
    }
    const owner = ownerOf(d.expert_id);
    if (d.kind === 'external') return anchor && d.expert_id.startsWith('external:https://');
    if (!d.expert_id.startsWith(`${d.kind}:`) || owner === null) return false;
    if (d.kind === 'human' && d.consent_to_route !== true) return false;
    if (owner === author) return d.host === author;
    if (anchor && d.kind === 'human')
      return validGrant(d.consent_grant, d.expert_id, d.topics, at, (o) => this.verify(o, owner));
    return false;
  }

  /** Apply one moe.expert.* event; returns true when the view changed. */
  apply(ev: {
    event_id: string;
    author: NodeID;
    event_type: string;
    data: Record<string, unknown>;
  }): boolean {
    if (!isObj(ev.data)) return false;
    if (ev.event_type === 'moe.expert.registered') {
      const d = ev.data as unknown as ExpertDescriptor;
      if (!isObj(d) || typeof d.registered_at !== 'number') return false;
      if (!this.accepts(ev.author, d, d.registered_at)) return false;
      const cur = this.entries.get(d.expert_id);
      if (cur && !newer(d.registered_at, ev.event_id, cur)) return false;
      this.entries.set(d.expert_id, {
        expert_id: d.expert_id,
        descriptor: { ...d, topics: [...d.topics] },
        at: d.registered_at,
        event_id: ev.event_id,
      });
      return true;
    }
    if (ev.event_type === 'moe.expert.unregistered') {
      const { expert_id, unregistered_at, reason } = ev.data as {
        expert_id?: unknown;
        unregistered_at?: unknown;
        reason?: unknown;
      };
      if (typeof expert_id !== 'string' || typeof unregistered_at !== 'number') return false;
      const level = this.levelOf(ev.author);
      const owner = ownerOf(expert_id);
      const cur = this.entries.get(expert_id);
      const host = cur?.descriptor?.host;
      if (!(
        level === 'anchor' ||
        (level && level !== 'revoked' && (owner === ev.author || host === ev.author))
      ))
        return false;
      if (cur && !newer(unregistered_at, ev.event_id, cur)) return false;
      this.entries.set(expert_id, {
        expert_id,
        descriptor: null,
        at: unregistered_at,
        event_id: ev.event_id,
        removed_at: unregistered_at,
        reason: typeof reason === 'string' ? reason : 'withdrawn',
      });
      return true;
    }
    return false;
  }

  get(expertId: string, now: number): ExpertDescriptor | null {
    const d = this.entries.get(expertId)?.descriptor ?? null;
    if (!d) return null;
    if (d.expires_at !== null && d.expires_at <= now) return null;
    return d;
  }

  /** Live (registered, unexpired unless asked) descriptors. */
  all(now: number, includeExpired = false): ExpertDescriptor[] {
    const out: ExpertDescriptor[] = [];
    for (const e of this.entries.values()) {
      const d = e.descriptor;
      if (!d) continue;
      if (!includeExpired && d.expires_at !== null && d.expires_at <= now) continue;
      out.push(d);
    }
    return out.sort((a, b) => (a.expert_id < b.expert_id ? -1 : a.expert_id > b.expert_id ? 1 : 0));
  }
}

function newer(at: number, eventId: string, cur: RegistryEntry): boolean {
  return at > cur.at || (at === cur.at && eventId > cur.event_id);
}
