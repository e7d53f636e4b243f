/** Public API of the HearthNet engine (used by the app, tests and the conformance harness). */
export { createNode, type HearthNode, type NodeOptions, type PeerInfo, type EventsApi } from './node.js';
export { HnError, ERROR_CODES, ERROR_MESSAGES, type ErrorCode, type ErrorObject } from './core/errors.js';
export * as constants from './core/constants.js';
export {
  defaultConfig,
  resolveConfig,
  configToToml,
  configFromToml,
  MODULE_SECTIONS,
  type HearthnetConfig,
  type ModuleName,
} from './core/config.js';
export { canonical, canonicalString, jcs } from './core/canonical.js';
export { memoryPortPair, type BytePort } from './net/port.js';
export {
  joinLink,
  parseJoinFragment,
  passForCommunity,
  decodeRelayPassParam,
  encodeRelayPassParam,
  type JoinFragment,
} from './net/relay-pass-link.js';
export type { RelayPass } from './net/relay-wire.js';
export type { PeerSession, LinkInfo } from './net/session.js';
export type { EventEnvelope } from './events/log.js';
export type { Capability, CapabilityDescriptor, CallOptions, StreamFrame } from './bus/types.js';
export * from './core/types.js';
export { shortNodeId, isNodeId } from './identity/identity.js';
export type {
  ModuleDefinition,
  AnyModuleDefinition,
  ModuleComponents,
  ModuleInstance,
  ModuleView,
  EventTypeSpec,
  LinkMessageSpec,
  PeerEntry,
} from './modules/module.js';
export type { ModuleStatus, ModuleState } from './modules/host.js';
export { BUILTIN_MODULES } from './modules/builtin.js';
export { descriptor, notImplementedCapabilities } from './modules/registry.js';
export type { LogEntry, LogLevel, Logger } from './observability/logger.js';
export type { Clock, LinkKind } from './core/vocab.js';
