/**
 * M29 service end to end on the simulated ether (digest §11 items 5–13): nodes with real keys and
 * real IndexedDB (fake-indexeddb) drive simulated sticks through the serial bridge and the adapters'
 * byte protocols; the SimRadioChannel carries the frames on a virtual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HnError } from '../../engine/core/errors.js';
import { toHex } from '../../engine/core/encoding.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { AIRTIME_KEY } from '../../engine/lora/duty_cycle.js';
import {
  beaconKeyFromSeed,
  encodeAuthFrame,
  encodeFrame,
  FLAG_OK,
  FLAG_PANIC,
  senderHashOf,
} from '../../engine/lora/frame.js';
import { LORA_DEFAULTS, LoraService } from '../../engine/lora/service.js';
import { SimStick } from '../../engine/lora/sim/stick.js';
import type { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import type { VirtualClock } from '../../engine/lora/clock.js';
import { kvOver, lockManager, makeNode, openDb, runFor, world, type TestNode } from './lora-helpers.js';

/** Two NodeIDs whose sender hashes collide (cb63f4d8), found by a birthday search; checked below. */
const COLLIDING = [
  'ed25519:AAFdHmhlYXJ0aG5ldC1sb3JhLWNvbGxpc2lvbgAAAAA',
  'ed25519:AAH0i2hlYXJ0aG5ldC1sb3JhLWNvbGxpc2lvbgAAAAA',
];

const nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.svc.stop();
    await n.store.close();
  }
});
async function node(o: Parameters<typeof makeNode>[0]) {
  const n = await makeNode(o);
  nodes.push(n);
  return n;
}

async function codeOf(p: Promise<unknown>, clock?: VirtualClock): Promise<HnError> {
  try {
    await (clock ? runFor(clock, p, 10_000) : p);
  } catch (e) {
    if (e instanceof HnError) return e;
    throw e;
  }
  throw new Error('expected an HnError');
}

/** A bare stick on the channel that puts arbitrary frames on air (an attacker or a foreign node). */
function transmitter(
  channel: SimRadioChannel,
  personality: 'meshtastic' | 'hnlora-sx1276' = 'meshtastic',
  id = 'tx',
) {
  const s = new SimStick({ id, personality, channel, x: 50 });
  if (personality !== 'meshtastic') {
    // configure the raw chip the way the default HNLORA config does
    s.connect(() => undefined);
    s.write(new TextEncoder().encode(`AT+HNCFG=868100000,9,125000,5,14,8,12\r\n`));
  }
  return (frame: Uint8Array) =>
    channel.transmit(
      s.id,
      frame,
      personality === 'meshtastic' ? 16 + 3 + 2 + frame.length + 2 : frame.length,
    );
}

describe('M29 two nodes on one simulated ether, per adapter (§11.11, §11.12)', () => {
  for (const [personality, adapter] of [
    ['meshtastic', 'meshtastic'],
    ['hnlora-sx1276', 'rfm95w'],
    ['hnlora-sx1262', 'sx126x'],
  ] as const) {
    it(`${adapter}: A beacons, B receives with RSSI/SNR; after verify B lists A as verified`, async () => {
      const { clock, channel } = world();
      const a = await node({ clock, channel, personality, adapter });
      const b = await node({ clock, channel, personality, adapter, x: 300 });
      expect(a.svc.status()).toMatchObject({
        state: 'ready',
        adapter,
        simulated: true,
        web_serial_supported: true,
      });
      const sent = await runFor(clock, a.svc.beaconSend({ flags: FLAG_OK }), 5000);
      expect(sent).toMatchObject({ sequence: 0, duty_cycle: { budget_ms: 36000 } });
      expect(sent.duty_cycle.used_ms).toBeCloseTo(sent.airtime_ms, 6);
      await clock.advance(3000);
      await b.svc.rx.idle();
      const got = b.svc.recentBeacons({}).beacons;
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({
        beacon_id: sent.beacon_id,
        sender_hash: senderHashOf(a.keys.nodeId),
        peer_state: 'unknown',
        flags: FLAG_OK,
      });
      expect(typeof got[0]!.rssi).toBe('number');
      expect(typeof got[0]!.snr).toBe('number');
      expect(b.of('lora.beacon.received')).toHaveLength(1);
      expect(b.of('lora.peer.unknown')).toEqual([
        expect.objectContaining({ sender_hash: senderHashOf(a.keys.nodeId) }),
      ]);
      expect(b.notes.filter((n) => n.kind === 'tofu_prompt')).toHaveLength(1);
      expect(a.of('lora.beacon.sent')).toEqual([
        expect.objectContaining({ beacon_id: sent.beacon_id, airtime_ms: sent.airtime_ms }),
      ]);
      const v = await b.svc.peerVerify({ sender_hash: senderHashOf(a.keys.nodeId), node_id: a.keys.nodeId });
      expect(v).toMatchObject({ state: 'verified', node_id: a.keys.nodeId });
      expect(b.of('lora.peer.verified')).toHaveLength(1);
      expect(b.svc.peerList({}).peers).toEqual([
        expect.objectContaining({
          sender_hash: senderHashOf(a.keys.nodeId),
          state: 'verified',
          node_id: a.keys.nodeId,
          beacons_seen: 1,
        }),
      ]);
      // a second beacon is now attributed, and prompts no more
      await runFor(clock, a.svc.beaconSend({}), 5000);
      await clock.advance(3000);
      await b.svc.rx.idle();
      expect(b.svc.recentBeacons({ limit: 1 }).beacons[0]).toMatchObject({
        peer_state: 'verified',
        node_id: a.keys.nodeId,
        sequence: 1,
      });
      expect(b.of('lora.peer.unknown')).toHaveLength(1);
      // A never surfaces its own frame (half duplex on air, self hash in the pipeline)
      expect(a.svc.recentBeacons({}).beacons).toHaveLength(0);
      if (adapter === 'meshtastic') expect(got[0]!.device_id).toMatch(/^![0-9a-f]{8}$/);
    });
  }
});

describe('M29 panic (§11.6, §11.7)', () => {
  it('burst: 3 identical frames ≥ 800 ms apart on air; the receiver emits one panic.received and one notification', async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'hnlora-sx1276' });
    const b = await node({ clock, channel, personality: 'hnlora-sx1276', x: 200 });
    const before = channel.log.length;
    const r = await runFor(clock, a.svc.panicSend(), 2000);
    expect(r).toMatchObject({ frames: 3, gap_ms: 800, override_used: false });
    expect(r.airtime_ms_total).toBeCloseTo(3 * 246.784, 6);
    await clock.advance(5000);
    await b.svc.rx.idle();
    const air = channel.log.slice(before);
    expect(air).toHaveLength(3);
    expect(new Set(air.map((x) => toHex(x.payload))).size).toBe(1);
    expect(air[0]!.payload[7]! & FLAG_PANIC).toBe(FLAG_PANIC);
    for (let i = 1; i < 3; i++) {
      const gap = air[i]!.start - air[i - 1]!.end;
      expect(gap).toBeGreaterThanOrEqual(750);
      expect(gap).toBeLessThanOrEqual(850);
    }
    expect(b.of('lora.panic.received')).toEqual([
      expect.objectContaining({
        beacon_id: r.beacon_id,
        verified: false,
        sender_hash: senderHashOf(a.keys.nodeId),
      }),
    ]);
    const panicNotes = b.notes.filter((n) => n.kind === 'panic');
    expect(panicNotes).toHaveLength(1);
    expect(panicNotes[0]).toMatchObject({ requireInteraction: true });
    expect(panicNotes[0]!.title).toMatch(/unverified/);
    expect(b.of('lora.beacon.received')).toHaveLength(1); // repeats deduplicated
    expect(a.of('lora.panic.sent')).toEqual([
      expect.objectContaining({ beacon_id: r.beacon_id, complete: true }),
    ]);
    expect(a.svc.dutyCycle().airtime_used_ms).toBeCloseTo(3 * 246.784, 6);
    // at most one burst per minute
    const e = await codeOf(a.svc.panicSend());
    expect(e.code).toBe('lora_duty_cycle_exhausted');
    expect(e.details?.reason).toBe('panic_cooldown');
    expect(e.retry_after_ms).toBeGreaterThan(0);
  });

  it('zero budget: beacon.send → exhausted with retry_after_ms (one event per episode); panic overrides; override off → exhausted', async () => {
    const { clock, channel } = world();
    const db = await openDb();
    const now = clock.now();
    await kvOver(db.store).put(AIRTIME_KEY, [{ t: now - 1000, airtime_ms: 36000 }]);
    const a = await node({ clock, channel, personality: 'hnlora-sx1276', db });
    const e1 = await codeOf(a.svc.beaconSend({}));
    expect(e1.code).toBe('lora_duty_cycle_exhausted');
    expect(e1.retry_after_ms).toBe(now - 1000 + 3_600_000 - clock.now());
    const e2 = await codeOf(a.svc.beaconSend({}));
    expect(e2.code).toBe('lora_duty_cycle_exhausted');
    expect(a.of('lora.duty_cycle.exhausted')).toHaveLength(1);
    expect(a.svc.dutyCycle()).toMatchObject({
      airtime_used_ms: 36000,
      airtime_budget_ms: 36000,
      next_tx_allowed_at: now - 1000 + 3_600_000,
    });
    const p = await runFor(clock, a.svc.panicSend(), 2000);
    expect(p.override_used).toBe(true);
    expect(a.of('lora.duty_cycle.overridden')).toHaveLength(1);
    expect(a.notes.filter((n) => n.kind === 'override')).toHaveLength(1);
    await clock.advance(4000);
    const dc = a.svc.dutyCycle();
    expect(dc.airtime_used_ms).toBeCloseTo(36000 + 3 * 246.784, 6); // the override still records airtime
    expect(dc.overrides_in_window).toBe(3);
    a.settings.duty_cycle_override_for_panic = false;
    await clock.advance(61_000);
    const e3 = await codeOf(a.svc.panicSend());
    expect(e3.code).toBe('lora_duty_cycle_exhausted');
  });

  it("the firmware's duty-cycle refusal (Routing DUTY_CYCLE_LIMIT) maps to lora_duty_cycle_exhausted and records nothing", async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'dutycycle-nak' });
    const e = await codeOf(a.svc.beaconSend({}), clock);
    expect(e.code).toBe('lora_duty_cycle_exhausted');
    expect(e.details?.source).toBe('firmware');
    expect(a.svc.dutyCycle().airtime_used_ms).toBe(0);
    expect(a.of('lora.duty_cycle.exhausted')).toEqual([expect.objectContaining({ source: 'firmware' })]);
    expect(channel.log).toHaveLength(0);
  });
});

describe('M29 receive pipeline (§11.8, §11.9)', () => {
  it('30 frames from one sender within 60 s: only 20 surface, 10 counted as rate_limited', async () => {
    const { clock, channel } = world();
    const b = await node({ clock, channel, personality: 'hnlora-sx1276' });
    const send = transmitter(channel, 'hnlora-sx1276');
    for (let i = 0; i < 30; i++) {
      send(encodeFrame({ sender_hash: 'a1b2c3d4', sequence: i, flags: FLAG_OK, unix_seconds: 1000 + i }));
      await clock.advance(1500);
    }
    await b.svc.rx.idle();
    expect(b.of('lora.beacon.received')).toHaveLength(20);
    expect(b.svc.status().rx_dropped.rate_limited).toBe(10);
    expect(b.of('lora.rx.dropped')).toHaveLength(0); // excess dropped silently
  });

  it('flooding 300 frames while the consumer is paused keeps the newest 256 and emits one lora.rx.dropped', async () => {
    const { clock, channel } = world();
    const b = await node({ clock, channel, personality: 'hnlora-sx1276' });
    b.svc.rx.pause();
    for (let i = 0; i < 300; i++)
      b.svc.rx.push({
        payload: encodeFrame({
          sender_hash: (0x10000000 + i).toString(16),
          sequence: i,
          flags: FLAG_OK,
          unix_seconds: i,
        }),
        rssi: -80,
        snr: 5,
        at: clock.now(),
      });
    expect(b.svc.status()).toMatchObject({
      queue_depth: 256,
      rx_dropped: expect.objectContaining({ queue: 44 }),
    });
    await clock.advance(2000);
    expect(b.of('lora.rx.dropped')).toEqual([{ count: 44, reason: 'queue' }]);
    b.svc.rx.resume();
    await b.svc.rx.idle();
    const seqs = b.svc
      .recentBeacons({ limit: 1000 })
      .beacons.map((x) => x.sequence)
      .sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 256 }, (_, i) => i + 44));
    await clock.advance(120_000);
    expect(b.of('lora.rx.dropped')).toHaveLength(1);
  });

  it('malformed frames (31, 33 bytes, version 2 in 32 bytes) over the air are dropped and counted as lora_frame_malformed', async () => {
    const { clock, channel } = world();
    const b = await node({ clock, channel, personality: 'meshtastic' });
    const send = transmitter(channel);
    const good = encodeFrame({ sender_hash: 'a1b2c3d4', sequence: 1, flags: FLAG_OK, unix_seconds: 5 });
    const v2 = good.slice();
    v2[0] = 2;
    for (const f of [good.slice(0, 31), new Uint8Array([...good, 0]), v2]) {
      send(f);
      await clock.advance(2000);
    }
    await b.svc.rx.idle();
    expect(b.svc.status().rx_dropped.malformed).toBe(3);
    expect(b.of('lora.beacon.received')).toHaveLength(0);
    await clock.advance(61_000);
    // coalesced: the first after 1 s, the rest at most once per 60 s
    const drops = b.of('lora.rx.dropped');
    expect(drops).toEqual([
      { count: 1, reason: 'malformed', error_code: 'lora_frame_malformed' },
      { count: 2, reason: 'malformed', error_code: 'lora_frame_malformed' },
    ]);
  });
});

describe('M29 TOFU (§11.10)', () => {
  it('the colliding NodeIDs really share a sender hash', () => {
    expect(senderHashOf(COLLIDING[0]!)).toBe('cb63f4d8');
    expect(senderHashOf(COLLIDING[1]!)).toBe('cb63f4d8');
  });

  it('prompt once; verify; a different NodeID → lora_peer_conflict + event; force resolves; unknown hash; block silences', async () => {
    const { clock, channel } = world();
    const b = await node({ clock, channel, personality: 'meshtastic' });
    const send = transmitter(channel);
    const beacon = async (hash: string, seq: number) => {
      send(encodeFrame({ sender_hash: hash, sequence: seq, flags: FLAG_OK, unix_seconds: seq }));
      await clock.advance(2000);
      await b.svc.rx.idle();
    };
    await beacon('cb63f4d8', 1);
    await beacon('cb63f4d8', 2);
    expect(b.of('lora.peer.unknown')).toHaveLength(1);
    expect(b.notes.filter((n) => n.kind === 'tofu_prompt')).toHaveLength(1);
    expect(b.svc.recentBeacons({}).beacons.every((x) => x.peer_state === 'unknown')).toBe(true);
    // wrong NodeID for the hash
    expect(
      (await codeOf(b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: generateKeyPair().nodeId }))).code,
    ).toBe('bad_request');
    expect((await codeOf(b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: 'ed25519:short' }))).code).toBe(
      'bad_request',
    );
    expect(await b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: COLLIDING[0]! })).toMatchObject({
      state: 'verified',
    });
    expect(await b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: COLLIDING[0]! })).toMatchObject({
      state: 'verified',
    }); // idempotent
    expect(b.of('lora.peer.verified')).toHaveLength(1);
    const c = await codeOf(b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: COLLIDING[1]! }));
    expect(c.code).toBe('lora_peer_conflict');
    expect(b.of('lora.peer.conflict')).toEqual([
      expect.objectContaining({ sender_hash: 'cb63f4d8', candidates: COLLIDING }),
    ]);
    expect(b.svc.peerList({ state: 'conflict' }).peers).toHaveLength(1);
    await beacon('cb63f4d8', 3);
    expect(b.svc.recentBeacons({ limit: 1 }).beacons[0]).toMatchObject({ peer_state: 'conflict' });
    expect(b.svc.recentBeacons({ limit: 1 }).beacons[0]!.node_id).toBeUndefined();
    expect(
      await b.svc.peerVerify({ sender_hash: 'cb63f4d8', node_id: COLLIDING[1]!, force: true }),
    ).toMatchObject({
      state: 'verified',
      node_id: COLLIDING[1],
    });
    // never heard
    expect((await codeOf(b.svc.peerVerify({ sender_hash: '00112233', node_id: COLLIDING[0]! }))).code).toBe(
      'lora_peer_unknown',
    );
    // a gossiped binding from another operator makes a conflict
    await b.svc.remotePeerVerified('cb63f4d8', COLLIDING[0]!);
    expect(b.of('lora.peer.conflict')).toHaveLength(2);
    // block: frames dropped, no events
    await b.svc.peerVerify({ sender_hash: 'cb63f4d8', action: 'block' });
    const n = b.events.length;
    await beacon('cb63f4d8', 4);
    await beacon('cb63f4d8', 5);
    expect(b.events.length).toBe(n);
    expect(b.svc.status().rx_dropped.blocked).toBe(2);
    expect(await b.svc.peerVerify({ sender_hash: 'cb63f4d8', action: 'unblock' })).toMatchObject({
      state: 'unknown',
    });
    expect(await b.svc.peerVerify({ sender_hash: 'cb63f4d8', action: 'forget' })).toMatchObject({
      state: 'forgotten',
    });
    expect(b.svc.peerList({}).peers).toHaveLength(0);
  });

  it('bad verify input leaves the stored peer map byte-identical', async () => {
    const { clock, channel } = world();
    const b = await node({ clock, channel, personality: 'meshtastic' });
    const send = transmitter(channel);
    send(encodeFrame({ sender_hash: 'cb63f4d8', sequence: 1, flags: FLAG_OK, unix_seconds: 1 }));
    await clock.advance(2000);
    await b.svc.rx.idle();
    const snap = async () => JSON.stringify(await b.store.getAll('meta'));
    const before = await snap();
    for (const bad of [
      { sender_hash: 'cb63f4d8', node_id: 'nope' },
      { sender_hash: 'cb63f4d8', node_id: COLLIDING[0], action: 'explode' },
      { sender_hash: 'cb63f4d8', node_id: COLLIDING[0], beacon_key: 'zz' },
      { sender_hash: 42 },
    ])
      expect(['bad_request', 'lora_peer_unknown']).toContain(
        (await codeOf(b.svc.peerVerify(bad as never))).code,
      );
    expect(await snap()).toBe(before);
  });
});

describe('M29 without hardware, and a failing stick (§11.13)', () => {
  it('no Web Serial: status unavailable/lora_hardware_unavailable; sends fail with lora_hardware_unavailable', async () => {
    const { clock } = world();
    const db = await openDb();
    const svc = await LoraService.create({
      self: generateKeyPair().nodeId,
      settings: () => ({ ...LORA_DEFAULTS, enabled: true }),
      kv: kvOver(db.store),
      clock,
      emit: () => undefined,
      ports: null,
    });
    await svc.start();
    expect(svc.status()).toMatchObject({
      state: 'unavailable',
      error_code: 'lora_hardware_unavailable',
      web_serial_supported: false,
    });
    expect((await codeOf(svc.beaconSend({}))).code).toBe('lora_hardware_unavailable');
    expect((await codeOf(svc.panicSend())).code).toBe('lora_hardware_unavailable');
    expect((await codeOf(svc.beaconSend({ flags: FLAG_PANIC }))).code).toBe('bad_request');
    expect((await codeOf(svc.beaconSend({ flags: 0x20 }))).code).toBe('bad_request');
    expect(svc.dutyCycle()).toMatchObject({
      window_seconds: 3600,
      airtime_budget_ms: 36000,
      airtime_used_ms: 0,
    });
    await svc.stop();
    await db.store.close();
  });

  it('no stick granted: unavailable; wrong firmware: lora_hardware_unsupported and not ready; silent stick: unsupported after 5 s', async () => {
    const { clock, channel } = world();
    const none = await node({ clock, channel, personality: 'meshtastic', grant: false, connect: false });
    await none.svc.start();
    expect(none.svc.status()).toMatchObject({
      state: 'unavailable',
      error_code: 'lora_hardware_unavailable',
    });
    const wrong = await node({ clock, channel, personality: 'wrong-fw', connect: false });
    const e = await codeOf(wrong.svc.connect(), clock);
    expect(e.code).toBe('lora_hardware_unsupported');
    expect(wrong.svc.status()).toMatchObject({ state: 'error', error_code: 'lora_hardware_unsupported' });
    expect((await codeOf(wrong.svc.beaconSend({}))).code).toBe('lora_hardware_unsupported');
    const silent = await node({
      clock,
      channel,
      personality: 'silent',
      adapter: 'meshtastic',
      connect: false,
    });
    const t0 = clock.now();
    const e2 = await codeOf(silent.svc.connect(), clock);
    expect(e2.code).toBe('lora_hardware_unsupported');
    expect(clock.now() - t0).toBeGreaterThanOrEqual(4500);
    expect(clock.now() - t0).toBeLessThan(6000);
  });

  it('a config the chip cannot do is refused with bad_request (sx1276 SF 5)', async () => {
    const { clock, channel } = world();
    const n = await node({
      clock,
      channel,
      personality: 'hnlora-sx1276',
      connect: false,
      settings: { spreading_factor: 5 },
    });
    expect((await codeOf(n.svc.connect())).code).toBe('bad_request');
  });

  it('unplug → unavailable; replug → reconnects with backoff; garbage between frames resyncs', async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'meshtastic', chunkSplit: 3 });
    const b = await node({ clock, channel, personality: 'meshtastic', x: 100 });
    a.port.unplug();
    await clock.advance(10);
    expect(a.svc.status()).toMatchObject({ state: 'unavailable', error_code: 'lora_hardware_unavailable' });
    expect((await codeOf(a.svc.beaconSend({}))).code).toBe('lora_hardware_unavailable');
    await clock.advance(5000);
    expect(a.svc.status().state).toBe('unavailable');
    a.port.replug();
    await clock.advance(70_000);
    expect(a.svc.status().state).toBe('ready');
    expect(a.port.opens).toBe(2);
    // garbage on B's line, then a real beacon: B resyncs and still hears it
    b.port.injectGarbage(new Uint8Array([0x94, 0xc3, 0xff, 0xff, 0x94, 0x00, 1, 2, 3, 0x0a, 0x94]));
    await runFor(clock, a.svc.beaconSend({}), 5000);
    await clock.advance(3000);
    await b.svc.rx.idle();
    expect(b.of('lora.beacon.received')).toHaveLength(1);
    expect(b.svc.status().rx_dropped.malformed).toBeGreaterThanOrEqual(1);
  });
});

describe('M29 state, scheduler and heartbeat', () => {
  it('the sequence number survives a reload (same database, new service)', async () => {
    const { clock, channel } = world();
    const db = await openDb();
    const keys = generateKeyPair();
    const a = await makeNode({ clock, channel, personality: 'hnlora-sx1276', keys, db });
    await runFor(clock, a.svc.beaconSend({}), 5000);
    await runFor(clock, a.svc.beaconSend({}), 5000);
    await a.svc.stop();
    a.stick.remove();
    const again = await makeNode({ clock, channel, personality: 'hnlora-sx1276', keys, db });
    nodes.push(again);
    const r = await runFor(clock, again.svc.beaconSend({}), 5000);
    expect(r.sequence).toBe(2);
    expect(again.svc.dutyCycle().airtime_used_ms).toBeCloseTo(3 * 246.784, 6);
  });

  it('the scheduler beacons every period ± jitter, waits silently on an empty budget, and sets PANIC when asked (M31)', async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'hnlora-sx1276', settings: { scheduler: true } });
    a.svc.setPanicNext();
    await clock.advance(2 * 3_600_000);
    const sent = a.of('lora.beacon.sent');
    expect(sent.length).toBeGreaterThanOrEqual(11);
    expect(sent.length).toBeLessThanOrEqual(14);
    expect(sent[0]!.flags & FLAG_PANIC).toBe(FLAG_PANIC);
    expect(sent.slice(1).every((s) => (s.flags & FLAG_PANIC) === 0)).toBe(true);
    for (let i = 2; i < sent.length; i++) {
      const gap = sent[i]!.sent_at - sent[i - 1]!.sent_at;
      expect(gap).toBeGreaterThanOrEqual(540_000);
      expect(gap).toBeLessThanOrEqual(660_000 + 5000);
    }
    expect(a.of('lora.duty_cycle.exhausted')).toHaveLength(0);
  });

  it('Meshtastic: a heartbeat at least every 5 minutes', async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'meshtastic' });
    await clock.advance(16 * 60_000);
    expect(a.stick.heartbeats).toBeGreaterThanOrEqual(3);
  });
});

describe('M29 authenticated beacons (v2)', () => {
  it('verified with the beacon key: authenticated; a forged panic with the right hash is dropped; a v1-only receiver tolerates v2', async () => {
    const { clock, channel } = world();
    const a = await node({ clock, channel, personality: 'hnlora-sx1276', settings: { frame_version: 2 } });
    const b = await node({ clock, channel, personality: 'hnlora-sx1276', x: 100 });
    const c = await node({
      clock,
      channel,
      personality: 'hnlora-sx1276',
      x: 150,
      settings: { accept_auth_frames: false },
    });
    const hash = senderHashOf(a.keys.nodeId);
    await runFor(clock, a.svc.beaconSend({}), 5000);
    await clock.advance(2000);
    await b.svc.rx.idle();
    expect(b.svc.recentBeacons({}).beacons[0]).toMatchObject({ frame_version: 2, authenticated: false });
    await b.svc.peerVerify({
      sender_hash: hash,
      node_id: a.keys.nodeId,
      beacon_key: toHex(beaconKeyFromSeed(a.keys.seed)),
    });
    await runFor(clock, a.svc.beaconSend({}), 5000);
    await clock.advance(2000);
    await b.svc.rx.idle();
    expect(b.svc.recentBeacons({ limit: 1 }).beacons[0]).toMatchObject({
      frame_version: 2,
      authenticated: true,
      peer_state: 'verified',
    });
    // forged: right hash, attacker's key
    const send = transmitter(channel, 'hnlora-sx1276', 'mallory');
    send(
      encodeAuthFrame(
        { sender_hash: hash, sequence: 999, flags: FLAG_PANIC | FLAG_OK, unix_seconds: 77 },
        beaconKeyFromSeed(generateKeyPair().seed),
      ),
    );
    await clock.advance(2000);
    await b.svc.rx.idle();
    expect(b.of('lora.panic.received')).toHaveLength(0);
    expect(b.svc.status().rx_dropped.malformed).toBe(1);
    await c.svc.rx.idle();
    expect(c.of('lora.beacon.received')).toHaveLength(0);
    expect(c.svc.status().rx_dropped.malformed).toBe(3);
    expect(c.svc.status().state).toBe('ready');
  });
});

describe('M29 three nodes on one ether at 10 % loss (§11.14, in Node)', () => {
  it('a panic from A reaches B and C within 3 s of virtual time, over 10 seeded runs', async () => {
    const { runPanicScenario } = await import('../../engine/lora/sim/scenario.js');
    let lost = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = await runPanicScenario({ seed, lossRate: 0.1 });
      for (const d of r.deliveryMs) expect(d).toBeLessThanOrEqual(3000);
      lost += r.channel.stats.lost;
    }
    expect(lost).toBeGreaterThan(0); // the loss really happened
  });
});

describe('M29 one tab owns the stick (Web Locks "hn-lora-port")', () => {
  it('a second tab reports unavailable; when the owner stops, the second takes over on its retry', async () => {
    const { clock, channel } = world();
    const locks = lockManager();
    const tab1 = await makeNode({ clock, channel, personality: 'hnlora-sx1276', locks });
    expect(tab1.svc.status().state).toBe('ready');
    expect(locks.held.has('hn-lora-port')).toBe(true);
    const tab2 = await node({
      clock,
      channel,
      personality: 'hnlora-sx1276',
      locks,
      sameStickAs: tab1,
      connect: false,
      grant: false,
    });
    await tab2.svc.start();
    expect(tab2.svc.status()).toMatchObject({
      state: 'unavailable',
      error_code: 'lora_hardware_unavailable',
    });
    expect((await codeOf(tab2.svc.beaconSend({}))).code).toBe('lora_hardware_unavailable');
    expect(tab1.port.opens).toBe(1);
    expect(tab2.svc.debugLog.some((l) => /another tab owns/.test(l))).toBe(true);
    await tab1.svc.stop();
    await tab1.store.close();
    expect(locks.held.has('hn-lora-port')).toBe(false);
    await clock.advance(5000);
    expect(tab2.svc.status().state).toBe('ready');
    expect(tab1.port.opens).toBe(2);
  });
});
