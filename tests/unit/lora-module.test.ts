/**
 * M29 as a module of the kit: flag off → experimental_disabled on all seven capabilities and nothing
 * registered; flag on with simulated sticks → the capabilities work through the bus, the logged
 * events are signed into the event log, local-only events stay out of it, remote trust rules hold.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import { CAPABILITIES, createLoraModule } from '../../engine/lora/index.js';
import type { LoraService } from '../../engine/lora/service.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SimSerial, SimSerialPort, SimStick } from '../../engine/lora/sim/stick.js';
import { link, seedOf } from './helpers.js';

async function loraNode(n: number, clock: VirtualClock, channel: SimRadioChannel, community?: string) {
  const stick = new SimStick({ id: `s${n}`, personality: 'hnlora-sx1276', channel, x: n * 100 });
  const serial = new SimSerial([new SimSerialPort(stick)]);
  await serial.requestPort();
  const local: string[] = [];
  let svc: LoraService | null = null;
  const node = await createNode({
    seed: seedOf(n),
    clock: clock.asKitClock(),
    modules: [
      createLoraModule({
        ports: serial,
        simulated: true,
        onLocalEvent: (t) => local.push(t),
        onService: (s) => (svc = s),
      }),
    ],
    config: {
      lora: { adapter: 'rfm95w', scheduler: false },
      ...(community ? { community: { community_id: community } } : {}),
    },
  });
  return { node, local, svc: () => svc };
}

async function enable(node: HearthNode, clock: VirtualClock) {
  const p = node.enable('lora');
  await clock.advance(500);
  await p;
}

describe('M29 module', () => {
  it('flag off: all seven capabilities answer experimental_disabled', async () => {
    const clock = new VirtualClock();
    const channel = new SimRadioChannel({ clock });
    const { node } = await loraNode(41, clock, channel);
    expect(CAPABILITIES).toHaveLength(7);
    for (const cap of CAPABILITIES)
      await expect(node.call(cap, {})).rejects.toMatchObject({ code: 'experimental_disabled' });
    expect(node.bus.list().some((d: { name: string }) => d.name.startsWith('experimental.lora.'))).toBe(
      false,
    );
    await node.close();
  });

  it('flag on: beacon through the bus, signed log gets beacon.sent, receiver keeps beacon.received local; trust rules for remote callers', async () => {
    const clock = new VirtualClock();
    const channel = new SimRadioChannel({ clock, shadowing: false });
    const A = await loraNode(42, clock, channel);
    const B = await loraNode(43, clock, channel, A.node.id);
    await enable(A.node, clock);
    await enable(B.node, clock);
    expect(await A.node.call('experimental.lora.status', {})).toMatchObject({
      state: 'ready',
      adapter: 'rfm95w',
      simulated: true,
    });
    const p = A.node.call('experimental.lora.beacon.send', { flags: 2 });
    await clock.advance(2000);
    const sent = await p;
    expect(sent).toMatchObject({ sequence: 0, airtime_ms: 246.784 });
    await clock.advance(2000);
    await B.svc()!.rx.idle();
    const got = await B.node.call('experimental.lora.recent_beacons', {});
    expect(got.beacons).toHaveLength(1);
    expect(got.beacons[0].beacon_id).toBe(sent.beacon_id);
    expect(await A.node.events.list({ type: 'lora.beacon.sent' })).toHaveLength(1);
    expect(await B.node.events.list({ type: 'lora.beacon.received' })).toHaveLength(0);
    expect(B.local).toEqual(expect.arrayContaining(['lora.beacon.received', 'lora.peer.unknown']));
    await expect(B.node.call('experimental.lora.beacon.send', { flags: 1 })).rejects.toMatchObject({
      code: 'bad_request',
    });
    expect(await A.node.call('experimental.lora.duty_cycle', {})).toMatchObject({
      airtime_budget_ms: 36000,
      airtime_used_ms: 246.784,
    });
    // remote: a member may read status, not the peer list, and may never key our radio
    await link(A.node, B.node);
    expect(await B.node.call('experimental.lora.status', {}, { peer: A.node.id })).toMatchObject({
      state: 'ready',
    });
    await expect(B.node.call('experimental.lora.peer.list', {}, { peer: A.node.id })).rejects.toMatchObject({
      code: 'unauthorized',
    });
    await expect(B.node.call('experimental.lora.panic.send', {}, { peer: A.node.id })).rejects.toMatchObject({
      code: 'unauthorized',
    });
    // off again: disabled, stick released
    await A.node.disable('lora');
    await expect(A.node.call('experimental.lora.status', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await A.node.close();
    await B.node.close();
  });
});
