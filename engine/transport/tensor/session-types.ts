/**
 * X08 session configuration, clock and the public types of a session (stats, received tensors, close info,
 * token validation, open options). Split out of session.ts; session.ts re-exports everything here.
 */
import {
  TENSOR_COMPRESSION_THRESHOLD_BYTES,
  TENSOR_FLOW_CONTROL_WINDOW,
  TENSOR_KEEPALIVE_SECONDS,
  TENSOR_MAX_SESSION_LIFETIME_SECONDS,
} from '../../core/constants.js';
import type { Dtype, NodeID, Tensor } from '../../core/types.js';
import type { HelloMsg, Negotiation } from './frame.js';
import type { Logger } from '../../observability/logger.js';

export interface TensorTransportConfig {
  enabled: boolean;
  default_dtype: Dtype;
  /** Data bytes per TENSOR_DATA frame offered in HELLO (ours: 256 KiB; ceiling TENSOR_CHUNK_BYTES). */
  chunk_bytes: number;
  flow_control_window: number;
  compression_threshold_bytes: number;
  compression_level: number;
  keepalive_seconds: number;
  max_session_lifetime_seconds: number;
  max_concurrent_sessions: number;
  rx_buffer_bytes_max: number;
  hello_timeout_s: number;
  ack_delay_ms: number;
}

export const DEFAULT_TENSOR_TRANSPORT_CONFIG: Readonly<TensorTransportConfig> = Object.freeze({
  enabled: false,
  default_dtype: 'fp16',
  chunk_bytes: 262144,
  flow_control_window: TENSOR_FLOW_CONTROL_WINDOW,
  compression_threshold_bytes: TENSOR_COMPRESSION_THRESHOLD_BYTES,
  compression_level: 3,
  keepalive_seconds: TENSOR_KEEPALIVE_SECONDS,
  max_session_lifetime_seconds: TENSOR_MAX_SESSION_LIFETIME_SECONDS,
  max_concurrent_sessions: 64,
  rx_buffer_bytes_max: 64 * 1024 * 1024,
  hello_timeout_s: 10,
  ack_delay_ms: 20,
});

/** Sender-side ratio gate: keep compressing only if the session's first compressed tensor reached this (A5). */
export const COMPRESSION_RATIO_GATE = 0.9;

/** Injectable time source (ms) so keepalive/lifetime are testable with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export type SessionState = 'connecting' | 'ready' | 'streaming' | 'closed';

export interface SessionStats {
  /** All frame bytes (headers included) handed to / received from the port. */
  bytes_sent: number;
  bytes_received: number;
  /** Tensor data bytes put on the wire (after compression where it was applied). */
  bytes_compressed_out: number;
  /** Raw tensor data bytes of the tensors sent (before compression). */
  bytes_uncompressed_out: number;
  frames_sent: number;
  frames_received: number;
  /** Smoothed RTT (HELLO round trip, PING/PONG); 0 until measured. */
  rtt_estimate_ms: number;
  tensors_sent: number;
  tensors_received: number;
}

export interface RecvTensor {
  tensorId: number;
  tensor: Tensor;
  isGrad: boolean;
}

export interface CloseInfo {
  /** NACK token, `bye`, `lifetime`, `timeout`, `token_expired`, `closed` (port closed), or a local reason. */
  reason: string;
  text?: string;
  by: 'local' | 'remote';
  /** True when the session ended on a protocol error (NACK either way, timeout, port failure). */
  error: boolean;
}

/** What a token validator may tell the session: when the token expires (unix seconds) → the session closes then. */
export interface TokenAcceptance {
  expiresAt?: number;
}

export type TokenValidator = (
  token: string,
  hello: HelloMsg,
) => TokenAcceptance | void | Promise<TokenAcceptance | void>;

export interface CommonOptions {
  config?: Partial<TensorTransportConfig>;
  clock?: Clock;
  /** Where best-effort failures are noted (frame types and reasons only, never tensor bytes or tokens). */
  log?: Logger;
}

export interface ConnectOptions extends CommonOptions {
  /** Session id from `shard.connect` (ULID). */
  sessionId: string;
  purpose: string;
  /** This node (HELLO `from`). */
  local: NodeID;
  /** The host (HELLO `to`); must answer from this id. */
  remote: NodeID;
  negotiation?: Partial<Negotiation>;
}

export interface AcceptOptions extends CommonOptions {
  /** This node (HELLO `to`). */
  local: NodeID;
  /** Authenticated peer of the link (HELLO `from` must equal it). */
  peer: NodeID;
  expectedPurpose: string;
  validateToken: TokenValidator;
}
