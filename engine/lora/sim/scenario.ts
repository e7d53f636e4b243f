/**
 * A whole-ether scenario for tests and the bench: N nodes with simulated sticks on one channel with a
 * loss rate; node 0 sends a panic; returns, per receiver, the virtual milliseconds from the
 * `panic.send` call to its `lora.panic.received` (Infinity when it never arrived).
 */
import { generateKeyPair } from '../../identity/identity.js';
import { VirtualClock } from '../clock.js';
import type { LoraKv } from '../duty_cycle.js';
import { LORA_DEFAULTS, LoraService } from '../service.js';
import { prng, SimRadioChannel } from './channel.js';
import { SimSerial, SimSerialPort, SimStick, type StickPersonality } from './stick.js';

export interface PanicScenario {
  seed: number;
  lossRate: number;
  nodes?: number;
  personality?: StickPersonality;
  /** give up after this much virtual time */
  horizonMs?: number;
}

const mapKv = (): LoraKv => {
  const m = new Map<string, unknown>();
  return {
    get: async <T>(k: string) => structuredClone(m.get(k)) as T | undefined,
    put: async (k, v) => void m.set(k, structuredClone(v)),
  };
};

export async function runPanicScenario(
  o: PanicScenario,
): Promise<{ deliveryMs: number[]; channel: SimRadioChannel }> {
  const clock = new VirtualClock();
  const channel = new SimRadioChannel({ clock, seed: o.seed, lossRate: o.lossRate });
  const personality = o.personality ?? 'hnlora-sx1276';
  const adapter =
    personality === 'meshtastic' ? 'meshtastic' : personality === 'hnlora-sx1262' ? 'sx126x' : 'rfm95w';
  const n = o.nodes ?? 3;
  const rand = prng(o.seed * 7 + 1);
  const received: (number | null)[] = Array.from({ length: n }, () => null);
  const svcs: LoraService[] = [];
  let t0 = 0;
  for (let i = 0; i < n; i++) {
    const keys = generateKeyPair();
    const stick = new SimStick({ id: `n${i}`, personality, channel, x: rand() * 400, y: rand() * 400 });
    const serial = new SimSerial([new SimSerialPort(stick)]);
    await serial.requestPort();
    const svc = await LoraService.create({
      self: keys.nodeId,
      settings: () => ({ ...LORA_DEFAULTS, enabled: true, adapter, scheduler: false }),
      kv: mapKv(),
      clock,
      emit: (type) => {
        if (type === 'lora.panic.received' && received[i] === null) received[i] = clock.now() - t0;
      },
      ports: serial,
      simulated: true,
      random: prng(o.seed + i),
    });
    const p = svc.connect();
    await clock.advance(200);
    await p;
    svcs.push(svc);
  }
  t0 = clock.now();
  const p = svcs[0]!.panicSend();
  const horizon = o.horizonMs ?? 5000;
  for (let t = 0; t < horizon && received.slice(1).some((r) => r === null); t += 50) await clock.advance(50);
  await p;
  for (const s of svcs) await s.stop();
  return { deliveryMs: received.slice(1).map((r) => (r === null ? Infinity : r)), channel };
}
