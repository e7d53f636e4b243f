/**
 * M32 protocol service: the five stable `protocol.*` capabilities, the three `protocol.*` events,
 * the signed self descriptor, the implementation registry, self-signed conformance reports and
 * version negotiation on the peer-link hello (through the session's LinkProtocolHook).
 */
import type { CallContext, Capability } from '../bus/types.js';
import { CONTRACT_VERSION } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { ModuleComponents, ModuleDefinition } from '../modules/module.js';
import { descriptor } from '../modules/registry.js';
import type { LinkProtocolHook } from '../net/session.js';
import { canonicalString } from '../core/canonical.js';
import { blake3Cid } from '../core/hash.js';
import { PROTOCOL_SCHEMA_VERSION } from './catalog.js';
import { CAPABILITIES, config, PROTOCOL_EVENT_TYPES } from './config.js';
import {
  describeContent,
  descriptorCid,
  tierMismatches,
  validateDescriptor,
  type ImplementationDescriptor,
  type ImplementationInfo,
} from './descriptor.js';
import { ProtocolRegistry, type Origin } from './registry.js';
import {
  assertSemver,
  REPORTS_KEPT,
  reportCid,
  summary,
  validateReport,
  type ConformanceReport,
  type ConformanceRunner,
  type StoredReport,
} from './report.js';
import { negotiate, parseVersion, sortDescending } from './version.js';

export const IMPLEMENTATION: ImplementationInfo = {
  name: 'hearthnet-web',
  vendor: 'HearthNet community',
  version: '0.1.0',
  homepage_url: null,
  contact: null,
  commit: null,
};

export { PROTOCOL_EVENT_TYPES };
type Components = ModuleComponents<typeof config>;

/** Contract-track versions this build speaks (capability contract, not the protocol version). */
export const CONTRACT_VERSIONS = ['1.0', '2.0', CONTRACT_VERSION];
const DESCRIBE_PER_MIN = 60;
const ANNOUNCE_PER_MIN = 10;

export interface ProtocolModuleOptions {
  /** installed X09 runner (Node test builds); without it `run` answers protocol_suite_not_installed */
  runner?: ConformanceRunner;
  implementation?: Partial<ImplementationInfo>;
  now?: () => number;
  /** log sink for configuration warnings (tier mismatch) */
  warn?: (line: string, data: Record<string, unknown>) => void;
}

/** Read-only view a host (app, harness) may use; the bus remains the API. */
export interface ProtocolState {
  registry: ProtocolRegistry;
  tierWarnings: { name: string; registered: string; protocol: string | null }[];
}

const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

class MinuteLimiter {
  private hits = new Map<string, number[]>();
  constructor(
    private limit: number,
    private now: () => number,
  ) {}
  check(key: string) {
    const t = this.now();
    const list = (this.hits.get(key) ?? []).filter((x) => x > t - 60_000);
    if (list.length >= this.limit) {
      this.hits.set(key, list);
      throw new HnError('rate_limited', `more than ${this.limit} calls per minute`, {
        retry_after_ms: Math.max(1, list[0]! + 60_000 - t),
      });
    }
    list.push(t);
    if (this.hits.size > 10_000) this.hits.clear();
    this.hits.set(key, list);
  }
}

/** The M32 module definition (the built-in one is `createProtocolModule()`; tests inject a runner). */
export function createProtocolModule(
  opts: ProtocolModuleOptions = {},
): ModuleDefinition<'protocol', typeof config> & { state(): ProtocolState | null } {
  let last: ProtocolState | null = null;
  let live: (() => ProtocolState | null) | null = null;
  return {
    name: 'protocol',
    seedId: 'M32',
    config,
    namespace: 'protocol.',
    capabilityNames: CAPABILITIES,
    events: PROTOCOL_EVENT_TYPES.map((type) => ({ type })),
    view: {
      title: 'Protocol',
      blurb: 'Versions, self-description and the implementation registry (M32).',
      icon: '📜',
    },
    create(c) {
      const inst = protocolInstance(c, opts);
      live = inst.state;
      return inst;
    },
    state: () => (live ? (last = live()) : last),
  };
}

function protocolInstance(c: Components, opts: ProtocolModuleOptions) {
  const now = opts.now ?? c.clock.now;
  const impl: ImplementationInfo = { ...IMPLEMENTATION, ...opts.implementation };
  let ctx: Components | null = null;
  let registry: ProtocolRegistry | null = null;
  let reports: StoredReport[] = [];
  let current: { content: string; descriptor: ImplementationDescriptor } | null = null;
  let tierWarnings: ProtocolState['tierWarnings'] = [];
  let offBus: (() => void) | null = null;
  let announceTimer: (() => void) | null = null;
  let lastAnnounced = '';
  let stopped = false;
  let linked = false;
  const describeLimit = new MinuteLimiter(DESCRIBE_PER_MIN, now);
  const announceLimit = new MinuteLimiter(ANNOUNCE_PER_MIN, now);

  const need = (): [Components, ProtocolRegistry] => {
    if (!ctx || !registry) throw new HnError('not_implemented', 'protocol service is not started');
    return [ctx, registry];
  };

  /** The signed self descriptor; re-signed (new issued_at) only when its content changes. */
  function selfDescriptor(): ImplementationDescriptor {
    const [c] = need();
    const content = describeContent(c.bus, c.config(), c.modules(), c.self, impl);
    const key = canonicalString(content);
    if (!current || current.content !== key) {
      const issued = rfc3339(now());
      const d = c.sign({ ...content, issued_at: issued }) as unknown as ImplementationDescriptor;
      current = { content: key, descriptor: d };
      registry!.upsert(d, { source: c.self, origin: 'self', compatible: true, agreed_version: null });
    }
    return current.descriptor;
  }

  async function emit(type: (typeof PROTOCOL_EVENT_TYPES)[number], data: Record<string, unknown>) {
    if (stopped || !ctx) return;
    try {
      await ctx.events.append(type, data);
    } catch (e) {
      // the node is closing, or the log refused: the capability result stands
      ctx.log.warn('protocol event not appended', { event_type: type, error: e as Error });
    }
  }

  function upsert(
    d: ImplementationDescriptor,
    meta: { source: NodeID; origin: Origin; compatible: boolean; agreed_version: string | null },
  ) {
    const [, reg] = need();
    const r = reg.upsert(d, meta);
    if (r.newTriple && d.node_id !== ctx!.self)
      void emit('protocol.registry.updated', {
        name: d.name,
        vendor: d.vendor,
        version: d.version,
        first_source: meta.source,
        change: r.newTriple,
      });
    return r;
  }

  async function announceSelf() {
    if (stopped || !ctx || !ctx.config().announce_to_peers) return;
    const d = selfDescriptor();
    if (current!.content === lastAnnounced) return;
    lastAnnounced = current!.content;
    // announce once per content, across restarts (a reopened node with the same surface stays quiet)
    const key = blake3Cid(lastAnnounced);
    if ((await ctx.kv.get<string>('protocol.last_announced')) === key) return;
    await ctx.kv.put('protocol.last_announced', key);
    await emit('protocol.descriptor.announced', {
      node_id: d.node_id,
      name: d.name,
      vendor: d.vendor,
      version: d.version,
      protocol_versions: d.protocol_versions.slice(0, 16),
      descriptor_cid: descriptorCid(d),
    });
  }

  const linkHook: LinkProtocolHook = {
    offer() {
      const [c] = need();
      const versions = [...c.config().supported_versions];
      return c.config().announce_to_peers
        ? { protocol_versions: versions, descriptor: selfDescriptor() as Record<string, unknown> }
        : { protocol_versions: versions };
    },
    onPeerHello(peer, hello) {
      const [c] = need();
      const offered = Array.isArray(hello.protocol_versions)
        ? hello.protocol_versions
        : hello.descriptor && typeof hello.descriptor === 'object'
          ? ((hello.descriptor as { protocol_versions?: unknown }).protocol_versions as unknown[])
          : undefined;
      if (offered === undefined) return { ok: true, agreed: null }; // peer without M32: nothing to negotiate
      const n = negotiate(c.config().supported_versions, Array.isArray(offered) ? offered : []);
      let desc: ImplementationDescriptor | null = null;
      if (hello.descriptor !== undefined) {
        try {
          desc = validateDescriptor(hello.descriptor);
          if (desc.node_id !== peer) desc = null;
        } catch (e) {
          c.log.info('peer hello carried an invalid descriptor', { peer, error: e as Error });
          desc = null;
        }
      }
      if (desc) {
        try {
          announceLimit.check(`hello|${peer}`);
          upsert(desc, {
            source: peer,
            origin: 'peer',
            compatible: n.ok,
            agreed_version: n.ok ? n.agreed : null,
          });
        } catch (e) {
          // rate limited: the link still negotiates
          c.log.debug('peer descriptor not recorded', { peer, error: e as Error });
        }
      }
      if (!n.ok)
        return {
          ok: false,
          code: n.error,
          reason:
            n.error === 'protocol_unsupported_capability'
              ? 'protocol_unsupported_capability: no common protocol major'
              : 'protocol_descriptor_invalid: no parseable protocol version',
        };
      if (!linked) {
        linked = true;
        c.clock.setTimeout(() => void announceSelf(), 0);
      }
      return { ok: true, agreed: n.agreed };
    },
  };

  function requireLocal(c: CallContext, what: string) {
    if (!c.isLocal) throw new HnError('unauthorized', `${what} may only be done by this node's operator`);
  }

  async function storeReport(unsigned: ConformanceReport): Promise<StoredReport> {
    const [c] = need();
    const { signature: _s, signed: _f, ...rest } = unsigned;
    const signed = c.sign({ ...rest, signed: true }) as unknown as ConformanceReport;
    const cid = reportCid(signed);
    const s: StoredReport = { report: signed, report_cid: cid, stored_at: now() };
    reports = [s, ...reports.filter((r) => r.report_cid !== cid)].slice(0, REPORTS_KEPT);
    await c.kv.put('protocol.reports', reports);
    await emit('protocol.conformance.ran', {
      report_cid: cid,
      suite_version: signed.suite_version,
      protocol_version: signed.protocol_version ?? c.config().default_announce_version,
      overall: signed.overall,
      passed: signed.totals.passed,
      failed: signed.totals.failed,
      skipped: signed.totals.skipped,
    });
    return s;
  }

  const caps = (): Capability[] => [
    {
      descriptor: descriptor('protocol.version.list', 'protocol', {
        trust_required: 'unknown',
        idempotent: true,
      }),
      handler: async (_input: unknown, call: CallContext) => {
        if (!call.isLocal) describeLimit.check(`version|${call.caller}`);
        const p = c.config();
        const passed = reports
          .filter((r) => r.report.overall === 'pass' || r.report.overall === 'partial')
          .map((r) => ({
            suite_version: r.report.suite_version,
            protocol_version: r.report.protocol_version ?? p.default_announce_version,
            overall: r.report.overall,
            report_cid: r.report_cid,
          }));
        return {
          protocol_versions: sortDescending(p.supported_versions),
          current: p.default_announce_version,
          contract_versions: [...CONTRACT_VERSIONS],
          suites_passed: passed,
          implementation: { name: impl.name, version: impl.version, commit: impl.commit },
        };
      },
    },
    {
      descriptor: descriptor('protocol.self.describe', 'protocol', {
        trust_required: 'unknown',
        idempotent: true,
      }),
      handler: async (_input: unknown, call: CallContext) => {
        if (!call.isLocal) describeLimit.check(`describe|${call.caller}`);
        return selfDescriptor();
      },
    },
    {
      descriptor: descriptor('protocol.registry.list', 'protocol', {
        trust_required: 'member',
        idempotent: true,
      }),
      handler: async (input: { name?: string; vendor?: string; limit?: number; cursor?: string }) => {
        const [, reg] = need();
        selfDescriptor(); // the own entry is always current
        return reg.list(input);
      },
    },
    {
      descriptor: descriptor('protocol.registry.announce', 'protocol', { trust_required: 'member' }),
      handler: async (input: { descriptor: unknown }, call: CallContext) => {
        if (!call.isLocal) announceLimit.check(`announce|${call.caller}`);
        const d = validateDescriptor(input.descriptor);
        if (!call.isLocal && call.caller !== d.node_id)
          throw new HnError('unauthorized', 'a peer may only announce its own descriptor');
        if (d.node_id === c.self && call.isLocal)
          throw new HnError('bad_request', 'the own descriptor is maintained by the node itself');
        const compat = negotiate(c.config().supported_versions, d.protocol_versions);
        const origin: Origin = call.isLocal ? 'operator' : 'peer';
        const r = upsert(d, {
          source: call.caller,
          origin,
          compatible: compat.ok,
          agreed_version: compat.ok ? compat.agreed : null,
        });
        return { accepted: true, key: r.entry.key, change: r.change, registry_size: registry!.size };
      },
    },
    {
      descriptor: descriptor('protocol.conformance.report', 'protocol', { trust_required: 'member' }),
      handler: async (
        input: { action?: string; suite_version?: string; protocol_version?: string; report?: unknown },
        call: CallContext,
      ) => {
        const action = input.action ?? 'latest';
        if (input.suite_version !== undefined) assertSemver(input.suite_version, 'suite_version');
        if (input.protocol_version !== undefined) {
          const pv = parseVersion(input.protocol_version);
          if (!pv || !c.config().supported_versions.includes(input.protocol_version))
            throw new HnError(
              'protocol_version_unknown',
              `protocol version ${String(input.protocol_version).slice(0, 70)} is not supported here`,
            );
        }
        if (action === 'submit') {
          requireLocal(call, 'submit');
          if (input.report === undefined)
            throw new HnError('bad_request', 'submit needs a report', { field: 'report' });
          return summary(await storeReport(validateReport(input.report, c.self)));
        }
        if (action === 'run') {
          requireLocal(call, 'run');
          if (!opts.runner)
            throw new HnError('protocol_suite_not_installed', 'no conformance runner in this build');
          const rep = await opts.runner({
            ...(input.suite_version ? { suite_version: input.suite_version } : {}),
            ...(input.protocol_version ? { protocol_version: input.protocol_version } : {}),
          });
          return summary(await storeReport(validateReport(rep, c.self)));
        }
        const hit = reports.find(
          (r) =>
            (!input.suite_version || r.report.suite_version === input.suite_version) &&
            (!input.protocol_version || r.report.protocol_version === input.protocol_version),
        );
        if (!hit)
          throw new HnError(
            'protocol_suite_not_installed',
            opts.runner
              ? 'no stored report yet: call with action "run"'
              : 'no conformance report is stored and no runner is installed',
          );
        return summary(hit);
      },
    },
  ];

  return {
    capabilities: () => {
      ctx = c;
      return caps();
    },
    async start() {
      ctx = c;
      stopped = false;
      registry = new ProtocolRegistry(() => c.config().registry_max_entries, now);
      current = null;
      lastAnnounced = '';
      reports = ((await c.kv.get<StoredReport[]>('protocol.reports')) ?? []).filter(
        (r) => r && typeof r.report_cid === 'string',
      );
      selfDescriptor();
      tierWarnings = tierMismatches(c.bus);
      for (const w of tierWarnings) {
        c.log.warn('capability tier differs from the protocol index', { ...w });
        opts.warn?.('protocol.tier_mismatch', { ...w });
      }
      c.setLinkHook(linkHook);
      // the announcement is for peers: it is appended when the first link negotiates (see linkHook)
      linked = false;
      // the descriptor follows the bus: re-announce (debounced) when modules come and go
      offBus = c.bus.onChange(() => {
        announceTimer?.();
        announceTimer = c.clock.setTimeout(() => {
          announceTimer = null;
          if (stopped) return;
          tierWarnings = tierMismatches(c.bus);
          if (linked) void announceSelf();
        }, 20);
      });
    },
    stop() {
      stopped = true;
      offBus?.();
      offBus = null;
      announceTimer?.();
      announceTimer = null;
      ctx?.setLinkHook(null);
    },
    state: (): ProtocolState | null => (registry ? { registry, tierWarnings } : null),
  };
}

export { PROTOCOL_SCHEMA_VERSION };
