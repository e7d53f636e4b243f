import type { ErrorObject } from '../core/errors.js';
import type { NodeID, Stability, TrustLevel, TrustRequired } from '../core/types.js';
import type { JsonSchema } from './schema.js';

export interface CapabilityDescriptor {
  name: string;
  version: [number, number];
  stability: Stability;
  /** owning module (a config section) or 'core' */
  module: string;
  description?: string;
  request_schema: JsonSchema;
  response_schema: JsonSchema | null;
  /** non-null ⇔ the capability streams */
  stream_schema: JsonSchema | null;
  params?: Record<string, unknown>;
  max_concurrent: number;
  trust_required: TrustRequired;
  timeout_seconds: number;
  idempotent: boolean;
}

/** A capability prefix owned by a module: registering or calling under it needs the module's flag. */
export interface CapabilityNamespace {
  prefix: string;
  module: string;
}

export interface StreamFrame {
  event: string;
  data: any;
}

export interface CallContext {
  signal: AbortSignal;
  caller: NodeID;
  callerLevel: TrustLevel;
  isLocal: boolean;
  traceId: string;
  deadlineMs: number;
  progress(current: number, total: number, stage: string): void;
}

export type UnaryHandler = (input: any, ctx: CallContext) => Promise<any>;
export type StreamHandler = (input: any, ctx: CallContext) => AsyncGenerator<StreamFrame, any, void>;

export interface Capability {
  descriptor: CapabilityDescriptor;
  handler: UnaryHandler | StreamHandler;
}

export interface CallOptions {
  /** call this capability on another peer */
  peer?: NodeID;
  timeout_ms?: number;
  signal?: AbortSignal;
  /** trace id to propagate (defaults to a fresh ULID) */
  trace_id?: string;
  onProgress?: (p: { current: number; total: number; stage: string }) => void;
}

/** The link-facing half of the bus: implemented by the mesh (peer sessions over links). */
export interface RemoteCaller {
  call(
    peer: NodeID,
    ref: { name: string; version: string },
    input: unknown,
    opts: CallOptions,
  ): Promise<unknown>;
  stream(
    peer: NodeID,
    ref: { name: string; version: string },
    input: unknown,
    opts: CallOptions,
  ): AsyncIterable<StreamFrame>;
}

export interface CapabilityStats {
  calls: number;
  errors: number;
  in_flight: number;
  latency_ms_total: number;
}

export type { ErrorObject };
