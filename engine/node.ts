/**
 * Composition root: `createNode(options)` wires identity, config, storage, bus, event log, peer
 * table, tensor transport and the module host into one node. The same code runs in a browser tab
 * and in Node. The public API object is assembled in node-api.ts.
 */
import { RELAY_PASS_LINK_TYPE, RelayPasses } from './net/relay-passes.js';
import { Bus } from './bus/bus.js';
import type { CallOptions, StreamFrame } from './bus/types.js';
import type { ConfigPatch, HearthnetConfig, ModuleName } from './core/config.js';
import type { NodeID, TrustLevel } from './core/types.js';
import { systemClock, type Clock } from './core/vocab.js';
import { EventLog, type EventEnvelope, type ListQuery, type ReceiveResult } from './events/log.js';
import { CommunityView } from './identity/community.js';
import type { LocalLlm } from './llm/local.js';
import { parseNodeId } from './identity/identity.js';
import { ModuleHost, type ModuleStatus } from './modules/host.js';
import type { AnyModuleDefinition } from './modules/module.js';
import type { JoinOptions } from './net/mesh.js';
import type { RelayPass } from './net/relay-wire.js';
import type { BytePort } from './net/port.js';
import type { LinkInfo, LinkProtocolHook, PeerSession } from './net/session.js';
import { LogBook, type LogLevel } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { TensorHost } from './transport/tensor/host.js';
import { buildNodeApi, foundCommunity, loadConfig, loadKeys, moduleList, openNodeStore } from './node-api.js';
import { moduleHostDeps, wireCore, wireLinks } from './node-wiring.js';
import type { StorageFactory } from './store/types.js';

export interface NodeOptions {
  /** 'memory' (default under Node), 'indexeddb', or a factory */
  storage?: 'memory' | 'indexeddb' | StorageFactory;
  /** database name; default `hearthnet-0` for IndexedDB, a fresh name for memory */
  name?: string;
  /** fixed 32-byte identity seed (tests, conformance vectors); otherwise generated once and persisted */
  seed?: Uint8Array;
  /** config patch applied over the stored config (validated) */
  config?: ConfigPatch;
  /** community to join when the database is new (the relay's home community); ignored once a config is stored */
  defaultCommunity?: string | null;
  /** extra module definitions; one with a built-in's name replaces it */
  modules?: AnyModuleDefinition[];
  heartbeatMs?: number;
  missedHeartbeats?: number;
  now?: () => number;
  /** injectable clock for module timers and sync intervals (default: real timers with `now`) */
  clock?: Clock;
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
  /** structured log (Diagnostics); content is redacted */
  readonly logs: LogBook;
  call(capability: string, input: unknown, opts?: CallOptions): Promise<any>;
  stream(capability: string, input: unknown, opts?: CallOptions): AsyncIterable<StreamFrame>;
  /** switch a module on; rejects with the start error (the module is then 'failed', nothing registered) */
  enable(module: ModuleName | (string & {})): Promise<void>;
  disable(module: ModuleName | (string & {})): Promise<void>;
  /** definitions of this node's modules (built-in plus `options.modules`) */
  moduleDefinitions(): AnyModuleDefinition[];
  /** state of each module switch: off | starting | on | stopping | failed (with the reason) */
  moduleStates(): ModuleStatus[];
  onModulesChange(cb: () => void): () => void;
  setConfig(patch: ConfigPatch): Promise<HearthnetConfig>;
  exportConfigToml(): string;
  /** parse, validate and (unless `dryRun`) save a TOML config; returns the field diff */
  importConfigToml(
    text: string,
    opts?: { dryRun?: boolean },
  ): Promise<{ field: string; from: unknown; to: unknown }[]>;
  onConfigChange(cb: (c: HearthnetConfig) => void): () => void;
  /** offer a loaded model as `llm.chat` / `llm.models.list` on the bus; returns the withdraw function */
  serveModel(model: LocalLlm, id?: string): () => void;
  servedModels(): string[];
  /** attach a link (any BytePort) to a peer; resolves when the handshake is done */
  connect(port: BytePort, info: LinkInfo): Promise<PeerSession>;
  peers(): PeerInfo[];
  onPeersChange(cb: () => void): () => void;
  /** join the community room at a relay: discover peers, link directly (WebRTC) or through the relay */
  joinRelay(opts: JoinOptions): Promise<void>;
  /**
   * A room pass for `node` (relay-wire RelayPass), handed to an invitee with its invite so that it
   * joins the invite community's room as a member: the founder signs one; a member holding the
   * founder's pass delegates one (≤ 7 days); `unauthorized` otherwise.
   */
  issueRelayPass(node: NodeID, ttlSeconds?: number): RelayPass;
  leaveRelay(): void;
  /** relay connection state, or null when not joined */
  relayState(): string | null;
  session(peer: NodeID): PeerSession | undefined;
  levelOf(node: NodeID): TrustLevel | 'revoked' | null;
  /** X08 tensor sessions on peer links, authorised through the bus (gated by tensor_transport.enabled) */
  readonly tensors: TensorHost;
  close(): Promise<void>;
}

export async function createNode(options: NodeOptions = {}): Promise<HearthNode> {
  const { store, storage, dbName } = await openNodeStore(options);
  const keys = await loadKeys(store, options.seed); // generated once, persisted
  const defs = moduleList(options.modules);
  const cfg = await loadConfig(store, options.config, defs, options.defaultCommunity); // defaults ⊕ stored ⊕ options
  const clock = options.clock ?? systemClock(options.now);
  const logs = new LogBook({ level: () => cfg.config.observability.log_level as LogLevel, now: clock.now });
  const section = (m: string) => (cfg.config as unknown as Record<string, { enabled?: boolean }>)[m];
  const communityId = cfg.config.community.community_id
    ? parseNodeId(cfg.config.community.community_id)
    : keys.nodeId;
  const community = new CommunityView(communityId, cfg.config.community.admission as 'open' | 'invite');
  const metrics = new Metrics();
  let host: ModuleHost | null = null;
  const isOn = (m: string) => Boolean(section(m)?.enabled) && !!host?.isLive(m);
  const mayEmit = (m: string) => !!host?.mayEmit(m);
  const { bus, log } = wireCore({ keys, store, community, metrics, defs, isOn, mayEmit, now: options.now });
  await log.open();
  await foundCommunity(log, community, keys.nodeId, communityId, cfg.config);
  const passes = new RelayPasses({
    keys,
    store,
    communityId,
    admission: () => community.admission,
    levelOf: (n) => community.levelOf(n),
    revoked: () => community.revokedNodes(),
    now: clock.now,
    log: logs.logger('relay-pass'),
  });
  await passes.load();
  let linkHook: LinkProtocolHook | null = null;
  let closed = false;
  const { peers, tensors } = wireLinks({
    keys,
    communityId,
    community,
    bus,
    log,
    metrics,
    cfg,
    clock,
    logs,
    options,
    hook: () => linkHook,
    onModuleMessage: (peer, t, p) =>
      t === RELAY_PASS_LINK_TYPE ? void passes.onLinkMessage(peer, p) : host?.deliverLink(peer, t, p),
  });
  host = new ModuleHost(
    moduleHostDeps({
      keys,
      communityId,
      bus,
      log,
      metrics,
      tensors,
      clock,
      logs,
      storage,
      dbName,
      peers,
      cfg,
      store,
      community,
      closed: () => closed,
      setLinkHook: (h) => void (linkHook = h),
    }),
    defs,
  );
  await host.apply((m) => Boolean(section(m)?.enabled));
  return buildNodeApi({
    keys,
    store,
    cfg,
    defs,
    bus,
    log,
    metrics,
    logs,
    host,
    peers,
    tensors,
    community,
    communityId,
    passes,
    clock,
    onClose: () => void (closed = true),
  });
}
