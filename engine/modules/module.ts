/**
 * The module seam. A module is one folder, `engine/<module>/index.ts`, exporting one
 * `ModuleDefinition`: everything the rest of the system needs to know about it. The node derives its
 * config sections, capability/event catalogue, registrable namespaces and the app's module list from
 * the list of definitions (`modules/builtin.ts` plus `createNode({ modules })`). A running module gets
 * its `ModuleComponents` and nothing else; the host (`modules/host.ts`) does every registration and
 * undoes it on stop. See docs/modules.md.
 */
import type { JsonSchema } from '../bus/schema.js';
import type { Bus } from '../bus/bus.js';
import type { Capability } from '../bus/types.js';
import type { ConfigSection, SectionValue } from '../core/config-fields.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import type { Clock, LinkKind } from '../core/vocab.js';
import type { EventEnvelope, ListQuery } from '../events/log.js';
import type { LinkProtocolHook } from '../net/session.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { DbSchema, StorageAdapter, StoreSchema } from '../store/types.js';
import type { TensorHost } from '../transport/tensor/host.js';

/** An event type a module owns (`<module>.<entity>.<verb>`); its data schema defaults to protocol/schemas. */
export interface EventTypeSpec {
  type: string;
  /** JSON Schema of `data`; omitted → the protocol's schema for this type (an error if there is none) */
  schema?: JsonSchema;
}

/** A typed link message a module adds (`<module>.<name>`), sent peer to peer on the link's control channel. */
export interface LinkMessageSpec {
  type: string;
  /** JSON Schema of the payload; checked when sending and when receiving (bad inbound → dropped, logged) */
  schema: JsonSchema;
}

/** The module's app view: metadata and a lazy loader. The engine never calls `load`. */
export interface ModuleView {
  title: string;
  /** one line: what switching the module on gives the user */
  blurb: string;
  /** one emoji or short glyph for the navigation bar */
  icon?: string;
  /** dynamic import of the view component (a Svelte 5 component taking `{ node }`) */
  load?: () => Promise<{ default: unknown }>;
}

/** A running module: what `create(components)` returns. */
export interface ModuleInstance {
  /** Capabilities with handlers; every name must be listed in the definition's `capabilityNames`. */
  capabilities(): Capability[];
  /** Called after the capabilities are registered. If it throws, everything is rolled back. */
  start?(): Promise<void> | void;
  /** Undo what start did that the host does not track (the host clears timers, hooks, stores itself). */
  stop?(): Promise<void> | void;
}

export interface ModuleDefinition<N extends string = string, C extends ConfigSection = ConfigSection> {
  /** config section name = folder name = `experimental.<name>.` namespace (seed §8 section) */
  name: N;
  /** seed id, e.g. 'M30' */
  seedId: string;
  /** config section: field specs with defaults and limits (must contain `enabled`) */
  config: C;
  /** cross-field validation of the section; throw `fieldError(path, why)` */
  checkConfig?(section: SectionValue<C>): void;
  /** modules that must be on while this one is on (enabling this enables them; disabling one of them disables this) */
  requires?: readonly string[];
  /** capability prefix this module owns; default `experimental.<name>.`; null = it registers none */
  namespace?: string | null;
  /** the seed's capability names of this module, verbatim (the catalogue is built from these) */
  capabilityNames: readonly string[];
  /** capabilities beyond the seed (each one a recorded decision in docs/decisions.md): registered and gated
   * like the seed's, under the module's namespace, but never part of the seed catalogue */
  extraCapabilityNames?: readonly string[];
  /** event types it owns, seed names verbatim */
  events?: readonly EventTypeSpec[];
  /** object stores (and indexes) of the module's private database; version bump when they change */
  stores?: readonly StoreSchema[];
  storesVersion?: number;
  /** typed link messages it adds */
  linkMessages?: readonly LinkMessageSpec[];
  view?: ModuleView;
  /** Make one running instance for one node (state lives in the instance, never in the definition). */
  create(components: ModuleComponents<C>): ModuleInstance | Promise<ModuleInstance>;
}

/** Any definition, whatever its name and section. */
export type AnyModuleDefinition = ModuleDefinition<string, any>;

/** What a module may do with the bus: call and look; registration is done by the host. */
export type ModuleBus = Pick<Bus, 'call' | 'stream' | 'has' | 'list' | 'descriptor' | 'stats' | 'onChange'>;

export interface ModuleEvents {
  /** append an event of one of this module's types (or a core type); data is validated */
  append(type: string, data: Record<string, unknown>): Promise<EventEnvelope>;
  list(q?: ListQuery): Promise<EventEnvelope[]>;
  get(id: string): Promise<EventEnvelope | undefined>;
  /** every event appended locally (source null) or received from a peer; unsubscribed on stop */
  subscribe(cb: (ev: EventEnvelope, source: NodeID | null) => void): () => void;
}

export interface PeerEntry {
  id: NodeID;
  link: LinkKind;
  /** community level; null = not a member, 'revoked' = revoked */
  trust: TrustLevel | 'revoked' | null;
  state: 'handshaking' | 'open' | 'gone' | 'closed';
  rtt_ms: number | null;
}

export interface ModulePeers {
  list(): PeerEntry[];
  /** called when a peer link opens or closes; unsubscribed on stop */
  onChange(cb: () => void): () => void;
}

export interface ModuleLink {
  /** send one of this module's link messages to a peer with an open link (payload checked against its schema) */
  send(peer: NodeID, type: string, payload: unknown): Promise<void>;
  /** handle one of this module's link messages; several modules may listen at once; removed on stop */
  on(type: string, handler: (peer: NodeID, payload: any) => void): () => void;
}

/** The node's community membership view (core digest §3), read by modules that weigh peers by level. */
export interface ModuleCommunity {
  /** a NodeID's level now; null = not a member, 'revoked' = revoked */
  levelOf(node: NodeID): TrustLevel | 'revoked' | null;
  /** append `community.member.promoted` signed and co-signed by this node (it must be trusted or the anchor) */
  promote(target: NodeID, newLevel: TrustLevel): Promise<EventEnvelope>;
}

export interface ModuleComponents<C extends ConfigSection = ConfigSection> {
  readonly self: NodeID;
  readonly communityId: NodeID;
  /** the module's own name */
  readonly module: string;
  readonly bus: ModuleBus;
  readonly events: ModuleEvents;
  /** this module's config section, current value */
  config(): SectionValue<C>;
  /** any section of the node config, read-only (prefer your own section) */
  configOf(section: string): Readonly<Record<string, unknown>> | undefined;
  /** which modules are on */
  modules(): Record<string, boolean>;
  /** open the module's private database (`<node db>:<module>`); default schema = the definition's stores */
  openStore(schema?: DbSchema): Promise<StorageAdapter>;
  /** small key/value persistence in the node database, namespaced by module */
  kv: { get<T>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void> };
  /** X08 tensor sessions to peers */
  readonly tensors: TensorHost;
  readonly peers: ModulePeers;
  readonly community: ModuleCommunity;
  readonly metrics: Metrics;
  /** timers made here are cancelled when the module stops */
  readonly clock: Clock;
  readonly log: Logger;
  /** sign with the node key (signature over canonical JSON without `signature`) */
  sign<T extends Record<string, unknown>>(obj: T): T & { signature: string };
  /** Ed25519 over a W3C Data Integrity hashData (proofHash ‖ docHash, exactly 64 bytes) with the node key */
  signDataIntegrity(hashData: Uint8Array): Uint8Array;
  verify(obj: Record<string, unknown>, signer: NodeID): boolean;
  readonly link: ModuleLink;
  /** M32 only: install the link-hello negotiation hook (one owner per node) */
  setLinkHook(hook: LinkProtocolHook | null): void;
}

/** Capability prefix a definition owns. */
export const namespaceOf = (d: Pick<AnyModuleDefinition, 'name' | 'namespace'>): string | null =>
  d.namespace === undefined ? `experimental.${d.name}.` : d.namespace;
