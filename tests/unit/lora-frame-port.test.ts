/**
 * M29: the module kit's byte-port acceptance suite, in its small-frame form, over each radio adapter —
 * Meshtastic, SX127x (RFM95W) and SX126x behind HNLORA/1 — each a LoraFramePort on a simulated stick,
 * two sticks on one simulated ether (loss-free here, so delivery must be complete), serial bytes split
 * into random chunks. The virtual clock runs in the background so the suite's real-time waits work.
 */
import { afterEach } from 'vitest';
import { LORA_BEACON_MAX_PAYLOAD_BYTES } from '../../engine/core/constants.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import { adapterFor } from '../../engine/lora/connection.js';
import { LoraFramePort } from '../../engine/lora/frame_port.js';
import { LORA_DEFAULTS, type LoraSettings } from '../../engine/lora/service.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SimSerialPort, SimStick, type StickPersonality } from '../../engine/lora/sim/stick.js';
import { cleanups, linkAcceptanceSuite, type SmallFrameKind } from '../suites/link-suite.js';

const pumps: { stop: boolean }[] = [];
afterEach(() => {
  for (const p of pumps.splice(0)) p.stop = true;
});

/** Let virtual time run while the test waits in real time. */
function pump(clock: VirtualClock) {
  const p = { stop: false };
  pumps.push(p);
  void (async () => {
    while (!p.stop) await clock.advance(50);
  })();
}

function radioKind(
  name: string,
  adapter: LoraSettings['adapter'],
  personality: StickPersonality,
): SmallFrameKind {
  return {
    name,
    caps: { frameBytes: LORA_BEACON_MAX_PAYLOAD_BYTES, maxPending: 4, lossy: false, closePropagates: false },
    async pair() {
      const clock = new VirtualClock();
      const channel = new SimRadioChannel({ clock, seed: 11, lossRate: 0, shadowing: false });
      const settings: LoraSettings = { ...LORA_DEFAULTS, enabled: true, adapter };
      const side = async (i: number) => {
        const stick = new SimStick({ id: `${name}-${i}`, personality, channel, x: i * 150 });
        const port = new SimSerialPort(stick, { chunkSplit: 3 + i });
        const opening = LoraFramePort.open({ adapter: adapterFor(settings), port, clock });
        return { port, fp: opening };
      };
      const s0 = await side(0);
      const s1 = await side(1);
      pump(clock);
      const [a, b] = await Promise.all([s0.fp, s1.fp]);
      cleanups.push(
        () => a.close('test over'),
        () => b.close('test over'),
      );
      const sides = [
        { port: s0.port, fp: a },
        { port: s1.port, fp: b },
      ];
      return {
        ports: [a, b],
        garbage: (s, bytes) => sides[s]!.port.injectGarbage(bytes),
        malformed: (s) => sides[s]!.fp.malformed,
      };
    },
  };
}

linkAcceptanceSuite(radioKind('lora meshtastic', 'meshtastic', 'meshtastic'));
linkAcceptanceSuite(radioKind('lora sx127x (rfm95w)', 'rfm95w', 'hnlora-sx1276'));
linkAcceptanceSuite(radioKind('lora sx126x', 'sx126x', 'hnlora-sx1262'));
