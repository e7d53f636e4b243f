/**
 * The page side of the Playwright run (digest §10): the Node runner owns the SimRadioChannel, the
 * SimSticks and the virtual clock; it exposes one binding per page (`__hearthnetLoraSim`). Here the
 * page gets a port provider whose one port carries the adapter's real bytes to the Node stick through
 * that binding, and a VirtualClock the runner advances (`__hearthnetLoraSimTick(hexBytes, now)`), so
 * the service, adapter, serial bridge and frame codec in the page run unchanged on one virtual time.
 * Loaded (dynamic import) only when the binding exists; test-only.
 */
import { fromHex, toHex } from '../../core/encoding.js';
import { VirtualClock } from '../clock.js';
import { RemoteSerialPort } from '../remote_port.js';
import type { PortProvider, SerialPortLike } from '../serial_bridge.js';

export type SimBinding = (op: 'now' | 'open' | 'write' | 'close', hex?: string) => Promise<string | number>;

export const SIM_BINDING = '__hearthnetLoraSim';
export const SIM_TICK = '__hearthnetLoraSimTick';

export interface PageSim {
  ports: PortProvider;
  clock: VirtualClock;
  port: RemoteSerialPort;
}

export async function pageSim(binding: SimBinding): Promise<PageSim> {
  const clock = new VirtualClock(Number(await binding('now')));
  const port = new RemoteSerialPort(
    {
      open: async () => void (await binding('open')),
      write: async (b) => {
        const back = String(await binding('write', toHex(b)));
        return back ? fromHex(back) : null;
      },
      close: async () => void (await binding('close')),
    },
    { usbVendorId: 0x10c4, usbProductId: 0xea60 },
  );
  let granted = false;
  const ports: PortProvider = {
    getPorts: async (): Promise<SerialPortLike[]> => (granted ? [port] : []),
    requestPort: async () => {
      granted = true;
      return port;
    },
  };
  let chain: Promise<void> = Promise.resolve();
  (globalThis as Record<string, unknown>)[SIM_TICK] = (hex: string, now: number): Promise<void> => {
    chain = chain.then(async () => {
      if (hex) port.push(fromHex(hex));
      await clock.advance(Math.max(0, now - clock.now()));
    });
    return chain;
  };
  return { ports, clock, port };
}
