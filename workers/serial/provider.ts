/**
 * The page side of the serial worker: a `PortProvider` for the LoRa service whose ports are opened in
 * the worker. Picking stays on the page (`requestPort` needs the click's transient activation and
 * shows the browser's chooser); the worker finds the same port among its `getPorts()` by USB ids.
 * `wrapCallback` makes the byte callbacks cross the worker boundary (`Comlink.proxy`); identity in tests.
 */
import { RemoteSerialPort } from '../../engine/lora/remote_port.js';
import type { PortProvider, SerialPortLike } from '../../engine/lora/serial_bridge.js';
import type { SerialWorkerApi } from './core.js';

type Remote<T> = {
  [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never;
};

export function remotePortProvider(
  page: PortProvider,
  api: Remote<SerialWorkerApi>,
  wrapCallback: <F extends (...a: never[]) => void>(f: F) => F = (f) => f,
): PortProvider {
  const wrap = (p: SerialPortLike): SerialPortLike => {
    const info = p.getInfo();
    const remote: RemoteSerialPort = new RemoteSerialPort(
      {
        open: ({ baudRate }) =>
          api.open(
            info,
            baudRate,
            wrapCallback((b: Uint8Array) => remote.push(b)),
            wrapCallback((reason: string) => remote.lost(reason)),
          ),
        write: (b) => api.write(b),
        close: () => api.close(),
      },
      info,
    );
    return remote;
  };
  return {
    // plug events come from the page's navigator.serial (the same grants as the worker's)
    addEventListener: (type, l) => page.addEventListener?.(type, l),
    removeEventListener: (type, l) => page.removeEventListener?.(type, l),
    getPorts: async () => (await page.getPorts()).map(wrap),
    requestPort: async (opts) => {
      if (!page.requestPort) throw new Error('NotSupportedError: no port chooser here');
      return wrap(await page.requestPort(opts));
    },
  };
}
