/**
 * Simulated USB LoRa sticks (digest §10) that speak exactly the byte protocols of §8, attached to a
 * SimRadioChannel, and a SimSerialPort that presents them through the Web Serial `SerialPort` shape
 * (with unplug, garbage injection and random chunk splitting). Test and bench code only.
 */
import { fromHex, toHex } from '../../core/encoding.js';
import { frameSerial, MeshtasticDeframer } from '../adapters/meshtastic.js';
import { LineDeframer } from '../adapters/hnlora.js';
import {
  BROADCAST_NUM,
  decodeToRadio,
  encodeFromRadio,
  encodeRouting,
  PORTNUM_PRIVATE_APP,
  PORTNUM_ROUTING_APP,
  ROUTING_ERROR_DUTY_CYCLE_LIMIT,
  type FromRadioMsg,
} from '../meshtastic_pb.js';
import { timeOnAirMs } from '../airtime.js';
import type { PortProvider, SerialPortLike } from '../serial_bridge.js';
import { prng, type SimRadio, type SimRadioChannel, type SimRadioParams } from './channel.js';

export type StickPersonality =
  'meshtastic' | 'hnlora-sx1276' | 'hnlora-sx1262' | 'silent' | 'wrong-fw' | 'dutycycle-nak';

export interface SimStickOptions {
  id: string;
  personality: StickPersonality;
  channel: SimRadioChannel;
  x?: number;
  y?: number;
  /** Meshtastic node number (device id `!%08x`) */
  nodeNum?: number;
}

/** LONG_FAST, EU_868 as a Meshtastic stick runs it (sync word 0x2b) */
const MESHTASTIC_RADIO: SimRadioParams = {
  frequency_hz: 869_525_000,
  sf: 11,
  bw_khz: 250,
  cr: 5,
  preamble: 16,
  sync_word: 0x2b,
  tx_power_dbm: 14,
};

export class SimStick implements SimRadio {
  readonly id: string;
  x: number;
  y: number;
  readonly personality: StickPersonality;
  readonly nodeNum: number;
  private radioParams: SimRadioParams | null;
  private rxEnabled = false;
  private out: ((b: Uint8Array) => void) | null = null;
  private mesh = new MeshtasticDeframer();
  private lines = new LineDeframer();
  private detach: () => void;
  /** what the host wrote, for tests */
  heartbeats = 0;
  txFrames: Uint8Array[] = [];

  constructor(private readonly o: SimStickOptions) {
    this.id = o.id;
    this.x = o.x ?? 0;
    this.y = o.y ?? 0;
    this.personality = o.personality;
    this.nodeNum =
      o.nodeNum ??
      (Math.floor(prng(o.id.length * 7919 + o.id.charCodeAt(0))() * 0xfffffff) | 0x10000000) >>> 0;
    this.radioParams = this.isMeshtastic ? { ...MESHTASTIC_RADIO } : null;
    this.detach = o.channel.attach(this);
  }

  get isMeshtastic(): boolean {
    return this.personality === 'meshtastic' || this.personality === 'dutycycle-nak';
  }

  params(): SimRadioParams {
    return this.radioParams ?? { ...MESHTASTIC_RADIO, frequency_hz: 0 };
  }

  /** the port connects its read side here */
  connect(out: ((b: Uint8Array) => void) | null) {
    this.out = out;
    if (!out) this.rxEnabled = false;
  }

  remove() {
    this.detach();
  }

  private send(b: Uint8Array) {
    this.out?.(b);
  }

  /** bytes from the host */
  write(bytes: Uint8Array) {
    if (this.personality === 'silent') return;
    if (this.isMeshtastic) this.meshtasticIn(bytes);
    else this.hnloraIn(bytes);
  }

  private fromRadio(m: FromRadioMsg) {
    this.send(frameSerial(encodeFromRadio(m)));
  }

  private meshtasticIn(bytes: Uint8Array) {
    const { frames } = this.mesh.push(bytes);
    for (const pb of frames) {
      let m;
      try {
        m = decodeToRadio(pb);
      } catch {
        continue; // real firmware ignores what it cannot parse
      }
      if (m.want_config_id !== undefined) {
        this.rxEnabled = true;
        this.send(new TextEncoder().encode('INFO  | ??:??:?? 1 [SerialConsole] Sim stick booted\r\n'));
        this.fromRadio({ my_info: { my_node_num: this.nodeNum } });
        this.fromRadio({ config: { lora: { use_preset: true, modem_preset: 0, region: 3, tx_power: 14 } } });
        this.fromRadio({ config_complete_id: m.want_config_id });
      }
      if (m.heartbeat) this.heartbeats++;
      const p = m.packet;
      if (p?.decoded?.portnum === PORTNUM_PRIVATE_APP && p.decoded.payload) {
        if (this.personality === 'dutycycle-nak') {
          this.fromRadio({
            packet: {
              from: this.nodeNum,
              to: this.nodeNum,
              decoded: {
                portnum: PORTNUM_ROUTING_APP,
                payload: encodeRouting({ error_reason: ROUTING_ERROR_DUTY_CYCLE_LIMIT }),
                request_id: p.id,
              },
            },
          });
          continue;
        }
        this.fromRadio({ queueStatus: { res: 0, free: 15, maxlen: 16, mesh_packet_id: p.id ?? 0 } });
        this.txFrames.push(p.decoded.payload);
        // header 16 + Data bytes: what a Meshtastic radio puts on air
        this.o.channel.transmit(this.id, p.decoded.payload, 16 + 3 + 2 + p.decoded.payload.length + 2);
      }
    }
  }

  private line(s: string) {
    this.send(new TextEncoder().encode(`${s}\r\n`));
  }

  private hnloraIn(bytes: Uint8Array) {
    const { lines } = this.lines.push(bytes);
    const chip = this.personality === 'hnlora-sx1262' ? 'sx1262' : 'sx1276';
    for (const l of lines) {
      if (l === 'AT') this.line('OK');
      else if (l === 'AT+HNVER?')
        this.line(this.personality === 'wrong-fw' ? '+HNVER:9,sx1276,0.0.1' : `+HNVER:1,${chip},sim-1.0`);
      else if (l.startsWith('AT+HNCFG=')) {
        const [f, sf, bw, cr, dbm, pre, sync] = l.slice(9).split(',');
        const nums = [f, sf, bw, cr, dbm, pre].map(Number);
        const [lo, hi] = chip === 'sx1262' ? [5, 12] : [6, 12];
        if (nums.some((n) => !Number.isFinite(n)) || !sync || !/^[0-9a-f]{2}$/i.test(sync))
          this.line('ERR:syntax');
        else if (nums[1]! < lo || nums[1]! > hi) this.line('ERR:sf');
        else {
          this.radioParams = {
            frequency_hz: nums[0]!,
            sf: nums[1]!,
            bw_khz: nums[2]! / 1000,
            cr: nums[3]!,
            tx_power_dbm: nums[4]!,
            preamble: nums[5]!,
            sync_word: parseInt(sync, 16),
          };
          this.line('OK');
        }
      } else if (l === 'AT+HNRX=1') {
        this.rxEnabled = true;
        this.line('OK');
      } else if (l.startsWith('AT+HNTX=')) {
        const hex = l.slice(8).toLowerCase();
        if (!this.radioParams || !/^(?:[0-9a-f]{2}){1,255}$/.test(hex)) {
          this.line('ERR:tx');
          continue;
        }
        this.line('OK');
        const payload = fromHex(hex);
        this.txFrames.push(payload);
        this.o.channel.transmit(this.id, payload, payload.length, (ms) => this.line(`+HNTXDONE:${ms}`));
      } else if (l.length) this.line('ERR:unknown');
    }
  }

  /** from the channel */
  receive(payload: Uint8Array, rssi: number, snr: number, from: string) {
    if (!this.rxEnabled || !this.out) return;
    if (this.isMeshtastic) {
      const sender = from.split('').reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);
      this.fromRadio({
        packet: {
          from: sender,
          to: BROADCAST_NUM,
          decoded: { portnum: PORTNUM_PRIVATE_APP, payload },
          id: (sender ^ this.o.channel.stats.transmissions) >>> 0,
          rx_snr: snr,
          hop_limit: 0,
          rx_rssi: rssi,
        },
      });
    } else this.line(`+HNRX:${toHex(payload)},${rssi},${snr}`);
  }

  /** airtime this stick's radio needs for `n` bytes */
  airtime(n: number): number {
    const p = this.params();
    return timeOnAirMs(n, { sf: p.sf, bw_khz: p.bw_khz, cr: p.cr, preamble: p.preamble });
  }
}

export interface SimPortOptions {
  usbVendorId?: number;
  usbProductId?: number;
  /** split what the stick sends into random chunks (seeded) */
  chunkSplit?: number;
}

/** A Web-Serial-shaped port in front of a SimStick. */
export class SimSerialPort implements SerialPortLike {
  readable: ReadableStream<Uint8Array> | null = null;
  writable: WritableStream<Uint8Array> | null = null;
  private ctrl: ReadableStreamDefaultController<Uint8Array> | null = null;
  private plugged = true;
  private rand: () => number;
  private listeners = new Set<(ev: 'connect' | 'disconnect') => void>();
  opens = 0;

  constructor(
    readonly stick: SimStick,
    private readonly o: SimPortOptions = {},
  ) {
    this.rand = prng(o.chunkSplit ?? 1);
  }

  getInfo() {
    return { usbVendorId: this.o.usbVendorId ?? 0x10c4, usbProductId: this.o.usbProductId ?? 0xea60 };
  }

  onChange(cb: (ev: 'connect' | 'disconnect') => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  async open(opts: { baudRate: number }): Promise<void> {
    if (!this.plugged) throw new Error('NetworkError: the device has been lost');
    if (this.readable) throw new Error('InvalidStateError: the port is already open');
    if (opts.baudRate !== 115200) throw new Error('the sim stick speaks 115200 baud only');
    this.opens++;
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.ctrl = c;
      },
      cancel: () => {
        this.ctrl = null;
      },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (!this.plugged) throw new Error('NetworkError: the device has been lost');
        this.stick.write(chunk.slice());
      },
    });
    this.stick.connect((b) => this.deliver(b));
  }

  private deliver(b: Uint8Array) {
    if (!this.ctrl) return;
    if (!this.o.chunkSplit) {
      this.ctrl.enqueue(b.slice());
      return;
    }
    let i = 0;
    while (i < b.length) {
      const n = 1 + Math.floor(this.rand() * Math.min(64, b.length - i));
      this.ctrl.enqueue(b.slice(i, i + n));
      i += n;
    }
  }

  /** bytes that did not come from the protocol (line noise, a half-written frame after a reset) */
  injectGarbage(b: Uint8Array) {
    this.deliver(b);
  }

  async close(): Promise<void> {
    this.stick.connect(null);
    try {
      this.ctrl?.close();
    } catch {
      // already errored
    }
    this.ctrl = null;
    this.readable = null;
    this.writable = null;
  }

  unplug() {
    this.plugged = false;
    this.stick.connect(null);
    try {
      this.ctrl?.error(new Error('NetworkError: the device has been lost'));
    } catch {
      // closed
    }
    this.ctrl = null;
    this.readable = null;
    this.writable = null;
    for (const l of this.listeners) l('disconnect');
  }

  replug() {
    this.plugged = true;
    for (const l of this.listeners) l('connect');
  }

  get isPlugged(): boolean {
    return this.plugged;
  }
}

/** A fake `navigator.serial`: the ports the user has granted, and a picker that grants one. */
export class SimSerial implements PortProvider {
  granted: SimSerialPort[] = [];
  private plugListeners = new Set<() => void>();
  constructor(private readonly available: SimSerialPort[]) {
    for (const p of available)
      p.onChange((ev) => {
        if (ev === 'connect' && this.granted.includes(p)) for (const l of this.plugListeners) l();
      });
  }
  /** `connect` fires when a granted port is plugged back in, as navigator.serial's does */
  addEventListener(type: 'connect', listener: () => void): void {
    if (type === 'connect') this.plugListeners.add(listener);
  }
  removeEventListener(type: 'connect', listener: () => void): void {
    this.plugListeners.delete(listener);
  }
  async getPorts(): Promise<SerialPortLike[]> {
    return this.granted.filter((p) => p.isPlugged);
  }
  async requestPort(opts?: {
    filters?: { usbVendorId?: number; usbProductId?: number }[];
  }): Promise<SerialPortLike> {
    const match = this.available.find(
      (p) =>
        p.isPlugged &&
        (!opts?.filters?.length ||
          opts.filters.some(
            (f) =>
              (f.usbVendorId === undefined || f.usbVendorId === p.getInfo().usbVendorId) &&
              (f.usbProductId === undefined || f.usbProductId === p.getInfo().usbProductId),
          )),
    );
    if (!match) throw new Error('NotFoundError: no port selected');
    if (!this.granted.includes(match)) this.granted.push(match);
    return match;
  }
}
