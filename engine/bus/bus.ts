/**
 * Capability bus (M03): registry of `name@MAJOR.MINOR` capabilities, feature-flag gating,
 * trust checks, schema validation, dispatch with deadlines and cancellation, streams as async
 * iterables, per-capability counters. Local calls run in-process; calls with `peer` go through
 * the injected RemoteCaller (the mesh); inbound calls from peers enter through `dispatch`.
 */
import { canonicalString } from '../core/canonical.js';
import { RATE_LIMIT_HARD_RPS_PER_CAP, RATE_LIMIT_SOFT_RPS_PER_CAP } from '../core/constants.js';
import { HnError, toHnError } from '../core/errors.js';
import { blake3Cid } from '../core/hash.js';
import { trustAtLeast, type NodeID, type TrustLevel } from '../core/types.js';
import { ulid } from '../core/ulid.js';
import type { Metrics } from '../observability/metrics.js';
import { deadline, failingIterable } from './deadline.js';
import { assertSchema, compileSchema } from './schema.js';
import type {
  CallContext,
  CallOptions,
  Capability,
  CapabilityDescriptor,
  CapabilityNamespace,
  CapabilityStats,
  RemoteCaller,
  StreamFrame,
  StreamHandler,
  UnaryHandler,
} from './types.js';

export const NAME_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
/** Core namespaces (not gated by a module flag); module namespaces come from the module list. */
export const CORE_NAMESPACES = ['llm.', 'auth.'] as const;

export interface ParsedRef {
  name: string;
  major?: number;
  minor?: number;
}
export function parseRef(ref: string): ParsedRef {
  const m = /^([^@]+)(?:@(\d{1,4})\.(\d{1,4}))?$/.exec(ref);
  if (!m || m[1]!.length > 128 || !NAME_RE.test(m[1]!))
    throw new HnError('bad_request', `malformed capability reference ${JSON.stringify(ref.slice(0, 140))}`);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, major: Number(m[2]), minor: Number(m[3]) };
}
export const refOf = (d: Pick<CapabilityDescriptor, 'name' | 'version'>) =>
  `${d.name}@${d.version[0]}.${d.version[1]}`;

export function schemaHash(d: CapabilityDescriptor): string {
  return blake3Cid({
    name: d.name,
    version: `${d.version[0]}.${d.version[1]}`,
    request_schema: d.request_schema,
    response_schema: d.response_schema,
    stream_schema: d.stream_schema,
  });
}

export interface BusOptions {
  self: NodeID;
  /** Is this module's feature flag on? */
  isEnabled: (module: string) => boolean;
  /** capability prefixes owned by modules (derived from the module list; default: none) */
  namespaces?: () => readonly CapabilityNamespace[];
  /** Community level of a peer: null = not a member, 'revoked' = revoked. */
  levelOf: (node: NodeID) => TrustLevel | 'revoked' | null;
  metrics: Metrics;
  remote?: RemoteCaller;
  now?: () => number;
}

interface Entry extends Capability {
  hash: string;
  stats: CapabilityStats;
}

/** Caller identity of one dispatch: local (self) or an authenticated peer. */
export interface Origin {
  caller: NodeID;
  isLocal: boolean;
  traceId?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: CallOptions['onProgress'];
}

export class Bus {
  private entries = new Map<string, Entry[]>(); // name → entries sorted by version desc
  private rate = new Map<string, { second: number; n: number }>();
  private listeners = new Set<() => void>();
  remote?: RemoteCaller;

  constructor(private o: BusOptions) {
    if (o.remote) this.remote = o.remote;
  }

  // ---------- registry ----------

  register(cap: Capability): void {
    const d = cap.descriptor;
    if (typeof d.name !== 'string' || d.name.length > 128 || !NAME_RE.test(d.name))
      throw new HnError(
        'namespace_violation',
        `capability name ${JSON.stringify(d.name)} is not a dotted lowercase name`,
      );
    const mod = this.moduleOf(d.name);
    if (!mod && !CORE_NAMESPACES.some((p) => d.name.startsWith(p)))
      throw new HnError('namespace_violation', `capability ${d.name} is outside the registrable namespaces`);
    if (mod && d.module !== mod)
      throw new HnError(
        'namespace_violation',
        `capability ${d.name} belongs to module ${mod}, not ${d.module}`,
      );
    if (mod && !this.o.isEnabled(mod))
      throw new HnError('experimental_disabled', `module ${mod} is disabled`);
    if (
      !Array.isArray(d.version) ||
      d.version.length !== 2 ||
      !d.version.every((x) => Number.isInteger(x) && x >= 0) ||
      !(d.max_concurrent >= 1) ||
      !(d.timeout_seconds > 0)
    )
      throw new HnError('schema_invalid', `descriptor of ${d.name} is invalid`);
    compileSchema(d.request_schema);
    if (d.response_schema) compileSchema(d.response_schema);
    if (d.stream_schema) compileSchema(d.stream_schema);
    const isStream = d.stream_schema !== null;
    const isGen = cap.handler.constructor?.name === 'AsyncGeneratorFunction';
    if (isStream !== isGen && cap.handler.constructor?.name !== 'Function')
      throw new HnError(
        'schema_invalid',
        `${d.name}: stream_schema must be set exactly for streaming handlers`,
      );

    const hash = schemaHash(d);
    const list = this.entries.get(d.name) ?? [];
    const same = list.find(
      (e) => e.descriptor.version[0] === d.version[0] && e.descriptor.version[1] === d.version[1],
    );
    if (same) {
      if (same.hash === hash && descriptorKey(same.descriptor) === descriptorKey(d)) return; // identical: no-op
      throw new HnError('duplicate', `${refOf(d)} is already registered with a different descriptor`);
    }
    list.push({ ...cap, hash, stats: { calls: 0, errors: 0, in_flight: 0, latency_ms_total: 0 } });
    list.sort(
      (a, b) =>
        b.descriptor.version[0] - a.descriptor.version[0] ||
        b.descriptor.version[1] - a.descriptor.version[1],
    );
    this.entries.set(d.name, list);
    this.changed();
  }

  unregister(name: string, version?: [number, number]): void {
    const list = this.entries.get(name);
    if (!list) return;
    const rest = version
      ? list.filter((e) => e.descriptor.version[0] !== version[0] || e.descriptor.version[1] !== version[1])
      : [];
    if (rest.length) this.entries.set(name, rest);
    else this.entries.delete(name);
    this.changed();
  }

  /** Which module's flag gates a capability name; null = a core capability. */
  moduleOf(name: string): string | null {
    return this.o.namespaces?.().find((n) => name.startsWith(n.prefix))?.module ?? null;
  }

  /** Drop every capability owned by a module (used when its flag goes off). */
  unregisterModule(module: string): void {
    for (const [name, list] of [...this.entries]) {
      const rest = list.filter((e) => e.descriptor.module !== module);
      if (rest.length === list.length) continue;
      if (rest.length) this.entries.set(name, rest);
      else this.entries.delete(name);
    }
    this.changed();
  }

  has(ref: string): boolean {
    try {
      this.lookup(parseRef(ref));
      return true;
    } catch {
      return false;
    }
  }

  /** Registered capabilities with their schema hashes (what a manifest advertises). */
  list(): {
    ref: string;
    name: string;
    version: string;
    stability: string;
    module: string;
    schema_hash: string;
    stream: boolean;
    trust_required: string;
  }[] {
    const out = [];
    for (const list of this.entries.values())
      for (const e of list)
        out.push({
          ref: refOf(e.descriptor),
          name: e.descriptor.name,
          version: `${e.descriptor.version[0]}.${e.descriptor.version[1]}`,
          stability: e.descriptor.stability,
          module: e.descriptor.module,
          schema_hash: e.hash,
          stream: e.descriptor.stream_schema !== null,
          trust_required: e.descriptor.trust_required,
        });
    return out.sort((a, b) => (a.ref < b.ref ? -1 : 1));
  }

  descriptor(ref: string): CapabilityDescriptor | undefined {
    try {
      return this.lookup(parseRef(ref)).descriptor;
    } catch {
      return undefined;
    }
  }

  stats(): Record<string, CapabilityStats> {
    const out: Record<string, CapabilityStats> = {};
    for (const list of this.entries.values()) for (const e of list) out[refOf(e.descriptor)] = { ...e.stats };
    return out;
  }

  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  private changed() {
    for (const cb of this.listeners) cb();
  }

  private lookup(r: ParsedRef): Entry {
    const list = this.entries.get(r.name);
    if (!list?.length) throw new HnError('not_found', `capability ${r.name} is not offered here`);
    if (r.major === undefined) return list[0]!;
    const hit = list.find((e) => e.descriptor.version[0] === r.major && e.descriptor.version[1] >= r.minor!);
    if (!hit)
      throw new HnError('schema_mismatch', `no compatible version of ${r.name}@${r.major}.${r.minor}`, {
        alt_capabilities: list.map((e) => refOf(e.descriptor)),
      });
    return hit;
  }

  private flagCheck(name: string) {
    const mod = this.moduleOf(name);
    if (mod && !this.o.isEnabled(mod)) {
      this.o.metrics.inc('hearthnet_experimental_disabled_total', { capability: name });
      throw new HnError('experimental_disabled', `module ${mod} is disabled on this node`);
    }
  }

  // ---------- calls ----------

  /** Unary call, local or (with `opts.peer`) remote. Resolves to the output or throws HnError. */
  async call(ref: string, input: unknown, opts: CallOptions = {}): Promise<any> {
    const r = parseRef(ref);
    this.flagCheck(r.name); // outbound calls to a disabled prefix fail here too
    if (opts.peer && opts.peer !== this.o.self) {
      if (!this.remote) throw new HnError('partition', 'no link layer attached');
      return this.remote.call(opts.peer, { name: r.name, version: versionText(r) }, input, opts);
    }
    return this.dispatch(ref, input, localOrigin(this.o.self, opts));
  }

  /** Streaming call: yields frames in order; the last one is `done`; a terminal `error` is thrown as HnError. */
  stream(ref: string, input: unknown, opts: CallOptions = {}): AsyncIterable<StreamFrame> {
    const r = parseRef(ref);
    this.flagCheck(r.name);
    if (opts.peer && opts.peer !== this.o.self) {
      if (!this.remote) throw new HnError('partition', 'no link layer attached');
      return this.remote.stream(opts.peer, { name: r.name, version: versionText(r) }, input, opts);
    }
    return this.dispatchStream(ref, input, localOrigin(this.o.self, opts));
  }

  /** Metrics label for a reference a caller chose: the registered ref, else one shared label. */
  private labelOf(ref: string): string {
    return this.has(ref) ? ref : '_unregistered';
  }

  /** Rate limit for inbound calls: 'soft' → rate_limited, 'hard' → drop without reply. */
  rateCheck(peer: NodeID, name: string): 'ok' | 'soft' | 'hard' {
    const now = Math.floor((this.o.now?.() ?? Date.now()) / 1000);
    const key = `${peer}|${name}`;
    let b = this.rate.get(key);
    if (!b || b.second !== now) {
      if (this.rate.size > 10_000) this.rate.clear();
      this.rate.set(key, (b = { second: now, n: 0 }));
    }
    b.n++;
    if (b.n > RATE_LIMIT_HARD_RPS_PER_CAP) {
      this.o.metrics.inc('hearthnet_rate_limited_total', { capability: name, reason: 'hard' });
      return 'hard';
    }
    if (b.n > RATE_LIMIT_SOFT_RPS_PER_CAP) {
      this.o.metrics.inc('hearthnet_rate_limited_total', { capability: name, reason: 'soft' });
      return 'soft';
    }
    return 'ok';
  }

  /** Checks shared by unary and streaming dispatch: flag, lookup, trust, schema, concurrency. */
  private admit(ref: string, input: unknown, origin: Origin, wantStream: boolean): Entry {
    const r = parseRef(ref);
    this.flagCheck(r.name);
    const e = this.lookup(r);
    const d = e.descriptor;
    if ((d.stream_schema !== null) !== wantStream)
      throw new HnError(
        'bad_request',
        `${refOf(d)} is ${d.stream_schema ? 'a streaming' : 'a unary'} capability`,
      );
    // trust
    if (d.trust_required === 'self') {
      if (!origin.isLocal) throw new HnError('unauthorized', `${d.name} may only be called by this node`);
    } else {
      const lvl = origin.isLocal ? this.o.levelOf(this.o.self) : this.o.levelOf(origin.caller);
      if (lvl === 'revoked') throw new HnError('revoked', 'the caller has been revoked');
      if (lvl === null) {
        if (!(origin.isLocal || d.trust_required === 'unknown'))
          throw new HnError('unauthorized', 'the caller is not a member');
      } else if (!trustAtLeast(lvl, d.trust_required)) {
        throw new HnError('unauthorized', `${d.name} needs trust level ${d.trust_required}`);
      }
    }
    assertSchema(d.request_schema, input, 'schema_mismatch', { schema_hash_expected: e.hash });
    if (e.stats.in_flight >= d.max_concurrent)
      throw new HnError(
        'capacity_exceeded',
        `${d.name} is at its limit of ${d.max_concurrent} concurrent calls`,
        {
          retry_after_ms: 1000,
        },
      );
    return e;
  }

  private context(e: Entry, origin: Origin, signal: AbortSignal, deadlineMs: number): CallContext {
    const lvl = origin.isLocal ? this.o.levelOf(this.o.self) : this.o.levelOf(origin.caller);
    return {
      signal,
      caller: origin.caller,
      callerLevel: lvl === null || lvl === 'revoked' ? 'unknown' : lvl,
      isLocal: origin.isLocal,
      traceId: origin.traceId ?? ulid(),
      deadlineMs,
      progress: (current, total, stage) => origin.onProgress?.({ current, total, stage }),
    };
  }

  private record(e: Entry, ok: boolean, ms: number, code?: string) {
    const name = refOf(e.descriptor);
    e.stats.calls++;
    e.stats.latency_ms_total += ms;
    if (!ok) e.stats.errors++;
    this.o.metrics.inc('hearthnet_requests_total', {
      capability: name,
      result: ok ? 'ok' : (code ?? 'error'),
    });
    this.o.metrics.observe('hearthnet_request_duration_ms', { capability: name }, ms);
  }

  /** Run a unary capability for a local or authenticated remote origin. */
  async dispatch(ref: string, input: unknown, origin: Origin): Promise<any> {
    let e: Entry;
    try {
      e = this.admit(ref, input, origin, false);
    } catch (err) {
      this.o.metrics.inc('hearthnet_requests_total', {
        capability: this.labelOf(ref),
        result: toHnError(err).code,
      });
      throw err;
    }
    const d = e.descriptor;
    const { signal, deadlineMs, dispose, aborted } = deadline(d, origin, this.o.now);
    e.stats.in_flight++;
    const t0 = performance.now();
    try {
      const out = await Promise.race([
        (e.handler as UnaryHandler)(input, this.context(e, origin, signal, deadlineMs)),
        aborted,
      ]);
      if (d.response_schema) {
        try {
          assertSchema(d.response_schema, out, 'internal_error');
        } catch {
          throw new HnError('internal_error', `${d.name} produced an invalid response`);
        }
      }
      this.record(e, true, performance.now() - t0);
      return out;
    } catch (err) {
      const he = toHnError(signal.aborted && !(err instanceof HnError) ? signal.reason : err);
      this.record(e, false, performance.now() - t0, he.code);
      throw he;
    } finally {
      e.stats.in_flight--;
      dispose();
    }
  }

  /** Run a streaming capability; frames come out in order, ending with `done` (or a thrown HnError). */
  dispatchStream(ref: string, input: unknown, origin: Origin): AsyncIterable<StreamFrame> {
    const self = this;
    let e: Entry;
    try {
      e = this.admit(ref, input, origin, true);
    } catch (err) {
      this.o.metrics.inc('hearthnet_requests_total', {
        capability: this.labelOf(ref),
        result: toHnError(err).code,
      });
      return failingIterable(err);
    }
    return {
      [Symbol.asyncIterator]: async function* () {
        const d = e.descriptor;
        const { signal, deadlineMs, dispose, aborted } = deadline(d, origin, self.o.now);
        e.stats.in_flight++;
        const t0 = performance.now();
        const gen = (e.handler as StreamHandler)(input, self.context(e, origin, signal, deadlineMs));
        let finished = false;
        try {
          while (true) {
            const step = await Promise.race([gen.next(), aborted]);
            if (step.done) {
              finished = true;
              const data = step.value ?? {};
              self.record(e, true, performance.now() - t0);
              yield { event: 'done', data };
              return;
            }
            const f = step.value;
            if (d.stream_schema && f.event !== 'progress') {
              try {
                assertSchema(d.stream_schema, f, 'internal_error');
              } catch {
                throw new HnError('internal_error', `${d.name} produced an invalid stream frame`);
              }
            }
            yield f;
          }
        } catch (err) {
          finished = true;
          const he = toHnError(signal.aborted && !(err instanceof HnError) ? signal.reason : err);
          self.record(e, false, performance.now() - t0, he.code);
          throw he;
        } finally {
          e.stats.in_flight--;
          dispose();
          if (!finished) {
            // consumer stopped early (cancel): abort the handler and let it settle
            void gen.return(undefined).catch((e: unknown) =>
              // the handler failed while being cancelled: counted, the caller has gone already
              self.o.metrics.inc('hearthnet_stream_cancel_errors_total', {
                capability: d.name,
                code: toHnError(e).code,
              }),
            );
          }
        }
      },
    };
  }
}

function versionText(r: ParsedRef): string {
  return r.major === undefined ? '' : `${r.major}.${r.minor}`;
}

function descriptorKey(d: CapabilityDescriptor): string {
  const { request_schema: _a, response_schema: _b, stream_schema: _c, description: _e, ...rest } = d;
  return canonicalString(rest);
}

function localOrigin(self: NodeID, opts: CallOptions): Origin {
  const o: Origin = { caller: self, isLocal: true };
  if (opts.trace_id) o.traceId = opts.trace_id;
  if (opts.timeout_ms !== undefined) o.timeoutMs = opts.timeout_ms;
  if (opts.signal) o.signal = opts.signal;
  if (opts.onProgress) o.onProgress = opts.onProgress;
  return o;
}
