/**
 * A Web-Serial-shaped port whose bytes live elsewhere: in the serial worker (the port is opened there,
 * bytes cross through comlink) or, in the Playwright run, in the Node runner's simulated stick. The
 * serial bridge reads and writes it like any `SerialPortLike`; the far side calls `push` with what the
 * device sent and `lost` when the device went away (unplug).
 */
import type { SerialPortLike } from './serial_bridge.js';

/** What the far side offers. `write` may answer with bytes the device sent back at once. */
export interface SerialEndpoint {
  open(opts: { baudRate: number }): Promise<void>;
  write(bytes: Uint8Array): Promise<Uint8Array | null | undefined | void>;
  close(): Promise<void>;
}

export class RemoteSerialPort implements SerialPortLike {
  readable: ReadableStream<Uint8Array> | null = null;
  writable: WritableStream<Uint8Array> | null = null;
  private ctrl: ReadableStreamDefaultController<Uint8Array> | null = null;

  constructor(
    private readonly ep: SerialEndpoint,
    private readonly info: { usbVendorId?: number; usbProductId?: number } = {},
  ) {}

  getInfo(): { usbVendorId?: number; usbProductId?: number } {
    return { ...this.info };
  }

  get isOpen(): boolean {
    return this.readable !== null;
  }

  async open(opts: { baudRate: number }): Promise<void> {
    if (this.readable) throw new Error('InvalidStateError: the port is already open');
    await this.ep.open({ baudRate: opts.baudRate });
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.ctrl = c;
      },
      cancel: () => {
        this.ctrl = null;
      },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        const back = await this.ep.write(chunk.slice());
        if (back && back.length) this.push(back);
      },
    });
  }

  /** bytes from the device */
  push(bytes: Uint8Array): void {
    if (bytes.length) this.ctrl?.enqueue(bytes.slice());
  }

  /** the device went away: the read loop ends with an error, as Web Serial's does on unplug */
  lost(reason = 'NetworkError: the device has been lost'): void {
    try {
      this.ctrl?.error(new Error(reason));
    } catch {
      // already closed
    }
    this.ctrl = null;
    this.readable = null;
    this.writable = null;
  }

  async close(): Promise<void> {
    try {
      this.ctrl?.close();
    } catch {
      // already errored
    }
    this.ctrl = null;
    this.readable = null;
    this.writable = null;
    await this.ep.close();
  }
}
