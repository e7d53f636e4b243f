/**
 * Meshtastic serial API adapter (digest §8): frames are `0x94 0xC3 len_hi len_lo` + protobuf
 * (len ≤ 512); bytes outside frames are firmware debug text. Init: wake with 32 × 0xC3, then
 * want_config with a random nonce, read my_info / config.lora until config_complete_id = nonce.
 * TX: ToRadio.packet = broadcast MeshPacket, PRIVATE_APP, hop_limit 0.
 */
import { HnError } from '../../core/errors.js';
import {
  BROADCAST_NUM,
  decodeFromRadio,
  decodeRouting,
  encodeToRadio,
  PORTNUM_PRIVATE_APP,
  PORTNUM_ROUTING_APP,
  ROUTING_ERROR_DUTY_CYCLE_LIMIT,
  type FromRadioMsg,
} from '../meshtastic_pb.js';
import {
  DEFRAMER_BUFFER_MAX,
  type AdapterIO,
  type DeviceInfo,
  type LoraAdapter,
  type RadioInfo,
  type RxEvent,
} from './types.js';

export const START1 = 0x94;
export const START2 = 0xc3;
export const MESHTASTIC_MAX_LEN = 512;
const DEBUG_TEXT_MAX = 200;

/** Meshtastic modem presets (bandwidth kHz, SF, CR denominator); preamble 16 symbols. */
export const MODEM_PRESETS: Record<number, { name: string; bw_khz: number; sf: number; cr: number }> = {
  0: { name: 'LONG_FAST', bw_khz: 250, sf: 11, cr: 5 },
  1: { name: 'LONG_SLOW', bw_khz: 125, sf: 12, cr: 8 },
  3: { name: 'MEDIUM_SLOW', bw_khz: 250, sf: 10, cr: 5 },
  4: { name: 'MEDIUM_FAST', bw_khz: 250, sf: 9, cr: 5 },
  5: { name: 'SHORT_SLOW', bw_khz: 250, sf: 8, cr: 5 },
  6: { name: 'SHORT_FAST', bw_khz: 250, sf: 7, cr: 5 },
  7: { name: 'LONG_MODERATE', bw_khz: 125, sf: 11, cr: 8 },
  8: { name: 'SHORT_TURBO', bw_khz: 500, sf: 7, cr: 5 },
};
export const REGION_CODES: Record<number, string> = { 1: 'US', 3: 'EU_868', 6: 'ANZ', 0: 'UNSET' };

/** Wrap a protobuf in the serial frame header. */
export function frameSerial(pb: Uint8Array): Uint8Array {
  if (pb.length > MESHTASTIC_MAX_LEN)
    throw new HnError('bad_request', 'meshtastic frame longer than 512 bytes');
  const out = new Uint8Array(4 + pb.length);
  out[0] = START1;
  out[1] = START2;
  out[2] = pb.length >> 8;
  out[3] = pb.length & 0xff;
  out.set(pb, 4);
  return out;
}

/** The serial de-framer alone (shared by the adapter and the simulated stick). */
export class MeshtasticDeframer {
  private buf = new Uint8Array(0);
  private text: number[] = [];
  get buffered(): number {
    return this.buf.length + this.text.length;
  }
  /** returns complete protobufs, debug text lines and resync counts */
  push(bytes: Uint8Array): { frames: Uint8Array[]; debug: string[]; resyncs: number } {
    const frames: Uint8Array[] = [];
    const debug: string[] = [];
    let resyncs = 0;
    const joined = new Uint8Array(this.buf.length + bytes.length);
    joined.set(this.buf);
    joined.set(bytes, this.buf.length);
    let i = 0;
    const flushText = () => {
      if (this.text.length) {
        debug.push(String.fromCharCode(...this.text.slice(0, DEBUG_TEXT_MAX)).replace(/[^\x20-\x7e]/g, '.'));
        this.text = [];
      }
    };
    while (i < joined.length) {
      if (joined[i] !== START1) {
        const c = joined[i]!;
        if (c === 0x0a) flushText();
        else if (this.text.length < DEBUG_TEXT_MAX) this.text.push(c);
        i++;
        continue;
      }
      if (i + 1 >= joined.length) break; // need START2
      if (joined[i + 1] !== START2) {
        if (this.text.length < DEBUG_TEXT_MAX) this.text.push(joined[i]!);
        i++;
        continue;
      }
      if (i + 4 > joined.length) break; // need the length
      const len = (joined[i + 2]! << 8) | joined[i + 3]!;
      if (len > MESHTASTIC_MAX_LEN) {
        resyncs++; // bad length: skip the start byte and hunt for the next header
        i++;
        continue;
      }
      if (i + 4 + len > joined.length) break; // wait for the rest
      flushText();
      frames.push(joined.slice(i + 4, i + 4 + len));
      i += 4 + len;
    }
    this.buf = joined.slice(i);
    if (this.text.length >= DEBUG_TEXT_MAX) flushText();
    if (this.buf.length > DEFRAMER_BUFFER_MAX) {
      // cannot happen with len ≤ 512, kept as the bridge's hard cap
      this.buf = new Uint8Array(0);
      resyncs++;
    }
    return { frames, debug, resyncs };
  }
}

export interface MeshtasticOptions {
  channel?: number;
  tx_power_dbm?: number;
}

export class MeshtasticAdapter implements LoraAdapter {
  readonly name = 'meshtastic' as const;
  private deframer = new MeshtasticDeframer();
  private modem: RadioInfo = { sf: 11, bw_khz: 250, cr: 5, preamble: 16, tx_power_dbm: 14 };
  constructor(private readonly opts: MeshtasticOptions = {}) {}

  get buffered(): number {
    return this.deframer.buffered;
  }

  async init(io: AdapterIO): Promise<DeviceInfo> {
    await io.write(new Uint8Array(32).fill(START2));
    await io.sleep(100);
    const nonce = io.random32() || 1;
    const info: DeviceInfo = { radio: this.modem };
    const done = io.waitFor((ev) => {
      if (ev.kind !== 'ctl') return undefined;
      if (ev.name === 'my_info') info.device_id = `!${(ev.value as number).toString(16).padStart(8, '0')}`;
      if (ev.name === 'config_lora') {
        const l = ev.value as NonNullable<NonNullable<FromRadioMsg['config']>['lora']>;
        const preset = MODEM_PRESETS[l.modem_preset ?? 0];
        const custom = l.use_preset === false && l.spread_factor && l.bandwidth && l.coding_rate;
        this.modem = {
          sf: custom ? l.spread_factor! : (preset?.sf ?? 11),
          bw_khz: custom ? l.bandwidth! : (preset?.bw_khz ?? 250),
          cr: custom ? l.coding_rate! : (preset?.cr ?? 5),
          preamble: 16,
          tx_power_dbm: l.tx_power || this.opts.tx_power_dbm || 14,
        };
        info.radio = this.modem;
        info.region = REGION_CODES[l.region ?? 0] ?? `region_${l.region}`;
      }
      if (ev.name === 'config_complete' && ev.value === nonce) return true;
      return undefined;
    }, 4500);
    await io.write(frameSerial(encodeToRadio({ want_config_id: nonce })));
    await done;
    if (!info.device_id) throw new HnError('lora_hardware_unsupported', 'meshtastic device sent no my_info');
    info.firmware = 'meshtastic';
    return info;
  }

  encodeTx(frame: Uint8Array, packetId = 1): Uint8Array {
    return frameSerial(
      encodeToRadio({
        packet: {
          to: BROADCAST_NUM,
          channel: this.opts.channel ?? 0,
          decoded: { portnum: PORTNUM_PRIVATE_APP, payload: frame },
          id: packetId >>> 0,
          hop_limit: 0,
          want_ack: false,
        },
      }),
    );
  }

  heartbeat(): Uint8Array {
    return frameSerial(encodeToRadio({ heartbeat: {} }));
  }

  /** 16-byte radio header + Data{portnum 256 (3 bytes), payload (2 + n), bitfield (2)}: PL 55 for a beacon (digest §6). */
  onAirBytes(n: number): number {
    return 16 + 3 + 2 + n + 2;
  }

  radio(): RadioInfo {
    return this.modem;
  }

  feed(bytes: Uint8Array): RxEvent[] {
    const { frames, debug, resyncs } = this.deframer.push(bytes);
    const out: RxEvent[] = [];
    for (let i = 0; i < resyncs; i++) out.push({ kind: 'malformed', reason: 'serial_length' });
    for (const text of debug) out.push({ kind: 'debug', text });
    for (const pb of frames) {
      let m: FromRadioMsg;
      try {
        m = decodeFromRadio(pb);
      } catch {
        out.push({ kind: 'malformed', reason: 'protobuf' });
        continue;
      }
      if (m.my_info) out.push({ kind: 'ctl', name: 'my_info', value: m.my_info.my_node_num ?? 0 });
      if (m.config?.lora) out.push({ kind: 'ctl', name: 'config_lora', value: m.config.lora });
      if (m.config_complete_id !== undefined)
        out.push({ kind: 'ctl', name: 'config_complete', value: m.config_complete_id });
      if (m.rebooted) out.push({ kind: 'ctl', name: 'rebooted', value: true });
      if (m.queueStatus) {
        const q = m.queueStatus;
        if ((q.res ?? 0) !== 0)
          out.push({
            kind: 'tx_error',
            code: `queue_res_${q.res}`,
            duty_cycle: false,
            packet_id: q.mesh_packet_id,
          });
        else if (q.mesh_packet_id) out.push({ kind: 'tx_done', packet_id: q.mesh_packet_id });
      }
      const p = m.packet;
      if (p) {
        const d = p.decoded;
        if (!d) continue; // encrypted for someone else: ignored
        if (d.portnum === PORTNUM_ROUTING_APP && d.payload) {
          try {
            const r = decodeRouting(d.payload);
            if (r.error_reason)
              out.push({
                kind: 'tx_error',
                code: `routing_${r.error_reason}`,
                duty_cycle: r.error_reason === ROUTING_ERROR_DUTY_CYCLE_LIMIT,
                packet_id: d.request_id,
              });
          } catch {
            out.push({ kind: 'malformed', reason: 'routing' });
          }
          continue;
        }
        if (d.portnum !== PORTNUM_PRIVATE_APP) continue; // other apps: ignored
        out.push({
          kind: 'frame',
          payload: d.payload ?? new Uint8Array(0),
          rssi: p.rx_rssi ?? null,
          snr: p.rx_snr ?? null,
          device_id: p.from !== undefined ? `!${p.from.toString(16).padStart(8, '0')}` : undefined,
        });
      }
    }
    return out;
  }
}
