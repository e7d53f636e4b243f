/**
 * X02 event log with per-author hash chains: append-only, signed, Lamport-ordered, stored
 * through the storage adapter, validated on receipt (core digest §6.3) and synced between
 * peers so each learns exactly what it lacks. A rejected event never changes stored data.
 */
import { canonical } from '../core/canonical.js';
import {
  EVENT_MAX_BYTES,
  LAMPORT_MAX_JUMP,
  SYNC_BATCH_MAX_BYTES,
  SYNC_BATCH_MAX_EVENTS,
} from '../core/constants.js';
import { HnError, type ErrorCode } from '../core/errors.js';
import { blake3, CID_RE } from '../core/hash.js';
import { toHex } from '../core/encoding.js';
import { NODE_ID_RE, SIGNATURE_RE, type NodeID } from '../core/types.js';
import { ulid, ULID_RE } from '../core/ulid.js';
import { assertSchema } from '../bus/schema.js';
import { CommunityView, CORE_EVENT_SCHEMAS } from '../identity/community.js';
import { signObject, verifyObjects, type KeyPair } from '../identity/identity.js';
import type { Metrics } from '../observability/metrics.js';
import type { StorageAdapter, Tx } from '../store/types.js';
import { queueTail } from '../core/vocab.js';

export interface EventEnvelope {
  schema_version: 1;
  event_id: string;
  lamport: number;
  wall_clock: string;
  community_id: NodeID;
  author: NodeID;
  event_type: string;
  data: Record<string, unknown>;
  seq: number;
  prev: string | null;
  signature: string;
}

interface StoredEvent {
  event_id: string;
  hash: string;
  lamport: number;
  author: NodeID;
  seq: number;
  event_type: string;
  ts_ms: number;
  /** canonical size in bytes (sync batching reads it instead of re-canonicalising) */
  size: number;
  envelope: EventEnvelope;
}
interface Head {
  author: NodeID;
  /** highest seq held with no gap below it */
  seq: number;
  /** hash of the event at `seq` */
  hash: string | null;
  max_seq: number;
}

export type RejectReason = Extract<
  ErrorCode,
  | 'bad_request'
  | 'too_large'
  | 'community_mismatch'
  | 'invalid_signature'
  | 'unknown_author'
  | 'revoked_author'
  | 'out_of_order'
  | 'chain_conflict'
  | 'data_invalid'
  | 'schema_unknown'
>;
export interface ReceiveResult {
  accepted: number;
  duplicates: number;
  rejected: { event_id: string; reason: RejectReason }[];
}
export interface Heads {
  community_id: NodeID;
  authors: Record<string, { seq: number; hash: string | null }>;
}
export interface ListQuery {
  type?: string;
  author?: NodeID;
  since_ms?: number;
  until_ms?: number;
  limit?: number;
}

const TYPE_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const WALL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const chainKey = (author: string, seq: number) => `${author}|${String(seq).padStart(12, '0')}`;
/** Canonical bytes of an envelope, its size and its hash, from one canonicalisation. */
function encodeEvent(ev: EventEnvelope): { size: number; hash: string } {
  const bytes = canonical(ev);
  return { size: bytes.length, hash: `blake3:${toHex(blake3(bytes))}` };
}
export const eventHash = (ev: EventEnvelope): string => encodeEvent(ev).hash;
const wallClock = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface EventLogOptions {
  store: StorageAdapter;
  keys: KeyPair;
  community: CommunityView;
  metrics: Metrics;
  /** Is the module producing this event type enabled? (flag-gated modules cannot append while off) */
  mayProduce?: (eventType: string) => boolean;
  now?: () => number;
}

export class EventLog {
  private subs = new Set<(ev: EventEnvelope, source: NodeID | null) => void>();
  private schemas = new Map<string, Record<string, unknown>>(Object.entries(CORE_EVENT_SCHEMAS));
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private o: EventLogOptions) {}

  get communityId(): NodeID {
    return this.o.community.communityId;
  }

  /** Rebuild the membership view from the stored log (called once at open). */
  async open(): Promise<void> {
    const types = Object.keys(CORE_EVENT_SCHEMAS);
    for (const t of types) {
      const rows = await this.o.store.getAll<StoredEvent>('events', {
        index: 'by_type',
        range: { lower: [t, 0], upper: [t, Number.MAX_SAFE_INTEGER] },
      });
      for (const r of rows) this.o.community.apply(r.envelope as never);
    }
  }

  /** Register the data schema of an event type (modules do this at start, whatever their flag). */
  registerType(type: string, schema: Record<string, unknown>): void {
    if (!TYPE_RE.test(type)) throw new HnError('bad_request', `malformed event type ${type}`);
    this.schemas.set(type, schema);
  }

  subscribe(cb: (ev: EventEnvelope, source: NodeID | null) => void): () => void {
    this.subs.add(cb);
    return () => this.subs.delete(cb);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = queueTail(p); // the caller gets the error from p
    return p;
  }

  /** Append a local event: one transaction over events, chain, heads and meta. */
  append(event_type: string, data: Record<string, unknown>): Promise<EventEnvelope> {
    return this.serial(async () => {
      if (!TYPE_RE.test(event_type) || event_type.length > 128)
        throw new HnError('bad_request', `malformed event type ${event_type}`);
      if (this.o.mayProduce && !this.o.mayProduce(event_type))
        throw new HnError('experimental_disabled', `the module producing ${event_type} is disabled`);
      const schema = this.schemas.get(event_type);
      if (schema) assertSchema(schema, data, 'data_invalid');
      const me = this.o.keys.nodeId;
      const now = this.o.now?.() ?? Date.now();
      const ev = await this.o.store.transaction(
        ['events', 'chain', 'heads', 'meta'],
        'readwrite',
        async (tx) => {
          const clock = ((await tx.get<{ v: number }>('meta', 'clock'))?.v ?? 0) + 1;
          const head = (await tx.get<Head>('heads', me)) ?? { author: me, seq: 0, hash: null, max_seq: 0 };
          const unsigned = {
            schema_version: 1 as const,
            event_id: ulid(),
            lamport: clock,
            wall_clock: wallClock(now),
            community_id: this.communityId,
            author: me,
            event_type,
            data,
            seq: head.seq + 1,
            prev: head.hash,
          };
          const env = signObject(this.o.keys, unsigned) as EventEnvelope;
          const enc = encodeEvent(env);
          if (enc.size > EVENT_MAX_BYTES)
            throw new HnError('too_large', `event exceeds ${EVENT_MAX_BYTES} bytes`);
          await this.persist(tx, env, enc, now);
          await tx.put('meta', { k: 'clock', v: clock });
          return env;
        },
      );
      this.o.metrics.inc('hearthnet_events_appended_total', { type: event_type });
      this.afterStore(ev, null);
      return ev;
    });
  }

  private async persist(
    tx: Tx,
    env: EventEnvelope,
    { hash, size }: { hash: string; size: number },
    tsMs: number,
  ) {
    await tx.put('events', {
      event_id: env.event_id,
      hash,
      size,
      lamport: env.lamport,
      author: env.author,
      seq: env.seq,
      event_type: env.event_type,
      ts_ms: tsMs,
      envelope: env,
    } satisfies StoredEvent);
    await tx.put('chain', { k: chainKey(env.author, env.seq), event_id: env.event_id, hash });
    const head = (await tx.get<Head>('heads', env.author)) ?? {
      author: env.author,
      seq: 0,
      hash: null,
      max_seq: 0,
    };
    head.max_seq = Math.max(head.max_seq, env.seq);
    if (env.seq === head.seq + 1) {
      head.seq = env.seq;
      head.hash = hash;
      // fill forward over events that arrived ahead of a gap
      while (head.seq < head.max_seq) {
        const next = await tx.get<{ hash: string }>('chain', chainKey(env.author, head.seq + 1));
        if (!next) break;
        head.seq++;
        head.hash = next.hash;
      }
    }
    await tx.put('heads', head);
  }

  private afterStore(ev: EventEnvelope, source: NodeID | null) {
    if (ev.event_type.startsWith('community.')) this.o.community.apply(ev as never);
    if (!this.schemas.has(ev.event_type)) this.o.metrics.inc('hearthnet_events_unknown_type_total');
    for (const cb of this.subs) {
      try {
        cb(ev, source);
      } catch {
        /* a subscriber's failure never affects the log */
      }
    }
  }

  /** Validate and store events from a peer. Each event is judged on its own; rejects leave storage unchanged. */
  receive(events: unknown[], source: NodeID | null = null): Promise<ReceiveResult> {
    return this.serial(async () => {
      const res: ReceiveResult = { accepted: 0, duplicates: 0, rejected: [] };
      const list = Array.isArray(events) ? events : [];
      // membership events first, then by (lamport, event_id): an author's chain arrives in order
      const sorted = [...list].sort((a, b) => orderKey(a).localeCompare(orderKey(b)));
      const verdicts = await this.verifyAll(sorted);
      for (const raw of sorted) {
        const id =
          typeof (raw as EventEnvelope)?.event_id === 'string'
            ? (raw as EventEnvelope).event_id.slice(0, 32)
            : '?';
        try {
          const r = await this.receiveOne(raw, source, verdicts);
          if (r === 'duplicate') res.duplicates++;
          else res.accepted++;
        } catch (e) {
          const reason = (e instanceof HnError ? e.code : 'bad_request') as RejectReason;
          res.rejected.push({ event_id: id, reason });
          this.o.metrics.inc('hearthnet_events_rejected_total', { reason });
        }
      }
      return res;
    });
  }

  /**
   * Signatures of a whole received batch in one go (WebCrypto verifies them concurrently): the verdict of every
   * event that is well-shaped and of this community, by object. receiveOne still applies the checks in order,
   * so which error an event gets is unchanged; only the signature arithmetic moved ahead.
   */
  private async verifyAll(list: unknown[]): Promise<Map<unknown, boolean>> {
    const items: { obj: Record<string, unknown>; signer: NodeID }[] = [];
    for (const raw of list) {
      let ev: EventEnvelope;
      try {
        ev = checkShape(raw);
      } catch {
        continue;
      }
      if (ev.community_id !== this.communityId) continue;
      items.push({ obj: ev as unknown as Record<string, unknown>, signer: ev.author });
    }
    const ok = await verifyObjects(items);
    return new Map(items.map((it, i) => [it.obj, ok[i]!]));
  }

  private async receiveOne(
    raw: unknown,
    source: NodeID | null,
    verdicts: Map<unknown, boolean>,
  ): Promise<'accepted' | 'duplicate'> {
    // 1. shape, size, types
    const ev = checkShape(raw);
    let enc: { size: number; hash: string };
    try {
      enc = encodeEvent(ev);
    } catch {
      throw new HnError('bad_request', 'event is not canonicalisable');
    }
    if (enc.size > EVENT_MAX_BYTES) throw new HnError('too_large', 'event too large');
    // 2. community
    if (ev.community_id !== this.communityId)
      throw new HnError('community_mismatch', 'event of another community');
    const hash = enc.hash;
    // 3. known id
    const known = await this.o.store.get<StoredEvent>('events', ev.event_id);
    if (known) {
      if (known.hash === hash) return 'duplicate';
      throw new HnError('chain_conflict', 'same event id, different content');
    }
    // 4. signature over the envelope as received
    const verdict =
      verdicts.get(ev) ??
      (await verifyObjects([{ obj: ev as unknown as Record<string, unknown>, signer: ev.author }]))[0];
    if (!verdict) {
      this.o.metrics.inc('hearthnet_signature_failures_total', { reason: 'event' });
      throw new HnError('invalid_signature', 'event signature does not verify');
    }
    // 5. author authority
    const why = this.o.community.authorise(ev as never);
    if (why) throw new HnError(why, `author may not author ${ev.event_type}`);
    // 8. data schema of known types (before touching storage)
    const schema = this.schemas.get(ev.event_type);
    if (schema) assertSchema(schema, ev.data, 'data_invalid');
    const stored = await this.o.store.transaction(
      ['events', 'chain', 'heads', 'meta', 'conflicts'],
      'readwrite',
      async (tx) => {
        // 6. Lamport jump
        const clock = (await tx.get<{ v: number }>('meta', 'clock'))?.v ?? 0;
        if (ev.lamport > clock + LAMPORT_MAX_JUMP)
          throw new HnError('out_of_order', 'Lamport clock jumps too far');
        // 7. chain
        const same = await tx.get<{ event_id: string; hash: string }>('chain', chainKey(ev.author, ev.seq));
        if (same) {
          this.o.metrics.inc('hearthnet_events_equivocation_total');
          await tx.put('conflicts', {
            k: `${ev.author}|${ev.seq}|${hash}`,
            envelope: ev,
            other: same.event_id,
          });
          return false;
        }
        if (ev.seq > 1) {
          const pred = await tx.get<{ hash: string }>('chain', chainKey(ev.author, ev.seq - 1));
          if (pred && pred.hash !== ev.prev)
            throw new HnError('chain_conflict', 'prev does not match the predecessor');
        }
        await this.persist(tx, ev, enc, Date.parse(ev.wall_clock));
        await tx.put('meta', { k: 'clock', v: Math.max(clock, ev.lamport) });
        return true;
      },
    );
    if (!stored) throw new HnError('chain_conflict', 'another event holds this (author, seq): equivocation');
    this.afterStore(ev, source);
    return 'accepted';
  }

  async get(eventId: string): Promise<EventEnvelope | undefined> {
    return (await this.o.store.get<StoredEvent>('events', eventId))?.envelope;
  }

  /** Events in (lamport, event_id) order, filtered by type, author and wall-clock time. */
  async list(q: ListQuery = {}): Promise<EventEnvelope[]> {
    let rows: StoredEvent[];
    if (q.type)
      rows = await this.o.store.getAll('events', {
        index: 'by_type',
        range: { lower: [q.type, 0], upper: [q.type, Number.MAX_SAFE_INTEGER] },
      });
    else if (q.author)
      rows = await this.o.store.getAll('events', {
        index: 'by_author',
        range: { lower: [q.author, 0], upper: [q.author, Number.MAX_SAFE_INTEGER] },
      });
    else rows = await this.o.store.getAll('events', { index: 'by_order' });
    const out = rows.filter(
      (r) =>
        (!q.type || r.event_type === q.type) &&
        (!q.author || r.author === q.author) &&
        (q.since_ms === undefined || r.ts_ms >= q.since_ms) &&
        (q.until_ms === undefined || r.ts_ms <= q.until_ms),
    );
    out.sort(
      (a, b) => a.lamport - b.lamport || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0),
    );
    return (q.limit !== undefined ? out.slice(0, q.limit) : out).map((r) => r.envelope);
  }

  async count(): Promise<number> {
    return this.o.store.count('events');
  }

  async heads(): Promise<Heads> {
    const hs = await this.o.store.getAll<Head>('heads');
    return {
      community_id: this.communityId,
      authors: Object.fromEntries(hs.map((h) => [h.author, { seq: h.seq, hash: h.hash }])),
    };
  }

  /** What a peer with `theirs` lacks, in batches of ≤ 256 events and ≤ 1 MiB, each author's chain in seq order. */
  async *missingFor(theirs: Heads): AsyncGenerator<EventEnvelope[]> {
    const mine = await this.o.store.getAll<Head>('heads');
    let batch: EventEnvelope[] = [];
    let bytes = 0;
    for (const h of mine) {
      const have = theirs.authors[h.author]?.seq ?? 0;
      if (h.max_seq <= have) continue;
      const rows = await this.o.store.getAll<StoredEvent>('events', {
        index: 'by_author',
        range: { lower: [h.author, have + 1], upper: [h.author, Number.MAX_SAFE_INTEGER] },
      });
      for (const r of rows) {
        const size = r.size ?? canonical(r.envelope).length;
        if (batch.length >= SYNC_BATCH_MAX_EVENTS || bytes + size > SYNC_BATCH_MAX_BYTES) {
          yield batch;
          batch = [];
          bytes = 0;
        }
        batch.push(r.envelope);
        bytes += size;
      }
    }
    if (batch.length) yield batch;
  }
}

function orderKey(e: unknown): string {
  const ev = e as Partial<EventEnvelope>;
  const community = typeof ev?.event_type === 'string' && ev.event_type.startsWith('community.') ? '0' : '1';
  const lam = typeof ev?.lamport === 'number' ? String(ev.lamport).padStart(16, '0') : 'z';
  return `${lam}|${community}|${typeof ev?.event_id === 'string' ? ev.event_id : ''}`;
}

const ENVELOPE_KEYS = new Set([
  'schema_version',
  'event_id',
  'lamport',
  'wall_clock',
  'community_id',
  'author',
  'event_type',
  'data',
  'seq',
  'prev',
  'signature',
]);

function checkShape(raw: unknown): EventEnvelope {
  const bad = (why: string): never => {
    throw new HnError('bad_request', `malformed event: ${why}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad('not an object');
  const e = raw as Record<string, unknown>;
  for (const k of ENVELOPE_KEYS) if (!(k in e)) bad(`missing ${k}`);
  if (e.schema_version !== 1) bad('schema_version');
  if (typeof e.event_id !== 'string' || !ULID_RE.test(e.event_id)) bad('event_id');
  if (!Number.isSafeInteger(e.lamport) || (e.lamport as number) < 1) bad('lamport');
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) bad('seq');
  if (
    typeof e.wall_clock !== 'string' ||
    !WALL_RE.test(e.wall_clock) ||
    Number.isNaN(Date.parse(e.wall_clock))
  )
    bad('wall_clock');
  if (typeof e.community_id !== 'string' || !NODE_ID_RE.test(e.community_id)) bad('community_id');
  if (typeof e.author !== 'string' || !NODE_ID_RE.test(e.author)) bad('author');
  if (typeof e.event_type !== 'string' || e.event_type.length > 128) bad('event_type');
  if (!TYPE_RE.test(e.event_type as string)) throw new HnError('schema_unknown', 'malformed event type');
  if (!e.data || typeof e.data !== 'object' || Array.isArray(e.data)) bad('data');
  if (e.seq === 1 ? e.prev !== null : typeof e.prev !== 'string' || !CID_RE.test(e.prev)) bad('prev');
  if (typeof e.signature !== 'string' || !SIGNATURE_RE.test(e.signature)) bad('signature');
  return e as unknown as EventEnvelope;
}
