/**
 * The serial bridge (digest §8): opens a Web-Serial-shaped port at 115200 8N1, runs the read loop,
 * feeds the adapter's de-framer (capped at 4 KiB, resync past it), lets `init` wait for replies with
 * a 5 s budget, sends heartbeats, and reports a disconnect. It takes the port through an interface,
 * so the same code drives `navigator.serial` in a worker, a Node serial port or the simulated stick.
 */
import { HnError } from '../core/errors.js';
import type { Clock } from './clock.js';
import { DEFRAMER_BUFFER_MAX, type DeviceInfo, type LoraAdapter, type RxEvent } from './adapters/types.js';

export const ADAPTER_INIT_TIMEOUT_MS = 5000;
export const HEARTBEAT_INTERVAL_MS = 5 * 60 * 1000;

/** The subset of the Web Serial `SerialPort` we use. */
export interface SerialPortLike {
  open(opts: {
    baudRate: number;
    dataBits?: number;
    stopBits?: number;
    parity?: 'none' | 'even' | 'odd';
  }): Promise<void>;
  close(): Promise<void>;
  readonly readable: ReadableStream<Uint8Array> | null;
  readonly writable: WritableStream<Uint8Array> | null;
  getInfo(): { usbVendorId?: number; usbProductId?: number };
}

/** `navigator.serial`, or the simulated one, passed in rather than monkeypatched. */
export interface PortProvider {
  getPorts(): Promise<SerialPortLike[]>;
  requestPort?(opts?: {
    filters?: { usbVendorId?: number; usbProductId?: number }[];
  }): Promise<SerialPortLike>;
  /** Web Serial's `connect` event: a granted device was plugged (back) in */
  addEventListener?(type: 'connect', listener: () => void): void;
  removeEventListener?(type: 'connect', listener: () => void): void;
}

export interface BridgeOptions {
  clock: Clock;
  random32?: () => number;
  onEvent(ev: RxEvent): void;
  onDisconnect(reason: string): void;
  /** a line for the bounded debug log (failures that have no caller to reject) */
  onDebug?(line: string): void;
}

interface Waiter {
  pick: (ev: RxEvent) => unknown;
  resolve: (v: unknown) => void;
}

export class SerialBridge {
  private writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private waiters = new Set<Waiter>();
  private heartbeatTimer: unknown = null;
  private closed = false;
  /** times the de-framer had to be reset past its cap */
  overflowResets = 0;
  bytesIn = 0;
  bytesOut = 0;
  heartbeatFailures = 0;

  constructor(
    readonly adapter: LoraAdapter,
    private readonly port: SerialPortLike,
    private readonly o: BridgeOptions,
  ) {}

  /** Open the port, start reading, run the adapter's init within 5 s. */
  async open(baudRate = 115200): Promise<DeviceInfo> {
    try {
      await this.port.open({ baudRate, dataBits: 8, stopBits: 1, parity: 'none' });
    } catch (e) {
      throw new HnError('lora_hardware_unavailable', `cannot open the serial port: ${(e as Error).message}`);
    }
    if (!this.port.readable || !this.port.writable)
      throw new HnError('lora_hardware_unavailable', 'port has no streams');
    this.writer = this.port.writable.getWriter();
    this.reader = this.port.readable.getReader();
    void this.readLoop();
    const clock = this.o.clock;
    let timer: unknown;
    const timeout = new Promise<never>((_, rej) => {
      timer = clock.setTimeout(
        () =>
          rej(
            new HnError('lora_hardware_unsupported', `${this.adapter.name} init did not finish within 5 s`),
          ),
        ADAPTER_INIT_TIMEOUT_MS,
      );
    });
    try {
      const info = await Promise.race([
        this.adapter.init({
          write: (b) => this.write(b),
          waitFor: (pick, ms) => this.waitFor(pick, ms),
          sleep: (ms) => clock.sleep(ms),
          random32: this.o.random32 ?? (() => (Math.random() * 0x100000000) >>> 0),
        }),
        timeout,
      ]);
      this.startHeartbeat();
      return info;
    } catch (e) {
      await this.close();
      if (
        e instanceof HnError &&
        (e.code === 'lora_hardware_unsupported' || e.code === 'lora_hardware_unavailable')
      )
        throw e;
      throw new HnError(
        'lora_hardware_unsupported',
        `${this.adapter.name} init failed: ${(e as Error).message}`,
      );
    } finally {
      clock.clearTimeout(timer);
    }
  }

  private startHeartbeat() {
    if (!this.adapter.heartbeat) return;
    const beat = () => {
      if (this.closed) return;
      // a failed heartbeat means the port is going away: the read loop reports the disconnect
      this.write(this.adapter.heartbeat!()).catch((e: unknown) => {
        this.heartbeatFailures++;
        this.o.onDebug?.(`heartbeat not written: ${(e as Error).message}`);
      });
      this.heartbeatTimer = this.o.clock.setTimeout(beat, HEARTBEAT_INTERVAL_MS);
    };
    this.heartbeatTimer = this.o.clock.setTimeout(beat, HEARTBEAT_INTERVAL_MS);
  }

  /** Resolve with the first de-framed event `pick` accepts; `timeout` after `ms` on the bridge clock. */
  waitFor<T>(pick: (ev: RxEvent) => T | undefined, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        pick,
        resolve: (v) => {
          this.o.clock.clearTimeout(t);
          resolve(v as T);
        },
      };
      const t = this.o.clock.setTimeout(() => {
        this.waiters.delete(w);
        reject(new HnError('timeout', 'no reply from the device'));
      }, ms);
      this.waiters.add(w);
    });
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.closed || !this.writer)
      throw new HnError('lora_hardware_unavailable', 'the stick is not connected');
    try {
      await this.writer.write(bytes);
      this.bytesOut += bytes.length;
    } catch (e) {
      throw new HnError('lora_hardware_unavailable', `serial write failed: ${(e as Error).message}`);
    }
  }

  private dispatch(ev: RxEvent) {
    for (const w of this.waiters) {
      const v = w.pick(ev);
      if (v !== undefined) {
        this.waiters.delete(w);
        w.resolve(v);
      }
    }
    this.o.onEvent(ev);
  }

  private async readLoop(): Promise<void> {
    const reader = this.reader!;
    let reason = 'closed';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!value?.length) continue;
        this.bytesIn += value.length;
        let events: RxEvent[];
        try {
          events = this.adapter.feed(value);
        } catch {
          events = [{ kind: 'malformed', reason: 'deframer' }];
        }
        if (this.adapter.buffered > DEFRAMER_BUFFER_MAX) this.overflowResets++;
        for (const ev of events) this.dispatch(ev);
      }
    } catch (e) {
      reason = `read failed: ${(e as Error).message}`;
    }
    if (!this.closed) {
      this.closed = true;
      this.stopTimers();
      this.o.onDisconnect(reason);
    }
  }

  private stopTimers() {
    if (this.heartbeatTimer) this.o.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  get isOpen(): boolean {
    return !this.closed && !!this.writer;
  }

  async close(): Promise<void> {
    if (this.closed && !this.writer) return;
    this.closed = true;
    this.stopTimers();
    try {
      await this.reader?.cancel();
    } catch (e) {
      this.o.onDebug?.(`close: reader already gone (${(e as Error).message})`);
    }
    try {
      this.reader?.releaseLock();
      this.writer?.releaseLock();
    } catch (e) {
      this.o.onDebug?.(`close: locks already released (${(e as Error).message})`);
    }
    this.reader = null;
    this.writer = null;
    try {
      await this.port.close();
    } catch (e) {
      // unplugged ports cannot close
      this.o.onDebug?.(`close: port did not close (${(e as Error).message})`);
    }
  }
}
