/**
 * M29 Radio view plumbing: the module's handle (LORA_HANDLES) exists only while the module is on,
 * connects through the provider's `requestPort` (the view's click), streams the live events and
 * notifications, keeps received panics as dismissable alerts; the view is declared in the definition.
 * RemoteSerialPort (the worker's and the Playwright bridge's port) behaves like a Web Serial port.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import { createLoraModule, LORA_HANDLES, lora, type LoraLiveEvent } from '../../engine/lora/index.js';
import { RemoteSerialPort } from '../../engine/lora/remote_port.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SimSerial, SimSerialPort, SimStick } from '../../engine/lora/sim/stick.js';
import { seedOf } from './helpers.js';

async function radioNode(n: number, clock: VirtualClock, channel: SimRadioChannel) {
  const stick = new SimStick({ id: `h${n}`, personality: 'meshtastic', channel, x: n * 50 });
  const serial = new SimSerial([new SimSerialPort(stick)]);
  const node = await createNode({
    seed: seedOf(n),
    clock: clock.asKitClock(),
    modules: [createLoraModule({ ports: serial, simulated: true })],
    config: { lora: { scheduler: false } },
  });
  const on = node.enable('lora');
  await clock.advance(100);
  await on;
  return { node, stick, serial };
}

describe('M29 Radio view handle', () => {
  it('the built-in definition declares the Radio view with a loader', () => {
    expect(lora.view).toMatchObject({ title: 'Radio', icon: '📡' });
    expect(typeof lora.view?.load).toBe('function');
  });

  it('connect by click, live events, panic alerts; gone when the module is off', async () => {
    const clock = new VirtualClock();
    const channel = new SimRadioChannel({ clock, shadowing: false });
    const A = await radioNode(61, clock, channel);
    const B = await radioNode(62, clock, channel);
    const hb = LORA_HANDLES.get(B.node.id)!;
    const ha = LORA_HANDLES.get(A.node.id)!;
    expect(ha.serialHost).toBe('main');
    expect(ha.now()).toBe(clock.now());
    const seen: LoraLiveEvent[] = [];
    const unsub = hb.subscribe((e) => seen.push(e));
    for (const h of [ha, hb]) {
      const p = h.connectStick();
      await clock.advance(500);
      expect(await p).toMatchObject({ state: 'ready', adapter: 'meshtastic' });
    }
    const panic = A.node.call('experimental.lora.panic.send', {});
    await clock.advance(100);
    await panic;
    await clock.advance(5000);
    await hb.service.rx.idle();
    expect(seen.some((e) => e.kind === 'event' && e.type === 'lora.panic.received')).toBe(true);
    const notes = seen.filter((e) => e.kind === 'notify' && e.notification.kind === 'panic');
    expect(notes).toHaveLength(1);
    expect(hb.alerts).toHaveLength(1);
    expect(hb.alerts[0]).toMatchObject({ kind: 'panic', requireInteraction: true });
    expect(ha.alerts).toHaveLength(0);
    hb.dismiss(hb.alerts[0]!.tag);
    expect(hb.alerts).toHaveLength(0);
    unsub();
    await B.node.disable('lora');
    expect(LORA_HANDLES.has(B.node.id)).toBe(false);
    await A.node.close();
    await B.node.close();
  });

  it('no Web Serial: the handle refuses to connect with lora_hardware_unavailable', async () => {
    const clock = new VirtualClock();
    const node = await createNode({
      seed: seedOf(63),
      clock: clock.asKitClock(),
      modules: [createLoraModule({ ports: null })],
    });
    await node.enable('lora');
    const h = LORA_HANDLES.get(node.id)!;
    expect(h.serialHost).toBeNull();
    await expect(h.connectStick()).rejects.toMatchObject({ code: 'lora_hardware_unavailable' });
    expect(await node.call('experimental.lora.status', {})).toMatchObject({
      state: 'unavailable',
      web_serial_supported: false,
    });
    await node.close();
  });

  it('RemoteSerialPort: one open at a time, writes reach the far side, answers and pushes are read in order, lost ends reads', async () => {
    const written: number[][] = [];
    const port = new RemoteSerialPort(
      {
        open: async () => undefined,
        write: async (b) => {
          written.push([...b]);
          return new Uint8Array([9]);
        },
        close: async () => undefined,
      },
      { usbVendorId: 1, usbProductId: 2 },
    );
    expect(port.getInfo()).toEqual({ usbVendorId: 1, usbProductId: 2 });
    await port.open({ baudRate: 115200 });
    await expect(port.open({ baudRate: 115200 })).rejects.toThrow(/InvalidState/);
    const w = port.writable!.getWriter();
    const r = port.readable!.getReader();
    await w.write(new Uint8Array([1, 2]));
    port.push(new Uint8Array([7, 8]));
    expect(written).toEqual([[1, 2]]);
    expect([...(await r.read()).value!]).toEqual([9]);
    expect([...(await r.read()).value!]).toEqual([7, 8]);
    port.lost();
    await expect(r.read()).rejects.toThrow(/lost/);
    expect(port.readable).toBeNull();
  });
});
