/**
 * The stick connection of the M29 service (digest §8, §10): pick a granted port, take the
 * "hn-lora-port" Web Lock (one tab owns the stick), open the serial bridge with the configured adapter,
 * reconnect with backoff after an unplug and at once on Web Serial's `connect` event.
 */
import { HnError } from '../core/errors.js';
import { SerialBridge, type SerialPortLike } from './serial_bridge.js';
import { PORT_LOCK_NAME, type LoraServiceDeps, type LoraSettings, type LoraState } from './settings.js';
import { MeshtasticAdapter } from './adapters/meshtastic.js';
import { createRfm95wAdapter } from './adapters/rfm95w.js';
import { createSx126xAdapter } from './adapters/sx126x.js';
import type { DeviceInfo, LoraAdapter, RxEvent } from './adapters/types.js';

/** The adapter the settings name, with the configured radio (bad radio config → bad_request). */
export function adapterFor(c: LoraSettings): LoraAdapter {
  if (c.adapter === 'meshtastic')
    return new MeshtasticAdapter({ channel: c.meshtastic_channel, tx_power_dbm: c.tx_power_dbm });
  const o = {
    frequency_hz: c.frequency_hz,
    sf: c.spreading_factor,
    bw_khz: c.bandwidth_khz,
    cr: c.coding_rate_denom,
    tx_power_dbm: c.tx_power_dbm,
    preamble: c.preamble_symbols,
    sync_word: c.sync_word,
  };
  return c.adapter === 'rfm95w' ? createRfm95wAdapter(o) : createSx126xAdapter(o);
}

type UsbIds = { usbVendorId?: number; usbProductId?: number };

export interface ConnectionHooks {
  /** a de-framed event other than debug text (frames, malformed, tx verdicts) */
  onEvent(ev: RxEvent): void;
  /** one line for the bounded debug log */
  debug(line: string): void;
  /** the stick is ready (start the scheduler) */
  onReady(): void;
  savedPort(): UsbIds | undefined;
  savePort(p: UsbIds): Promise<void>;
}

export class StickConnection {
  bridge: SerialBridge | null = null;
  adapter: LoraAdapter | null = null;
  device: DeviceInfo | null = null;
  usb: { vendorId?: number; productId?: number } | undefined;
  state: LoraState = 'unavailable';
  errorCode: string | undefined = 'lora_hardware_unavailable';
  stopped = false;
  private retryTimer: unknown = null;
  private retryDelay = 1000;
  private releaseLock: (() => void) | null = null;
  private onPlug: (() => void) | null = null;

  constructor(
    private readonly d: LoraServiceDeps,
    private readonly rand: () => number,
    private readonly h: ConnectionHooks,
  ) {}

  debug(line: string): void {
    this.h.debug(line);
  }

  get ready(): boolean {
    return this.state === 'ready' && !!this.bridge?.isOpen;
  }

  /** The open bridge, or the error a send gets without one. */
  requireReady(): SerialBridge {
    if (this.state === 'ready' && this.bridge?.isOpen) return this.bridge;
    if (this.state === 'error' && this.errorCode === 'lora_hardware_unsupported')
      throw new HnError('lora_hardware_unsupported', 'the LoRa adapter failed to initialise');
    throw new HnError('lora_hardware_unavailable', 'no LoRa stick is connected');
  }

  private makeAdapter(): LoraAdapter {
    return adapterFor(this.d.settings());
  }

  /** Start: connect to a granted port if there is one, start the scheduler. Never throws for missing hardware. */
  async start(): Promise<void> {
    this.stopped = false;
    if (!this.d.ports) {
      this.setState('unavailable', 'lora_hardware_unavailable');
      return;
    }
    if (this.d.ports.addEventListener && !this.onPlug) {
      // replug: reconnect at once instead of waiting for the backoff
      this.onPlug = () => {
        if (this.stopped || (this.state === 'ready' && this.bridge?.isOpen)) return;
        if (this.retryTimer) this.d.clock.clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.retryDelay = 1000;
        void this.tryReconnect();
      };
      this.d.ports.addEventListener('connect', this.onPlug);
    }
    await this.tryReconnect();
  }

  /** Connect to `port` (a user's pick) or to the first granted port. */
  async connect(port?: SerialPortLike): Promise<void> {
    if (!this.d.ports && !port)
      throw new HnError('lora_hardware_unavailable', 'Web Serial is not available here');
    const p = port ?? (await this.pickGranted());
    if (!p) {
      this.setState('unavailable', 'lora_hardware_unavailable');
      throw new HnError('lora_hardware_unavailable', 'no LoRa stick is connected');
    }
    await this.disconnectBridge();
    if (!(await this.acquirePortLock())) {
      this.setState('unavailable', 'lora_hardware_unavailable');
      throw new HnError('lora_hardware_unavailable', 'another tab owns the LoRa stick');
    }
    this.setState('initializing');
    const adapter = this.makeAdapter(); // bad radio config → bad_request
    const bridge = new SerialBridge(adapter, p, {
      clock: this.d.clock,
      random32: () => (this.rand() * 0x100000000) >>> 0,
      onEvent: (ev) => {
        if (bridge !== this.bridge) return;
        if (ev.kind === 'debug') this.h.debug(ev.text);
        else this.h.onEvent(ev);
      },
      onDebug: (line) => this.h.debug(line),
      onDisconnect: (reason) => {
        if (bridge !== this.bridge) return;
        this.bridge = null;
        this.setState('unavailable', 'lora_hardware_unavailable');
        this.h.debug(`disconnected: ${reason}`);
        this.scheduleRetry();
      },
    });
    this.bridge = bridge;
    this.adapter = adapter;
    try {
      this.device = await bridge.open(this.d.settings().serial_baud);
    } catch (e) {
      this.bridge = null;
      const code = e instanceof HnError ? e.code : 'lora_hardware_unsupported';
      this.setState(code === 'lora_hardware_unavailable' ? 'unavailable' : 'error', code);
      throw e instanceof HnError ? e : new HnError('lora_hardware_unsupported', String(e));
    }
    const info = p.getInfo();
    this.usb = { vendorId: info.usbVendorId, productId: info.usbProductId };
    await this.h.savePort({ usbVendorId: info.usbVendorId, usbProductId: info.usbProductId });
    this.retryDelay = 1000;
    if (this.retryTimer) this.d.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState('ready');
    this.h.onReady();
  }

  /** Take the "hn-lora-port" Web Lock (held until stop) so only one tab drives the stick. */
  private acquirePortLock(): Promise<boolean> {
    const locks = this.d.locks;
    if (!locks || this.releaseLock) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      void locks
        .request(PORT_LOCK_NAME, { ifAvailable: true }, (lock) => {
          if (!lock) {
            resolve(false);
            return Promise.resolve();
          }
          return new Promise<void>((release) => {
            this.releaseLock = release;
            resolve(true);
          });
        })
        .catch((e: unknown) => {
          // Web Locks refused the request (e.g. an opaque origin): this tab does not own the stick
          this.h.debug(`port lock unavailable: ${(e as Error)?.message ?? String(e)}`);
          resolve(false);
        });
    });
  }

  private async pickGranted(): Promise<SerialPortLike | undefined> {
    const ports = (await this.d.ports?.getPorts()) ?? [];
    const want = this.h.savedPort() ?? this.d.remembered;
    return (
      ports.find(
        (p) =>
          want &&
          p.getInfo().usbVendorId === want.usbVendorId &&
          p.getInfo().usbProductId === want.usbProductId,
      ) ?? ports[0]
    );
  }

  private async tryReconnect(): Promise<void> {
    // a user's click may have connected the stick while the retry waited
    if (this.stopped || (this.state === 'ready' && this.bridge?.isOpen)) return;
    const p = await this.pickGranted();
    if (!p) {
      this.setState('unavailable', 'lora_hardware_unavailable');
      this.scheduleRetry();
      return;
    }
    try {
      await this.connect(p);
    } catch (e) {
      this.h.debug(`connect failed: ${e instanceof HnError ? `${e.code}: ${e.message}` : String(e)}`);
      if (this.state !== 'error') this.scheduleRetry();
    }
  }

  private scheduleRetry() {
    if (this.stopped || this.retryTimer || !this.d.ports) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 60_000);
    this.retryTimer = this.d.clock.setTimeout(() => {
      this.retryTimer = null;
      void this.tryReconnect();
    }, delay);
  }

  setState(s: LoraState, code?: string) {
    this.state = s;
    this.errorCode = code;
  }

  async disconnectBridge() {
    const b = this.bridge;
    this.bridge = null;
    if (b) await b.close();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) this.d.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.onPlug) this.d.ports?.removeEventListener?.('connect', this.onPlug);
    this.onPlug = null;
    await this.disconnectBridge();
    this.releaseLock?.();
    this.releaseLock = null;
    this.setState('disabled');
  }
}
