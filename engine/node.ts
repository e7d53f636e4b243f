/**
 * Composition root: `createNode(options)` wires identity, config, storage, bus, event log,
 * modules and peer sessions into one node. The same code runs in a browser tab and in Node.
 */
import { Bus } from './bus/bus.js';
import type { CallOptions, StreamFrame } from './bus/types.js';
import {
  configFromToml,
  configToToml,
  defaultConfig,
  diffConfig,
  MODULE_SECTIONS,
  resolveConfig,
  type ConfigPatch,
  type HearthnetConfig,
  type ModuleName,
} from './core/config.js';
import { moduleOfEventType } from './core/catalogue.js';
import { HnError } from './core/errors.js';
import type { NodeID, TrustLevel } from './core/types.js';
import { EventLog, type EventEnvelope, type ListQuery, type ReceiveResult } from './events/log.js';
import { CommunityView } from './identity/community.js';
import {
  generateKeyPair,
  keyPairFromSeed,
  parseNodeId,
  shortNodeId,
  signObject,
  type KeyPair,
} from './identity/identity.js';
import { unbuiltModule, type ModuleContext, type ModuleDef } from './modules/registry.js';
import type { BytePort } from './net/port.js';
import { Mesh, type JoinOptions } from './net/mesh.js';
import { PeerSession, type LinkInfo, type LinkProtocolHook } from './net/session.js';
import { Metrics } from './observability/metrics.js';
import { createProtocolModule } from './protocol/service.js';
import { TensorHost } from './transport/tensor/host.js';
import { CORE_SCHEMA } from './store/core-schema.js';
import { openIndexedDbStorage } from './store/indexeddb.js';
import { openMemoryStorage } from './store/memory.js';
import type { StorageAdapter, StorageFactory } from './store/types.js';

export interface NodeOptions {
  /** 'memory' (default under Node), 'indexeddb', or a factory */
  storage?: 'memory' | 'indexeddb' | StorageFactory;
  /** database name; default `hearthnet-0` for IndexedDB, a fresh name for memory */
  name?: string;
  /** fixed 32-byte identity seed (tests, conformance vectors); otherwise generated once and persisted */
  seed?: Uint8Array;
  /** config patch applied over the stored config (validated) */
  config?: ConfigPatch;
  /** extra modules (built modules replace the `not_implemented` placeholders) */
  modules?: ModuleDef[];
  heartbeatMs?: number;
  missedHeartbeats?: number;
  now?: () => number;
}

export interface PeerInfo {
  id: NodeID;
  short_id: string;
  link: 'direct' | 'relay' | 'memory';
  rtt_ms: number | null;
  state: 'handshaking' | 'open' | 'gone' | 'closed';
  /** protocol version agreed in the link hello (M32), null when none was negotiated */
  agreed_version: string | null;
}

export interface EventsApi {
  append(type: string, data: Record<string, unknown>): Promise<EventEnvelope>;
  list(q?: ListQuery): Promise<EventEnvelope[]>;
  get(id: string): Promise<EventEnvelope | undefined>;
  count(): Promise<number>;
  heads(): ReturnType<EventLog['heads']>;
  receive(events: unknown[]): Promise<ReceiveResult>;
  /** sync with one peer (or all connected peers) */
  sync(peer?: NodeID): Promise<{ sent: number; received: number }>;
  subscribe(cb: (ev: EventEnvelope) => void): () => void;
}

export interface HearthNode {
  readonly id: NodeID;
  readonly shortId: string;
  readonly config: HearthnetConfig;
  readonly communityId: NodeID;
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly events: EventsApi;
  readonly configWarnings: string[];
  call(capability: string, input: unknown, opts?: CallOptions): Promise<any>;
  stream(capability: string, input: unknown, opts?: CallOptions): AsyncIterable<StreamFrame>;
  enable(module: ModuleName): Promise<void>;
  disable(module: ModuleName): Promise<void>;
  setConfig(patch: ConfigPatch): Promise<HearthnetConfig>;
  exportConfigToml(): string;
  /** parse, validate and (unless `dryRun`) save a TOML config; returns the field diff */
  importConfigToml(
    text: string,
    opts?: { dryRun?: boolean },
  ): Promise<{ field: string; from: unknown; to: unknown }[]>;
  onConfigChange(cb: (c: HearthnetConfig) => void): () => void;
  /** attach a link (any BytePort) to a peer; resolves when the handshake is done */
  connect(port: BytePort, info: LinkInfo): Promise<PeerSession>;
  peers(): PeerInfo[];
  /** join the community room at a relay: discover peers, link directly (WebRTC) or through the relay */
  joinRelay(opts: JoinOptions): Promise<void>;
  leaveRelay(): void;
  /** relay connection state, or null when not joined */
  relayState(): string | null;
  session(peer: NodeID): PeerSession | undefined;
  levelOf(node: NodeID): TrustLevel | 'revoked' | null;
  /** X08 tensor sessions on peer links, authorised through the bus (gated by tensor_transport.enabled) */
  readonly tensors: TensorHost;
  close(): Promise<void>;
}

let memoryCounter = 0;

export async function createNode(options: NodeOptions = {}): Promise<HearthNode> {
  const kind = options.storage ?? 'memory';
  const factory: StorageFactory =
    kind === 'memory' ? openMemoryStorage : kind === 'indexeddb' ? openIndexedDbStorage : kind;
  const dbName =
    options.name ??
    (kind === 'indexeddb'
      ? 'hearthnet-0'
      : `hearthnet-mem-${Date.now()}-${++memoryCounter}-${Math.random().toString(36).slice(2)}`);
  const store: StorageAdapter = await factory(dbName, CORE_SCHEMA);

  // identity: generated once, persisted; a stored key wins over nothing, a given seed must match it
  const keys = await loadKeys(store, options.seed);

  // config: defaults ⊕ stored ⊕ options (validated)
  const stored = await store.get<{ k: string; config: unknown }>('config', 'current');
  const loaded = resolveConfig(stored?.config ?? {});
  const warnings = loaded.warnings;
  let config = loaded.config;
  if (options.config) ({ config } = resolveConfig(options.config, config));
  await store.put('config', {
    k: 'current',
    schema_version: 1,
    updated_at: new Date().toISOString(),
    config,
  });

  const communityId = config.community.community_id
    ? parseNodeId(config.community.community_id)
    : keys.nodeId;
  const community = new CommunityView(communityId, config.community.admission as 'open' | 'invite');
  const metrics = new Metrics();
  const bus = new Bus({
    self: keys.nodeId,
    isEnabled: (m) => config[m].enabled,
    levelOf: (n) => community.levelOf(n),
    metrics,
    ...(options.now ? { now: options.now } : {}),
  });
  const log = new EventLog({
    store,
    keys,
    community,
    metrics,
    mayProduce: (t) => {
      const m = moduleOfEventType(t) as ModuleName | null;
      return !m || !(MODULE_SECTIONS as readonly string[]).includes(m) || config[m].enabled;
    },
    ...(options.now ? { now: options.now } : {}),
  });
  await log.open();
  if (communityId === keys.nodeId && !community.created) {
    await log.append('community.created', {
      name: config.identity.display_name || 'HearthNet community',
      founder_node_id: keys.nodeId,
      policy: { admission: config.community.admission },
    });
  }

  const sessions = new Map<NodeID, PeerSession>();
  let mesh: Mesh | null = null;
  bus.remote = {
    call: (peer, ref, input, opts) => sessionFor(peer).call(ref, input, opts),
    stream: (peer, ref, input, opts) => sessionFor(peer).stream(ref, input, opts),
  };
  const tensors = new TensorHost({
    keys,
    communityId,
    config: () => config.tensor_transport,
    membership: (n) => community.levelOf(n),
    link: (peer) => sessions.get(peer),
    call: (cap, input, opts) => bus.call(cap, input, opts),
    metrics,
  });
  function sessionFor(peer: NodeID): PeerSession {
    const s = sessions.get(peer);
    if (!s || s.state !== 'open') throw new HnError('partition', `no open link to ${shortNodeId(peer)}`);
    return s;
  }

  // modules
  const defs = new Map<ModuleName, ModuleDef>();
  for (const m of MODULE_SECTIONS) if (m !== 'tensor_transport') defs.set(m, unbuiltModule(m));
  defs.set('protocol', createProtocolModule()); // stateful: one per node
  for (const m of options.modules ?? []) defs.set(m.name, m);
  let closed = false;
  let linkHook: LinkProtocolHook | null = null;
  const ctx: ModuleContext = {
    self: keys.nodeId,
    bus,
    events: log,
    config: () => config,
    sign: (obj) => signObject(keys, obj),
    kv: {
      get: async (k) => (await store.get<{ k: string; v: any }>('meta', `module:${k}`))?.v,
      put: async (k, v) => {
        if (!closed) await store.put('meta', { k: `module:${k}`, v });
      },
    },
    setLinkHook: (h) => (linkHook = h),
  };
  const running = new Set<ModuleName>();
  async function startModule(m: ModuleName) {
    const def = defs.get(m);
    if (!def || running.has(m) || !config[m].enabled) return;
    for (const cap of def.capabilities(ctx)) bus.register(cap);
    await def.start?.(ctx);
    running.add(m);
  }
  async function stopModule(m: ModuleName) {
    if (!running.has(m)) return;
    running.delete(m);
    bus.unregisterModule(m);
    await defs.get(m)?.stop?.();
  }
  async function applyFlags() {
    for (const m of MODULE_SECTIONS) {
      if (config[m].enabled) await startModule(m);
      else await stopModule(m);
    }
  }
  await applyFlags();

  const configListeners = new Set<(c: HearthnetConfig) => void>();
  async function saveConfig(next: HearthnetConfig) {
    if (closed) throw new HnError('closed', 'node is closed');
    await store.put('config', {
      k: 'current',
      schema_version: 1,
      updated_at: new Date().toISOString(),
      config: next,
    });
    config = next;
    await applyFlags();
    if (!config.tensor_transport.enabled) tensors.closeAll('disabled');
    for (const cb of configListeners) cb(config);
    return config;
  }

  /** Flip one module's flag; M26 needs X08, so the two move together where one implies the other. */
  async function switchModule(m: ModuleName, on: boolean) {
    if (!(MODULE_SECTIONS as readonly string[]).includes(m))
      throw new HnError('bad_request', `unknown module ${String(m)}`);
    const patch: Record<string, { enabled: boolean }> = { [m]: { enabled: on } };
    if (on && m === 'distributed_llm') patch.tensor_transport = { enabled: true };
    if (!on && m === 'tensor_transport') patch.distributed_llm = { enabled: false };
    await saveConfig(resolveConfig(patch, config).config);
  }

  const node: HearthNode = {
    id: keys.nodeId,
    shortId: shortNodeId(keys.nodeId),
    get config() {
      return config;
    },
    communityId,
    bus,
    metrics,
    configWarnings: warnings,
    events: {
      append: (t, d) => log.append(t, d),
      list: (q) => log.list(q),
      get: (id) => log.get(id),
      count: () => log.count(),
      heads: () => log.heads(),
      receive: (evs) => log.receive(evs),
      async sync(peer) {
        const targets = peer ? [sessionFor(peer)] : [...sessions.values()].filter((s) => s.state === 'open');
        let sent = 0;
        let received = 0;
        for (const s of targets) {
          const r = await s.sync();
          sent += r.sent;
          received += r.received;
        }
        return { sent, received };
      },
      subscribe: (cb) => log.subscribe((ev) => cb(ev)),
    },
    call: (cap, input, opts) => bus.call(cap, input, opts),
    stream: (cap, input, opts) => bus.stream(cap, input, opts),
    enable: (m) => switchModule(m, true),
    disable: (m) => switchModule(m, false),
    async setConfig(patch) {
      return saveConfig(resolveConfig(patch, config).config);
    },
    exportConfigToml: () => configToToml(config),
    async importConfigToml(text, opts = {}) {
      const { config: next } = configFromToml(text, defaultConfig());
      const diff = diffConfig(config, next);
      if (!opts.dryRun) await saveConfig(next);
      return diff;
    },
    onConfigChange(cb) {
      configListeners.add(cb);
      return () => configListeners.delete(cb);
    },
    async connect(port, info) {
      if (closed) throw new HnError('closed', 'node is closed');
      const s = new PeerSession(port, info, {
        keys,
        communityId,
        community,
        bus,
        events: log,
        metrics,
        protocol: () => linkHook,
        ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
        ...(options.missedHeartbeats ? { missedHeartbeats: options.missedHeartbeats } : {}),
        ...(options.now ? { now: options.now } : {}),
      });
      const peer = await s.ready;
      const old = sessions.get(peer);
      sessions.set(peer, s);
      if (old && old !== s) old.close('replaced');
      // anti-entropy: sync when peers meet, then every events.sync_interval_seconds
      const syncNow = () => void s.sync().catch(() => undefined);
      syncNow();
      const timer = setInterval(syncNow, config.events.sync_interval_seconds * 1000);
      s.onClose(() => {
        clearInterval(timer);
        if (sessions.get(peer) === s && s.state === 'closed') sessions.delete(peer);
      });
      return s;
    },
    peers() {
      return [...sessions.values()].map((s) => ({
        id: s.peer,
        short_id: shortNodeId(s.peer),
        link: s.kind,
        rtt_ms: s.rtt_ms,
        state: s.state,
        agreed_version: s.agreedVersion,
      }));
    },
    async joinRelay(opts) {
      if (closed) throw new HnError('closed', 'node is closed');
      mesh?.stop();
      mesh = new Mesh(
        {
          keys,
          communityId,
          config: () => config,
          levelOf: (n) => community.levelOf(n),
          connect: (port, info) => node.connect(port, info),
          openSession: (peer) => sessions.get(peer),
        },
        { displayName: config.identity.display_name, ...opts },
      );
      mesh.start();
      await mesh.client.waitReady();
    },
    leaveRelay() {
      mesh?.stop();
      mesh = null;
    },
    relayState: () => mesh?.client.state ?? null,
    session: (peer) => sessions.get(peer),
    levelOf: (n) => community.levelOf(n),
    tensors,
    async close() {
      if (closed) return;
      tensors.closeAll('node closed', true);
      mesh?.stop();
      for (const m of [...running]) await stopModule(m);
      for (const s of sessions.values()) s.close('node closed');
      closed = true;
      await new Promise((r) => setTimeout(r, 10));
      await store.close();
    },
  };
  return node;
}

async function loadKeys(store: StorageAdapter, seed?: Uint8Array): Promise<KeyPair> {
  const rec = await store.get<{ k: string; seed: Uint8Array; created_at: string }>('keys', 'device');
  if (rec) {
    const kp = keyPairFromSeed(new Uint8Array(rec.seed));
    if (seed && kp.nodeId !== keyPairFromSeed(seed).nodeId)
      throw new HnError('keys_invalid', 'the database holds another identity');
    return kp;
  }
  const kp = seed ? keyPairFromSeed(seed) : generateKeyPair();
  await store.put('keys', { k: 'device', seed: kp.seed, created_at: new Date().toISOString() });
  return kp;
}
