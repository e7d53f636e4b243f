/**
 * M29 serial worker (digest §10): the worker's logic (workers/serial/core.ts) and the page's port
 * provider (workers/serial/provider.ts) joined by real comlink over a MessageChannel, driving a real
 * LoraService against the simulated stick: connect by USB ids, beacons on the ether, unplug → lost →
 * unavailable, replug → reconnect with backoff; no Web Serial → unsupported; a boot-time retry never
 * reopens a stick the user connected meanwhile.
 */
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { LORA_DEFAULTS, LoraService } from '../../engine/lora/service.js';
import { SimSerial, SimSerialPort, SimStick } from '../../engine/lora/sim/stick.js';
import type { VirtualClock } from '../../engine/lora/clock.js';
import { SerialWorkerCore, type SerialWorkerApi } from '../../workers/serial/core.js';
import { remotePortProvider } from '../../workers/serial/provider.js';
import { kvOver, makeNode, openDb, runFor, world } from './lora-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** let real message-port traffic flow while virtual time moves */
async function spin(clock: VirtualClock, ms: number, until?: () => boolean) {
  for (let t = 0; t < ms && !until?.(); t += 50) {
    await new Promise((r) => setTimeout(r, 1));
    await clock.advance(50);
  }
}

describe('M29 serial worker', () => {
  it('without navigator.serial the worker reports unsupported and refuses to open', async () => {
    const core = new SerialWorkerCore(null);
    expect(core.supported()).toBe(false);
    expect(core.status()).toMatchObject({ supported: false, open: false });
    await expect(
      core.open(
        {},
        115200,
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow(/NotSupported/);
  });

  it('a port that is not granted is not found; a granted one opens 8N1 and moves bytes both ways', async () => {
    const { channel } = world();
    const port = new SimSerialPort(new SimStick({ id: 'w0', personality: 'hnlora-sx1276', channel }), {
      usbVendorId: 0x2341,
      usbProductId: 0x0043,
    });
    const serial = new SimSerial([port]);
    const core = new SerialWorkerCore(serial);
    await expect(
      core.open(
        { usbVendorId: 0x2341 },
        115200,
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow(/NotFound/);
    await serial.requestPort();
    const got: number[] = [];
    await core.open(
      { usbVendorId: 0x2341, usbProductId: 0x0043 },
      115200,
      (b) => got.push(...b),
      () => undefined,
    );
    await core.write(new TextEncoder().encode('AT\r\n'));
    await new Promise((r) => setTimeout(r, 5));
    expect(new TextDecoder().decode(new Uint8Array(got))).toBe('OK\r\n');
    expect(core.status()).toMatchObject({ open: true, bytes_out: 4, bytes_in: 4 });
    await core.close();
    expect(core.status().open).toBe(false);
    expect(port.readable).toBeNull();
  });

  it('through comlink: the service connects, beacons reach another node, unplug → unavailable, replug → ready', async () => {
    const { clock, channel } = world();
    const stick = new SimStick({ id: 'wa', personality: 'meshtastic', channel });
    const port = new SimSerialPort(stick, { chunkSplit: 5 });
    // one browser profile: the page and its worker see the same granted ports
    const serial = new SimSerial([port]);
    const core = new SerialWorkerCore(serial);
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(core, port1);
    const api = Comlink.wrap<SerialWorkerApi>(port2);
    cleanups.push(() => {
      api[Comlink.releaseProxy]();
      port1.close();
      port2.close();
    });
    const provider = remotePortProvider(serial, api, (f) => Comlink.proxy(f));
    const db = await openDb();
    const events: string[] = [];
    const svc = await LoraService.create({
      self: generateKeyPair().nodeId,
      settings: () => ({ ...LORA_DEFAULTS, enabled: true, scheduler: false }),
      kv: kvOver(db.store),
      clock,
      emit: (t) => events.push(t),
      ports: provider,
    });
    cleanups.push(() => svc.stop());
    await svc.start(); // nothing granted yet: unavailable, a retry pending
    expect(svc.status().state).toBe('unavailable');
    const picked = await provider.requestPort!({ filters: [] });
    expect(picked.getInfo()).toEqual(port.getInfo());
    const connecting = svc.connect(picked);
    await spin(clock, 5000, () => ['ready', 'error'].includes(svc.status().state));
    await connecting;
    expect(svc.status()).toMatchObject({
      state: 'ready',
      device_id: `!${stick.nodeNum.toString(16).padStart(8, '0')}`,
    });
    expect(await api.status()).toMatchObject({ supported: true, open: true });

    const b = await makeNode({ clock, channel, personality: 'meshtastic', x: 100 });
    cleanups.push(() => b.svc.stop());
    const sent = svc.beaconSend({});
    await spin(clock, 5000, () => stick.txFrames.length > 0);
    await runFor(clock, sent, 5000);
    await spin(clock, 3000);
    await b.svc.rx.idle();
    expect(b.of('lora.beacon.received')).toHaveLength(1);
    expect(events).toContain('lora.beacon.sent');

    port.unplug();
    await spin(clock, 500, () => svc.status().state === 'unavailable');
    expect(svc.status()).toMatchObject({ state: 'unavailable', error_code: 'lora_hardware_unavailable' });
    expect(await api.status()).toMatchObject({ open: false, last_error: expect.stringMatching(/lost/) });
    await spin(clock, 5000);
    expect(svc.status().state).toBe('unavailable');
    // replug: the provider's `connect` event reconnects at once (the backoff's next try is seconds away)
    const t = clock.now();
    port.replug();
    await spin(clock, 70_000, () => svc.status().state === 'ready');
    expect(clock.now() - t).toBeLessThan(1000);
    expect(svc.status().state).toBe('ready');
    expect(port.opens).toBe(2);
  });

  it('a retry left from boot (no stick yet) does not reopen the stick the user connected meanwhile', async () => {
    const { clock, channel } = world();
    const n = await makeNode({ clock, channel, personality: 'meshtastic', connect: false, grant: false });
    cleanups.push(() => n.svc.stop());
    await n.svc.start(); // no granted port: unavailable, retry in 1 s, then 2 s, 4 s…
    expect(n.svc.status().state).toBe('unavailable');
    const p = await n.serial.requestPort();
    await runFor(clock, n.svc.connect(p), 5000);
    expect(n.svc.status().state).toBe('ready');
    await clock.advance(120_000);
    expect(n.svc.status().state).toBe('ready');
    expect(n.port.opens).toBe(1);
  });
});
