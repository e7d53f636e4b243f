/**
 * Starts the serial worker and returns its port provider, or null where the worker has no Web Serial
 * (then the LoRa module drives `navigator.serial` on the main thread).
 */
import * as Comlink from 'comlink';
import type { PortProvider } from '../../engine/lora/serial_bridge.js';
import type { SerialWorkerApi } from './core.js';
import { remotePortProvider } from './provider.js';

export async function workerPortProvider(page: PortProvider, waitMs = 3000): Promise<PortProvider | null> {
  if (typeof Worker === 'undefined') return null;
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'hn-serial' });
  const api = Comlink.wrap<SerialWorkerApi>(worker);
  const ok = await Promise.race([
    api.supported().catch(() => false),
    new Promise<false>((r) => setTimeout(() => r(false), waitMs)),
  ]);
  if (!ok) {
    worker.terminate();
    return null;
  }
  return remotePortProvider(page, api, (f) => Comlink.proxy(f));
}
