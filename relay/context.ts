/** What the relay's parts share: options, state, metrics, and the send/reject primitives. */
import type { NodeID } from '../engine/core/types.js';
import { shortNodeId } from '../engine/identity/identity.js';
import type { Metrics } from '../engine/observability/metrics.js';
import type { RelayErrorCode } from '../engine/net/relay-wire.js';
import type { Conn, ResolvedOptions } from './types.js';

export interface RelayCtx {
  o: ResolvedOptions;
  m: Metrics;
  rooms: Map<string, Map<NodeID, Conn>>;
  conns: Set<Conn>;
  log(level: 'info' | 'warning' | 'error', msg: string, fields?: Record<string, unknown>): void;
  /** Send a text message through the connection's accounted queue. */
  sendJson(c: Conn, msg: Record<string, unknown>): void;
  reject(
    c: Conn,
    code: RelayErrorCode,
    reason: string,
    message: string,
    extra?: { close?: boolean; retry_after_ms?: number; to?: NodeID; strike?: boolean },
  ): void;
  closeConn(c: Conn, code: number, reason: string): void;
  pauseReading(c: Conn, reason: string): void;
  /** Did `node` leave room side `bucket` in the last few seconds (frames to it may still be in flight)? */
  recentlyLeft(bucket: string, node: NodeID): boolean;
  resumeReading(c: Conn, reason: string): void;
}

/** Short NodeID for logs (never the full id, never content). */
export const shortId = (id: string | null): string | undefined => {
  if (!id) return undefined;
  try {
    return shortNodeId(id as NodeID);
  } catch {
    return undefined;
  }
};
