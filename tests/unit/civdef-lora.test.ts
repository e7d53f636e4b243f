/**
 * M31 §4.9 / §7.13 with M29's simulated stick: civdef reaches the radio only through the bus
 * (`experimental.lora.status`, `experimental.lora.panic.send`). An `emergency` alert → exactly one burst of
 * 3 content-free panic frames ≈ 800 ms apart, once per alert and at most once per 60 s; a `warning` with
 * `lora` → `channels_skipped: ["lora"]` and nothing on air; a receiver with its own stick sends its own burst
 * for the verified alert; panic frames alone never create an alert.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../engine/core/encoding.js';
import { createNode, type HearthNode } from '../../engine/index.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import { FLAG_PANIC } from '../../engine/lora/frame.js';
import { createLoraModule } from '../../engine/lora/index.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SimSerial, SimSerialPort, SimStick } from '../../engine/lora/sim/stick.js';
import { PUB, ROOT, cert, draft, link, svcOf } from './civdef-helpers.js';
import { seedOf } from './helpers.js';

const ISSUM = 'DE.NRW.Kleve.Issum';
const WEHR = `${ISSUM}.Feuerwehr.Wehrleiter`;
const P = 'experimental.civdef.';

async function radioNode(n: number, clock: VirtualClock, channel: SimRadioChannel, community?: string) {
  const stick = new SimStick({ id: `civ${n}`, personality: 'hnlora-sx1276', channel, x: n * 50 });
  const serial = new SimSerial([new SimSerialPort(stick)]);
  await serial.requestPort();
  const node = await createNode({
    seed: seedOf(n),
    clock: clock.asKitClock(),
    modules: [createLoraModule({ ports: serial, simulated: true })],
    config: {
      lora: { adapter: 'rfm95w', scheduler: false },
      civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId], home_region: ISSUM },
      ...(community ? { community: { community_id: community } } : {}),
    } as never,
  });
  const p = node.enable('lora');
  await clock.advance(500);
  await p;
  return { node, stick };
}
/** let the virtual clock run while real IndexedDB work and bus calls settle */
async function run(clock: VirtualClock, ms: number, ...ns: HearthNode[]) {
  for (let t = 0; t < ms; t += 50) {
    await clock.advance(50);
    await new Promise((r) => setTimeout(r, 2));
    for (const n of ns) await svcOf(n).idle();
  }
}
const airOf = (ch: SimRadioChannel, id: string, from = 0) => ch.log.slice(from).filter((x) => x.from === id);

describe('M31 LoRa panic through M29 (simulated stick)', () => {
  it('emergency → one burst of 3 panic frames ≈ 800 ms apart, once per alert and per minute; warning → skipped', async () => {
    const clock = new VirtualClock(Date.now());
    const channel = new SimRadioChannel({ clock, shadowing: false });
    const A = await radioNode(151, clock, channel);
    const B = await radioNode(152, clock, channel, A.node.id);
    await link(A.node, B.node);
    expect(await A.node.call('experimental.lora.status', {})).toMatchObject({ state: 'ready' });
    const wc = cert(ROOT, A.node.id, WEHR, ISSUM, [...PUB, 'cosign.waived']);
    await A.node.call(`${P}role.register`, { cert: wc });
    const lora = { region: ISSUM, bbox: null, roles: [], channels: ['local', 'push', 'lora'] };
    const expires_at = new Date(clock.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

    // a warning with lora: skipped, nothing on air
    const w = await A.node.call(`${P}alert.publish`, draft(wc.cert_id, { target: lora }));
    expect(w.channels_skipped).toEqual(['lora']);
    await run(clock, 3000, A.node, B.node);
    expect(airOf(channel, 'civ151')).toHaveLength(0);

    // an emergency: exactly 3 identical content-free panic frames, ≈ 800 ms apart
    const before = channel.log.length;
    const e = await A.node.call(
      `${P}alert.publish`,
      draft(wc.cert_id, { severity: 'emergency', title: 'Deichbruch Issum', target: lora, expires_at }),
    );
    expect(e.channels_used).toContain('lora');
    await run(clock, 4000, A.node, B.node);
    const air = airOf(channel, 'civ151', before);
    expect(air).toHaveLength(3);
    expect(new Set(air.map((x) => toHex(x.payload))).size).toBe(1);
    expect(air[0]!.payload.length).toBe(32);
    expect(air[0]!.payload[7]! & FLAG_PANIC).toBe(FLAG_PANIC);
    for (let i = 1; i < 3; i++) {
      const gap = air[i]!.start - air[i - 1]!.end;
      expect(gap).toBeGreaterThanOrEqual(750);
      expect(gap).toBeLessThanOrEqual(850);
    }
    const sentBy = async (n: HearthNode) =>
      (await n.events.list({ type: 'lora.panic.sent' })).filter((ev) => ev.author === n.id);
    expect(await sentBy(A.node)).toHaveLength(1);

    // B received the verified alert through the log and sent its own burst, once
    expect((await B.node.call(`${P}alert.get`, { alert_id: e.alert_id })).state).toBe('active');
    expect(airOf(channel, 'civ152', before)).toHaveLength(3);

    // a retry of the same alert, and a second emergency within the minute: nothing more on air
    const again = await A.node.call(
      `${P}alert.publish`,
      draft(wc.cert_id, {
        severity: 'emergency',
        title: 'Deichbruch Issum',
        target: lora,
        expires_at,
        alert_id: e.alert_id,
      }),
    );
    expect(again.alert_id).toBe(e.alert_id);
    await A.node.call(
      `${P}alert.publish`,
      draft(wc.cert_id, { severity: 'emergency', title: 'Zweiter Deichbruch', target: lora }),
    );
    await run(clock, 4000, A.node, B.node);
    expect(airOf(channel, 'civ151', before)).toHaveLength(3);
    expect(await sentBy(A.node)).toHaveLength(1);

    // panic frames alone create no alert: B holds exactly the published alerts
    const ids = (await B.node.call(`${P}alert.list`, { active_only: false })).alerts.map(
      (a: { alert_id: string }) => a.alert_id,
    );
    expect(ids).toHaveLength(3);
    for (const n of [A.node, B.node]) await n.close();
  }, 120_000);
});
