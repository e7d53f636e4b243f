/** Wiring parts of createNode: the peer table with the tensor host, and the module host's dependencies. */
import { Bus } from './bus/bus.js';
import type { NodeID } from './core/types.js';
import type { Clock } from './core/vocab.js';
import { EventLog } from './events/log.js';
import type { CommunityView } from './identity/community.js';
import { signBytes, signObject, type KeyPair } from './identity/identity.js';
import { namespacesOf } from './modules/builtin.js';
import type { ModuleHostDeps } from './modules/host.js';
import type { AnyModuleDefinition } from './modules/module.js';
import { PeerTable } from './net/peer-table.js';
import type { LinkProtocolHook } from './net/session.js';
import type { LogBook } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { StorageAdapter, StorageFactory } from './store/types.js';
import { TensorHost } from './transport/tensor/host.js';
import type { ConfigCell } from './node-api.js';
import type { NodeOptions } from './node.js';

interface Common {
  keys: KeyPair;
  communityId: NodeID;
  bus: Bus;
  log: EventLog;
  metrics: Metrics;
  cfg: ConfigCell;
  clock: Clock;
  logs: LogBook;
}

/** The bus (gated by the module host) and the event log (a module's types only while it is on). */
export function wireCore(o: {
  keys: KeyPair;
  store: StorageAdapter;
  community: CommunityView;
  metrics: Metrics;
  defs: readonly AnyModuleDefinition[];
  isOn: (module: string) => boolean;
  /** a module's event types may be appended (see ModuleHost.mayEmit) */
  mayEmit: (module: string) => boolean;
  now?: (() => number) | undefined;
}) {
  const { keys, community, metrics, defs, isOn, mayEmit } = o;
  const now = o.now ? { now: o.now } : {};
  const namespaces = namespacesOf(defs);
  const bus = new Bus({
    self: keys.nodeId,
    isEnabled: isOn,
    namespaces: () => namespaces,
    ...now,
    metrics,
    levelOf: (n) => community.levelOf(n),
  });
  const area = (t: string) => t.slice(0, t.indexOf('.'));
  const log = new EventLog({
    store: o.store,
    keys,
    community,
    metrics,
    ...now,
    mayProduce: (t) => !defs.some((d) => d.name === area(t)) || mayEmit(area(t)),
  });
  return { bus, log };
}

/** Peer sessions (with sync timers), remote bus calls over them, and X08 tensor sessions on them. */
export function wireLinks(
  o: Common & {
    community: CommunityView;
    options: NodeOptions;
    hook: () => LinkProtocolHook | null;
    onModuleMessage: (peer: NodeID, type: unknown, payload: unknown) => void;
  },
) {
  const { keys, communityId, community, bus, log, metrics, cfg, options } = o;
  const peers = new PeerTable({
    session: {
      keys,
      communityId,
      community,
      bus,
      events: log,
      metrics,
      protocol: o.hook,
      ...(options.now ? { now: options.now } : {}),
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.missedHeartbeats ? { missedHeartbeats: options.missedHeartbeats } : {}),
      onModuleMessage: o.onModuleMessage,
      log: o.logs.logger('link'),
    },
    levelOf: (n) => community.levelOf(n),
    syncIntervalMs: () => cfg.config.events.sync_interval_seconds * 1000,
    clock: o.clock,
    log: o.logs.logger('peers'),
  });
  bus.remote = {
    call: (peer, ref, input, opts) => peers.open(peer).call(ref, input, opts),
    stream: (peer, ref, input, opts) => peers.open(peer).stream(ref, input, opts),
  };
  const tensors = new TensorHost({
    keys,
    communityId,
    metrics,
    config: () => cfg.config.tensor_transport,
    membership: (n) => community.levelOf(n),
    link: (peer) => peers.sessions.get(peer),
    call: (cap, input, opts) => bus.call(cap, input, opts),
    log: o.logs.logger('x08'),
  });
  return { peers, tensors };
}

export function moduleHostDeps(
  o: Common & {
    tensors: TensorHost;
    peers: PeerTable;
    storage: StorageFactory;
    dbName: string;
    store: StorageAdapter;
    community: CommunityView;
    closed: () => boolean;
    setLinkHook: (h: LinkProtocolHook | null) => void;
  },
): ModuleHostDeps {
  const { store, peers, keys } = o;
  return {
    self: keys.nodeId,
    communityId: o.communityId,
    community: o.community,
    bus: o.bus,
    log: o.log,
    metrics: o.metrics,
    tensors: o.tensors,
    clock: o.clock,
    logs: o.logs,
    storage: o.storage,
    dbName: o.dbName,
    peers: { list: () => peers.entries(), onChange: (cb) => peers.onChange(cb) },
    config: () => o.cfg.config as unknown as Record<string, unknown>,
    sign: (obj) => signObject(keys, obj),
    signBytes: (m) => signBytes(keys, m),
    kv: {
      get: async (k) => (await store.get<{ k: string; v: any }>('meta', `module:${k}`))?.v,
      put: async (k, v) => void (o.closed() || (await store.put('meta', { k: `module:${k}`, v }))),
    },
    setLinkHook: o.setLinkHook,
    sendLink: (peer, type, payload) => peers.open(peer).sendModuleMessage(type, payload),
  };
}
