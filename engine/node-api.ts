/** Parts of createNode: opening the node database, identity, config, founding, and the public API object. */
import type { Bus } from './bus/bus.js';
import {
  configFromToml,
  configToToml,
  defaultConfig,
  diffConfig,
  resolveConfig,
  specFor,
  type ConfigPatch,
  type HearthnetConfig,
} from './core/config.js';
import { HnError } from './core/errors.js';
import type { NodeID } from './core/types.js';
import type { EventLog } from './events/log.js';
import type { CommunityView } from './identity/community.js';
import { generateKeyPair, keyPairFromSeed, shortNodeId, type KeyPair } from './identity/identity.js';
import { BUILTIN_MODULES } from './modules/builtin.js';
import type { ModuleHost } from './modules/host.js';
import type { AnyModuleDefinition } from './modules/module.js';
import { Mesh } from './net/mesh.js';
import { RELAY_PASS_LINK_TYPE, type RelayPasses } from './net/relay-passes.js';
import type { Clock } from './core/vocab.js';
import type { PeerTable } from './net/peer-table.js';
import { LlmService } from './llm/serve.js';
import type { LogBook } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { CORE_SCHEMA } from './store/core-schema.js';
import { openIndexedDbStorage } from './store/indexeddb.js';
import { openMemoryStorage } from './store/memory.js';
import type { StorageAdapter, StorageFactory } from './store/types.js';
import type { TensorHost } from './transport/tensor/host.js';
import type { HearthNode, NodeOptions } from './node.js';

let memoryCounter = 0;

export async function openNodeStore(options: NodeOptions) {
  const kind = options.storage ?? 'memory';
  const storage: StorageFactory =
    kind === 'memory' ? openMemoryStorage : kind === 'indexeddb' ? openIndexedDbStorage : kind;
  const dbName =
    options.name ??
    (kind === 'indexeddb'
      ? 'hearthnet-0'
      : `hearthnet-mem-${Date.now()}-${++memoryCounter}-${Math.random().toString(36).slice(2)}`);
  const store: StorageAdapter = await storage(dbName, CORE_SCHEMA);
  return { store, storage, dbName };
}

export async function loadKeys(store: StorageAdapter, seed?: Uint8Array): Promise<KeyPair> {
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

/** Built-in modules, with `extra` added (or replacing a built-in of the same name), in list order. */
export function moduleList(extra: readonly AnyModuleDefinition[] = []): AnyModuleDefinition[] {
  const defs = new Map<string, AnyModuleDefinition>(BUILTIN_MODULES.map((m) => [m.name, m]));
  for (const m of extra) defs.set(m.name, m);
  return [...defs.values()];
}

/** A mutable holder of the node's current config (shared by the parts). */
export interface ConfigCell {
  config: HearthnetConfig;
  warnings: string[];
  defs: readonly AnyModuleDefinition[];
}

async function persistConfig(store: StorageAdapter, config: HearthnetConfig) {
  await store.put('config', {
    k: 'current',
    schema_version: 1,
    updated_at: new Date().toISOString(),
    config,
  });
}

export async function loadConfig(
  store: StorageAdapter,
  patch: ConfigPatch | undefined,
  defs: readonly AnyModuleDefinition[],
  defaultCommunity?: string | null,
): Promise<ConfigCell> {
  const stored = await store.get<{ k: string; config: unknown }>('config', 'current');
  const base = defaultConfig(specFor(defs));
  // a new node joins the default (home) community; a node with a stored config stays where it is
  const fresh = !stored && defaultCommunity ? { community: { community_id: defaultCommunity } } : {};
  const loaded = resolveConfig(stored?.config ?? fresh, base, defs);
  let config = loaded.config;
  if (patch) ({ config } = resolveConfig(patch, config, defs));
  await persistConfig(store, config);
  return { config, warnings: loaded.warnings, defs };
}

/** The founder of a community appends `community.created` once. */
export async function foundCommunity(
  log: EventLog,
  community: CommunityView,
  self: NodeID,
  communityId: NodeID,
  config: HearthnetConfig,
) {
  if (communityId === self && !community.created)
    await log.append('community.created', {
      name: config.identity.display_name || 'HearthNet community',
      founder_node_id: self,
      policy: { admission: config.community.admission },
    });
}

export interface NodeParts {
  keys: KeyPair;
  store: StorageAdapter;
  cfg: ConfigCell;
  defs: readonly AnyModuleDefinition[];
  bus: Bus;
  log: EventLog;
  metrics: Metrics;
  logs: LogBook;
  host: ModuleHost;
  peers: PeerTable;
  tensors: TensorHost;
  community: CommunityView;
  communityId: NodeID;
  passes: RelayPasses;
  clock: Clock;
  onClose(): void;
}

/** Switching a module also switches what it requires (on) or what requires it (off). */
function switchPatch(defs: readonly AnyModuleDefinition[], m: string, on: boolean) {
  const patch: Record<string, { enabled: boolean }> = {};
  const visit = (name: string) => {
    if (patch[name]) return;
    patch[name] = { enabled: on };
    if (on) for (const r of defs.find((d) => d.name === name)?.requires ?? []) visit(r);
    else for (const d of defs) if (d.requires?.includes(name)) visit(d.name);
  };
  visit(m);
  return patch;
}

export function buildNodeApi(p: NodeParts): HearthNode {
  const { keys, store, cfg, defs, bus, log, host, peers, tensors, community, communityId } = p;
  let closed = false;
  let mesh: Mesh | null = null;
  const llm = new LlmService(bus, p.metrics);
  const configListeners = new Set<(c: HearthnetConfig) => void>();
  // the founder of an invite community hands each linked member or invitee a room pass, and renews it
  const handOut = () =>
    p.passes.handOut(
      peers
        .list()
        .filter((x) => x.state === 'open')
        .flatMap((x) => {
          const s = peers.sessions.get(x.id);
          return s
            ? [
                {
                  peer: x.id,
                  link: s,
                  send: (pass: unknown) => s.sendModuleMessage(RELAY_PASS_LINK_TYPE, pass),
                },
              ]
            : [];
        }),
    );
  // ... and tells the relay which members were revoked (their passes are refused from then on);
  // a revoked member's links close, so the peers change that follows sends it
  const sendRevocations = (fresh = false) => {
    const client = mesh?.client;
    if (!client || client.state !== 'ready') return;
    for (const r of p.passes.revocationsToSend(fresh)) client.revoke(r);
  };
  const passesAndRevocations = () => {
    handOut();
    sendRevocations();
  };
  const offPeers = peers.onChange(passesAndRevocations);
  // subscribers run after the views applied the event, so the view already names the node
  const offRevoked = log.subscribe((ev) => {
    if (ev.event_type === 'community.member.revoked') sendRevocations();
  });
  const stopRenew = p.clock.setInterval(passesAndRevocations, 3600_000);
  const enabledNow = (m: string) =>
    Boolean((cfg.config as unknown as Record<string, { enabled?: boolean }>)[m]?.enabled);

  async function saveConfig(next: HearthnetConfig, retry: readonly string[] = []) {
    if (closed) throw new HnError('closed', 'node is closed');
    await persistConfig(store, next);
    cfg.config = next;
    try {
      await host.apply(enabledNow, retry);
    } finally {
      for (const cb of configListeners) cb(cfg.config);
    }
    return cfg.config;
  }

  async function switchModule(m: string, on: boolean) {
    if (!defs.some((d) => d.name === m)) throw new HnError('bad_request', `unknown module ${String(m)}`);
    const patch = switchPatch(defs, m, on);
    await saveConfig(resolveConfig(patch, cfg.config, defs).config, on ? Object.keys(patch) : []);
  }

  const node: HearthNode = {
    id: keys.nodeId,
    shortId: shortNodeId(keys.nodeId),
    get config() {
      return cfg.config;
    },
    communityId,
    bus,
    metrics: p.metrics,
    logs: p.logs,
    configWarnings: cfg.warnings,
    events: {
      append: (t, d) => log.append(t, d),
      list: (q) => log.list(q),
      get: (id) => log.get(id),
      count: () => log.count(),
      heads: () => log.heads(),
      receive: (evs) => log.receive(evs),
      sync: (peer) => peers.sync(peer),
      subscribe: (cb) => log.subscribe((ev) => cb(ev)),
    },
    call: (cap, input, opts) => bus.call(cap, input, opts),
    stream: (cap, input, opts) => bus.stream(cap, input, opts),
    enable: (m) => switchModule(m, true),
    disable: (m) => switchModule(m, false),
    moduleDefinitions: () => [...defs],
    moduleStates: () => host.states(),
    onModulesChange: (cb) => host.onChange(cb),
    setConfig: async (patch) => saveConfig(resolveConfig(patch, cfg.config, defs).config),
    exportConfigToml: () => configToToml(cfg.config),
    async importConfigToml(text, opts = {}) {
      const { config: next } = configFromToml(text, defaultConfig(specFor(defs)), defs);
      const diff = diffConfig(cfg.config, next);
      if (!opts.dryRun) await saveConfig(next);
      return diff;
    },
    onConfigChange(cb) {
      configListeners.add(cb);
      return () => configListeners.delete(cb);
    },
    serveModel: (model, id) => llm.serve(model, id),
    servedModels: () => llm.list(),
    connect: (port, info) => peers.connect(port, info),
    peers: () => peers.list(),
    onPeersChange: (cb) => peers.onChange(cb),
    issueRelayPass: (peer, ttlSeconds) => p.passes.issue(peer, ttlSeconds),
    async joinRelay(opts) {
      if (closed) throw new HnError('closed', 'node is closed');
      mesh?.stop();
      // a pass handed in (with an invite) is kept; the join shows the best pass this node holds
      // (the founder signs its own), read again at each reconnect so a renewed one is used
      const given = typeof opts.relayPass === 'function' ? opts.relayPass() : opts.relayPass;
      if (given) await p.passes.accept(given);
      const ownPass = { relayPass: () => p.passes.current() ?? given };
      mesh = new Mesh(
        {
          keys,
          communityId,
          config: () => cfg.config,
          levelOf: (n) => community.levelOf(n),
          connect: (port, info) => node.connect(port, info),
          openSession: (peer) => peers.sessions.get(peer),
          log: p.logs.logger('mesh'),
        },
        { displayName: cfg.config.identity.display_name, ...opts, ...ownPass },
      );
      mesh.client.on('welcome', () => sendRevocations(true));
      mesh.start();
      await mesh.client.waitReady();
    },
    leaveRelay() {
      mesh?.stop();
      mesh = null;
    },
    relayState: () => mesh?.client.state ?? null,
    session: (peer) => peers.sessions.get(peer),
    levelOf: (n) => community.levelOf(n),
    tensors,
    async close() {
      if (closed) return;
      offPeers();
      offRevoked();
      stopRenew();
      tensors.closeAll('node closed', true);
      mesh?.stop();
      await host.stopAll();
      peers.closeAll('node closed');
      closed = true;
      p.onClose();
      await new Promise((r) => setTimeout(r, 10));
      await store.close();
    },
  };
  return node;
}
