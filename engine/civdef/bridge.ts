/**
 * M31 bridge (§4.3): one operator's two nodes, one in each community (M14 federation does not exist
 * here), joined by the bus: the source side's `experimental.civdef.alert.subscribe` stream feeds the
 * destination side's `forwardIn`, which applies every forwarding rule. A destination without civdef
 * (module off: it does not advertise civdef) forwards nothing. Role-restricted alerts are never
 * bridged (their content stays out of gossip); start it both ways for a two-way bridge.
 */
import { toHnError } from '../core/errors.js';
import { CIVDEF_SERVICES } from './index.js';

export interface BridgeNode {
  readonly id: string;
  stream(cap: string, input: unknown, opts?: { signal?: AbortSignal }): AsyncIterable<{ data: any }>;
}
export interface BridgeLog {
  info(msg: string, d?: Record<string, unknown>): void;
  warn(msg: string, d?: Record<string, unknown>): void;
}

/** Forward alerts seen by `from` into `to`'s community; returns the stop function and the run's promise. */
export function startBridge(
  from: BridgeNode,
  to: { readonly id: string; readonly communityId: string },
  log: BridgeLog = console,
): { stop(): void; done: Promise<void> } {
  const ac = new AbortController();
  const done = (async () => {
    try {
      const frames = from.stream(
        'experimental.civdef.alert.subscribe',
        { replay_active: true },
        { signal: ac.signal },
      );
      for await (const f of frames) {
        if (f.data?.type !== 'alert') continue;
        const dest = CIVDEF_SERVICES.get(to.id);
        if (!dest) {
          log.info('civdef bridge: destination does not run civdef', { to: to.id });
          continue;
        }
        const r = await dest.forwardIn(f.data.envelope, to.communityId);
        if (r.forwarded) log.info('civdef bridge: forwarded', { alert_id: f.data.envelope.alert.alert_id });
      }
    } catch (e) {
      if (!ac.signal.aborted) log.warn('civdef bridge stopped', { code: toHnError(e).code });
    }
  })();
  return { stop: () => ac.abort(), done };
}
