/**
 * The serial worker's logic (digest §10 "Serial worker"), free of comlink so it runs in Node tests
 * against the simulated stick: find the granted port by its USB ids through `navigator.serial`
 * (WorkerNavigator.serial in a dedicated worker), open it 8N1, pump what the device sends to `onBytes`,
 * write what the page sends, report `onLost` when the device goes away (unplug) so the page's serial
 * bridge ends its read loop and the service retries `getPorts()` with backoff (replug).
 */
import type { PortProvider, SerialPortLike } from '../../engine/lora/serial_bridge.js';

export interface UsbFilter {
  usbVendorId?: number;
  usbProductId?: number;
}

export interface SerialWorkerStatus {
  supported: boolean;
  open: boolean;
  port?: UsbFilter;
  bytes_in: number;
  bytes_out: number;
  last_error?: string;
}

/** What the worker exposes (through comlink: the callbacks cross as `Comlink.proxy`). */
export interface SerialWorkerApi {
  supported(): boolean;
  open(
    filter: UsbFilter,
    baudRate: number,
    onBytes: (bytes: Uint8Array) => void,
    onLost: (reason: string) => void,
  ): Promise<void>;
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
  status(): SerialWorkerStatus;
}

export class SerialWorkerCore implements SerialWorkerApi {
  private port: SerialPortLike | null = null;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private closing = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private lastError: string | undefined;

  constructor(private readonly serial: PortProvider | null) {}

  supported(): boolean {
    return !!this.serial;
  }

  async open(
    filter: UsbFilter,
    baudRate: number,
    onBytes: (bytes: Uint8Array) => void,
    onLost: (reason: string) => void,
  ): Promise<void> {
    if (!this.serial) throw new Error('NotSupportedError: no Web Serial in this worker');
    await this.close();
    const ports = await this.serial.getPorts();
    const port = ports.find(
      (p) =>
        (filter.usbVendorId === undefined || p.getInfo().usbVendorId === filter.usbVendorId) &&
        (filter.usbProductId === undefined || p.getInfo().usbProductId === filter.usbProductId),
    );
    if (!port) throw new Error('NotFoundError: the port is not granted or not plugged in');
    await port.open({ baudRate, dataBits: 8, stopBits: 1, parity: 'none' });
    if (!port.readable || !port.writable) throw new Error('NetworkError: the port has no streams');
    this.port = port;
    this.closing = false;
    this.writer = port.writable.getWriter();
    const reader = (this.reader = port.readable.getReader());
    void (async () => {
      let reason = 'closed';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (value?.length) {
            this.bytesIn += value.length;
            onBytes(value);
          }
        }
      } catch (e) {
        reason = (e as Error).message || String(e);
      }
      if (this.reader === reader && !this.closing) {
        this.lastError = reason;
        this.release();
        onLost(reason);
      }
    })();
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (!this.writer) throw new Error('InvalidStateError: the port is not open');
    await this.writer.write(bytes);
    this.bytesOut += bytes.length;
  }

  private release() {
    try {
      this.reader?.releaseLock();
      this.writer?.releaseLock();
    } catch {
      // already released
    }
    this.reader = null;
    this.writer = null;
    this.port = null;
  }

  async close(): Promise<void> {
    const port = this.port;
    if (!port) return;
    this.closing = true;
    try {
      await this.reader?.cancel();
    } catch {
      // gone
    }
    this.release();
    try {
      await port.close();
    } catch {
      // an unplugged port cannot close
    }
  }

  status(): SerialWorkerStatus {
    const info = this.port?.getInfo();
    return {
      supported: this.supported(),
      open: !!this.port,
      ...(info ? { port: info } : {}),
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      ...(this.lastError ? { last_error: this.lastError } : {}),
    };
  }
}
