/**
 * The relay's metrics: the engine's registry (one metrics module for engine and relay), with
 * bounded labels (error codes, reject reasons, message kinds); no NodeIDs, rooms or
 * payload-derived values ever become labels.
 */
import type { NodeID } from '../engine/core/types.js';
import type { Metrics } from '../engine/observability/metrics.js';
import type { Conn } from './types.js';

export { Metrics as MetricsRegistry } from '../engine/observability/metrics.js';

/** The relay's metric families, with live gauges over its connections and rooms. */
export function registerMetrics(
  m: Metrics,
  ctx: { conns: Set<Conn>; rooms: Map<string, Map<NodeID, Conn>> },
) {
  const { conns, rooms } = ctx;
  m.gauge('hearthnet_relay_connections', 'Open WebSocket connections (joined or not).', () => conns.size);
  m.gauge('hearthnet_relay_peers', 'Authenticated peers present in rooms.', () => {
    let n = 0;
    for (const r of rooms.values()) n += r.size;
    return n;
  });
  m.gauge('hearthnet_relay_rooms', 'Rooms with at least one peer.', () => rooms.size);
  m.counter('hearthnet_relay_joins_total', 'Successful room joins.');
  m.counter('hearthnet_relay_messages_forwarded_total', 'Messages passed between peers, by kind.');
  m.counter('hearthnet_relay_forward_bytes_total', 'Bytes of binary forward frames passed between peers.');
  m.counter('hearthnet_relay_signal_bytes_total', 'Bytes of signal messages passed between peers.');
  m.counter('hearthnet_relay_errors_total', 'Error messages sent to clients, by wire code.');
  m.counter('hearthnet_relay_rejects_total', 'Rejected client input, by reason.');
  m.counter('hearthnet_relay_socket_errors_total', 'TCP socket errors (a peer reset or vanished), by code.');
  m.counter('hearthnet_relay_backpressure_pauses_total', 'Times frames were held for a slow target.');
  m.counter('hearthnet_relay_budget_pauses_total', 'Times a sender was paced for exceeding a budget.');
  m.gauge('hearthnet_relay_forward_pending_bytes', 'Bytes queued towards receivers right now.', () => {
    let n = 0;
    for (const c of conns) n += c.pending;
    return n;
  });
  m.gauge('hearthnet_relay_held_bytes', 'Bytes held for receivers that are not reading.', () => {
    let n = 0;
    for (const c of conns) n += c.heldBytes;
    return n;
  });
  m.gauge('hearthnet_relay_forward_pending_bytes_max', 'Largest queue towards one receiver since start.');
  m.set('hearthnet_relay_forward_pending_bytes_max', {}, 0);
  for (const name of [
    'hearthnet_relay_joins_total',
    'hearthnet_relay_forward_bytes_total',
    'hearthnet_relay_signal_bytes_total',
    'hearthnet_relay_backpressure_pauses_total',
    'hearthnet_relay_budget_pauses_total',
  ])
    m.inc(name, {}, 0);
}
