/**
 * A small-frame BytePort over a LoRa stick (the module kit's byte-port shape, digest §8): each message
 * is exactly one radio frame of `frameBytes` (LORA_BEACON_MAX_PAYLOAD_BYTES, or 64 for the v2 frame),
 * written through the serial bridge and the stick's adapter; frames heard on air arrive through
 * `onMessage`. What it honours, and the byte-port acceptance suite checks (tests/suites/link-suite.ts):
 * - one frame on the radio at a time, in send order; `send` resolves once the firmware has it on air
 *   (HNLORA's +HNTXDONE; Meshtastic: no refusal within the airtime plus a grace) — that is the backpressure;
 * - bounded buffering: at most `maxPending` sends queued; more reject with `capacity_exceeded`;
 * - a message of any other length rejects with `bad_request` and nothing is written;
 * - a firmware refusal rejects with `lora_duty_cycle_exhausted` / `lora_hardware_unavailable`;
 * - close is local (a radio has no connection to tear down): `onClose` fires here, later sends reject
 *   with `closed`; an unplugged stick closes the port;
 * - garbage on the serial line is counted (`malformed`) and the de-framer resyncs; the port stays open.
 * The medium itself may lose or collide frames: delivery is in order but not guaranteed.
 */
import { HnError } from '../core/errors.js';
import { queueTail } from '../core/vocab.js';
import type { BytePort } from '../net/port.js';
import type { Clock } from './clock.js';
import { timeOnAirMs } from './airtime.js';
import { SerialBridge, type SerialPortLike } from './serial_bridge.js';
import { transmitFrame } from './tx.js';
import type { DeviceInfo, LoraAdapter } from './adapters/types.js';

export interface FramePortOptions {
  adapter: LoraAdapter;
  port: SerialPortLike;
  clock: Clock;
  /** bytes per message: 32 (v1 frame) or 64 (v2) */
  frameBytes?: number;
  /** sends queued at most (default 4) */
  maxPending?: number;
  baudRate?: number;
}

export class LoraFramePort implements BytePort {
  readonly maxMessageBytes: number;
  /** malformed frames/lines the de-framer dropped */
  malformed = 0;
  device: DeviceInfo | null = null;
  private recv: ((m: Uint8Array) => void) | null = null;
  private held: Uint8Array[] = [];
  private closeCbs: ((r: string) => void)[] = [];
  private closeReason: string | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private packetId = 1;
  private readonly bridge: SerialBridge;

  private constructor(private readonly o: FramePortOptions) {
    this.maxMessageBytes = o.frameBytes ?? 32;
    this.bridge = new SerialBridge(o.adapter, o.port, {
      clock: o.clock,
      onEvent: (ev) => {
        if (ev.kind === 'frame') this.deliver(ev.payload);
        else if (ev.kind === 'malformed') this.malformed++;
      },
      onDisconnect: (reason) => this.finish(`stick gone: ${reason}`),
    });
  }

  /** Open the stick (adapter init within 5 s of the clock) and return the port. */
  static async open(o: FramePortOptions): Promise<LoraFramePort> {
    const p = new LoraFramePort(o);
    p.device = await p.bridge.open(o.baudRate ?? 115200);
    return p;
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  private deliver(payload: Uint8Array) {
    if (this.closed || payload.length !== this.maxMessageBytes) {
      if (!this.closed) this.malformed++; // another frame size on our channel: not ours
      return;
    }
    const copy = payload.slice();
    if (this.recv) this.recv(copy);
    else this.held.push(copy.slice());
  }

  send(msg: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new HnError('closed', `port closed: ${this.closeReason}`));
    if (!(msg instanceof Uint8Array) || msg.length !== this.maxMessageBytes)
      return Promise.reject(
        new HnError('bad_request', `a LoRa frame carries exactly ${this.maxMessageBytes} bytes`),
      );
    const max = this.o.maxPending ?? 4;
    if (this.pending >= max)
      return Promise.reject(new HnError('capacity_exceeded', `${max} frames already queued for the radio`));
    this.pending++;
    const frame = msg.slice();
    const run = async () => {
      try {
        if (this.closed) throw new HnError('closed', `port closed: ${this.closeReason}`);
        const a = this.o.adapter;
        const r = a.radio();
        const airtime = timeOnAirMs(a.onAirBytes(frame.length), r);
        this.packetId = (this.packetId + 1) >>> 0 || 1;
        await transmitFrame(this.bridge, frame, airtime, true, this.packetId);
      } finally {
        this.pending--;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = queueTail(p);
    return p;
  }

  onMessage(cb: (msg: Uint8Array) => void): void {
    this.recv = cb;
    for (const m of this.held.splice(0)) cb(m);
  }

  onClose(cb: (reason: string) => void): void {
    if (this.closeReason !== null) cb(this.closeReason);
    else this.closeCbs.push(cb);
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.finish(reason);
    void this.bridge.close();
  }

  private finish(reason: string) {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    for (const cb of this.closeCbs.splice(0)) cb(reason);
  }
}
