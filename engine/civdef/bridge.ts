/**
 * M31 bridge (§4.3): one operator's two nodes, one in each community (M14 federation does not exist
 * here), joined by the bus: the source side's `experimental.civdef.alert.subscribe` stream feeds the
 * destination side's `forwardIn` / `forwardCancelIn` / `forwardRevocationIn` (alert, cancelled and
 * revoked frames), which apply every forwarding rule and the receiver's checks. A destination without civdef
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
        const t = f.data?.type;
        if (t !== 'alert' && t !== 'cancelled' && t !== 'revoked') continue;
        const dest = CIVDEF_SERVICES.get(to.id);
        if (!dest) {
          log.info('civdef bridge: destination does not run civdef', { to: to.id });
          continue;
        }
        try {
          const r =
            t === 'alert'
              ? await dest.forwardIn(f.data.envelope, to.communityId)
              : t === 'cancelled'
                ? await dest.forwardCancelIn(f.data, to.communityId)
                : await dest.forwardRevocationIn(f.data, to.communityId);
          if (r.forwarded) log.info('civdef bridge: forwarded', { type: t });
        } catch (e) {
          // a tampered or unauthorized cancel or revocation: refused there, nothing stored; keep bridging
          log.warn('civdef bridge: refused', { type: t, code: toHnError(e).code });
        }
      }
    } catch (e) {
      if (!ac.signal.aborted) log.warn('civdef bridge stopped', { code: toHnError(e).code });
    }
  })();
  return { stop: () => ac.abort(), done };
}
