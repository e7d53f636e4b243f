/// <reference types="vite/client" />
/// <reference types="vite-plugin-pwa/client" />
import type { HearthNode } from '../../engine/index.js';

declare global {
  interface Window {
    /** the running node, for automation (Playwright, conformance, the console) */
    hearthnet?: HearthNode;
    /** true once the node has booted and the shell is live */
    hearthnetReady?: boolean;
    /** set instead of hearthnetReady when boot failed */
    hearthnetBootError?: { code: string; message: string; field?: string };
    /** the inference client (worker + model store), imported on demand */
    hearthnetInference?: () => Promise<import('./llm/lazy.js').InferenceClient>;
  }
}
