/**
 * Joins this node's community room at the relay (config `relay`: `urls` [] = the origin that
 * served the app). Never blocks boot: offline, the relay client just keeps backing off.
 * Peers link directly over WebRTC (simple-peer, loaded lazily after boot) and fall back to
 * links forwarded by the relay (end-to-end encrypted) when no direct channel can be made.
 */
import { writable } from 'svelte/store';
import type { HearthNode, HearthnetConfig, RelayPass } from '../../engine/index.js';
import { toDisplayError, type DisplayError } from './errors.js';

export const meshError = writable<DisplayError | null>(null);

/** The relay's WebSocket URL for this config, or null when the relay is switched off. */
export function relayWsUrl(cfg: HearthnetConfig, loc: Location | URL): string | null {
  if (!cfg.relay.enabled) return null;
  const first = cfg.relay.urls[0];
  const url = new URL(first ?? '/ws', loc.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  return url.href;
}

type JoinOptions = Parameters<HearthNode['joinRelay']>[0];

/** simple-peer's browser bundle; null where the page has no WebRTC (links then go through the relay). */
async function loadSimplePeer(): Promise<JoinOptions['SimplePeer'] | null> {
  if (typeof RTCPeerConnection === 'undefined') return null;
  try {
    const mod = await import('simple-peer/simplepeer.min.js');
    return mod.default as JoinOptions['SimplePeer'];
  } catch {
    return null;
  }
}

/** Join the relay room; `relayPass` (from an invite link) admits this node to an invite community's members. */
export function startMesh(node: HearthNode, loc: Location = location, relayPass?: RelayPass): void {
  const url = relayWsUrl(node.config, loc);
  if (!url || typeof WebSocket === 'undefined') return;
  loadSimplePeer()
    .then((SimplePeer) =>
      node.joinRelay({
        url,
        WebSocket,
        displayName: node.config.identity.display_name,
        ...(relayPass ? { relayPass } : {}),
        ...(SimplePeer ? { SimplePeer } : {}),
      }),
    )
    .then(() => meshError.set(null))
    .catch((e: unknown) => {
      // offline or relay down: the client keeps retrying; show why it is not joined yet
      if (navigator.onLine) meshError.set(toDisplayError(e));
    });
}
