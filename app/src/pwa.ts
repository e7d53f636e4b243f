/**
 * Service worker registration (vite-plugin-pwa, autoUpdate): the shell is precached on the first
 * visit; a new build activates on its own and the page reloads into it.
 */
import { writable } from 'svelte/store';
import { registerSW } from 'virtual:pwa-register';

export type OfflineState = 'unsupported' | 'installing' | 'ready' | 'error';
export const offlineState = writable<OfflineState>('installing');

export function startServiceWorker(): void {
  if (!('serviceWorker' in navigator)) {
    offlineState.set('unsupported');
    return;
  }
  registerSW({
    immediate: true,
    onOfflineReady: () => offlineState.set('ready'),
    onRegisteredSW: (_url, reg) => {
      // already installed on an earlier visit: the shell is in the cache
      if (reg?.active) offlineState.set('ready');
    },
    onRegisterError: () => offlineState.set('error'),
  });
}
