/**
 * Launch flags for a peer browser in the multi-browser specs: Debian Chromium headless, and loopback
 * host candidates instead of mDNS names (no mDNS responder here; tensor digest A5).
 */
export const PEER_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];
