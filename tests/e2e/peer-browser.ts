/**
 * Chromium launch flags shared by the e2e specs and the browser benches: Debian Chromium headless
 * (`CHROMIUM_ARGS`, playwright.config.ts), plus what a peer or a WebGPU run needs on top.
 */
import { CHROMIUM_ARGS } from '../../playwright.config.js';

/** A peer browser of the multi-browser specs: loopback host candidates instead of mDNS names (no mDNS responder here; tensor digest A5). */
export const PEER_ARGS = [...CHROMIUM_ARGS, '--disable-features=WebRtcHideLocalIpsWithMdns'];

/** WebGPU on SwiftShader (what headless Debian Chromium has). */
export const WEBGPU_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--use-webgpu-adapter=swiftshader',
];
