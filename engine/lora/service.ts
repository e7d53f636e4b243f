/**
 * The M29 LoRa beacon service: the seven `experimental.lora.*` operations, the beacon scheduler,
 * panic bursts, duty-cycle enforcement, the receive pipeline and the stick connection (through the
 * serial bridge and an adapter). Dependencies are explicit — storage, clock, events, notifications,
 * the serial port provider — so the same code runs in a tab, in Node and against the simulated ether.
 */
import { LORA_PANIC_BURST_COUNT, LORA_PANIC_BURST_GAP_MS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { timeOnAirMs } from './airtime.js';
import type { Clock } from './clock.js';
import { DutyCycle, type DutyCycleStatus, type LoraKv } from './duty_cycle.js';
import {
  beaconIdOf,
  encodeAuthFrame,
  encodeFrame,
  FLAG_GATEWAY,
  FLAG_OK,
  FLAG_PANIC,
  FLAGS_SENDABLE,
  isSenderHash,
  senderHashOf,
} from './frame.js';
import { PeerMap, type LoraPeer, type PeerState, type VerifyInput } from './peer_map.js';
import { RxPipeline, type LoraBeacon, type LoraNotification } from './rx_pipeline.js';
import { SerialBridge, type PortProvider, type SerialPortLike } from './serial_bridge.js';
import { MeshtasticAdapter } from './adapters/meshtastic.js';
import { createRfm95wAdapter } from './adapters/rfm95w.js';
import { createSx126xAdapter } from './adapters/sx126x.js';
import type { AdapterName, DeviceInfo, LoraAdapter, RadioInfo } from './adapters/types.js';

export const LORA_EVENT_TYPES = [
  'lora.beacon.sent',
  'lora.beacon.received',
  'lora.panic.sent',
  'lora.panic.received',
  'lora.peer.unknown',
  'lora.peer.verified',
  'lora.peer.conflict',
  'lora.duty_cycle.exhausted',
  'lora.duty_cycle.overridden',
  'lora.rx.dropped',
] as const;
export type LoraEventType = (typeof LORA_EVENT_TYPES)[number];

export const PANIC_COOLDOWN_MS = 60_000;
const STATE_KEY = 'lora_state';
const DEBUG_LOG_MAX = 50;

/** LoraConfig of the digest (spec §7 plus the digest's additions). */
export interface LoraSettings {
  enabled: boolean;
  serial_baud: number;
  adapter: AdapterName;
  region: 'EU868' | 'US915' | 'AS923';
  spreading_factor: number;
  bandwidth_khz: number;
  coding_rate_denom: number;
  tx_power_dbm: number;
  beacon_period_seconds: number;
  panic_burst_count: number;
  panic_burst_gap_ms: number;
  rx_queue_max: number;
  peer_rx_max_per_minute: number;
  tofu_auto_accept: boolean;
  duty_cycle_override_for_panic: boolean;
  frequency_hz: number;
  sync_word: number;
  preamble_symbols: number;
  /** percent; null = no limit (US915) */
  duty_cycle_percent: number | null;
  beacon_jitter_fraction: number;
  meshtastic_channel: number;
  gossip_panic_received: boolean;
  /** 1 = the 32-byte v1 frame; 2 = the authenticated 64-byte frame (digest §12.1) */
  frame_version: 1 | 2;
  /** accept v2 frames on receive (false = a strict v1 receiver) */
  accept_auth_frames: boolean;
  /** run the beacon scheduler (the periodic alive beacon) */
  scheduler: boolean;
}

export const LORA_DEFAULTS: LoraSettings = {
  enabled: false,
  serial_baud: 115200,
  adapter: 'meshtastic',
  region: 'EU868',
  spreading_factor: 9,
  bandwidth_khz: 125,
  coding_rate_denom: 5,
  tx_power_dbm: 14,
  beacon_period_seconds: 600,
  panic_burst_count: LORA_PANIC_BURST_COUNT,
  panic_burst_gap_ms: LORA_PANIC_BURST_GAP_MS,
  rx_queue_max: 256,
  peer_rx_max_per_minute: 20,
  tofu_auto_accept: false,
  duty_cycle_override_for_panic: true,
  frequency_hz: 868_100_000,
  sync_word: 0x12,
  preamble_symbols: 8,
  duty_cycle_percent: 1,
  beacon_jitter_fraction: 0.1,
  meshtastic_channel: 0,
  gossip_panic_received: false,
  frame_version: 1,
  accept_auth_frames: true,
  scheduler: true,
};

export type LoraState = 'disabled' | 'unavailable' | 'initializing' | 'ready' | 'error';

export interface LoraStatus {
  state: LoraState;
  error_code?: string;
  adapter: AdapterName;
  region: string;
  radio: {
    frequency_hz?: number;
    sf: number;
    bw_khz: number;
    cr: number;
    tx_power_dbm: number;
    preamble: number;
  };
  device_id?: string;
  firmware?: string;
  usb?: { vendorId?: number; productId?: number };
  web_serial_supported: boolean;
  simulated: boolean;
  tx_count: number;
  rx_count: number;
  rx_dropped: { queue: number; rate_limited: number; malformed: number; blocked: number; self: number };
  queue_depth: number;
  last_tx_at?: number;
  last_rx_at?: number;
}

export interface LoraServiceDeps {
  self: NodeID;
  settings: () => LoraSettings;
  kv: LoraKv;
  clock: Clock;
  emit(type: LoraEventType, data: Record<string, unknown>): void;
  notify?(n: LoraNotification): void;
  /** navigator.serial (or the simulated one); null where Web Serial does not exist */
  ports: PortProvider | null;
  simulated?: boolean;
  random?: () => number;
  /** v2 beacon key of this node (32 bytes); required for frame_version 2 */
  beaconKey?: Uint8Array;
  /** NodeIDs of community members, for tofu_auto_accept */
  members?: () => string[];
  /** another transport (mesh/relay) is up: sets GATEWAY on scheduled beacons */
  gatewayUp?: () => boolean;
  /** remembered port (USB ids) */
  remembered?: { usbVendorId?: number; usbProductId?: number };
  /** Web Locks (`navigator.locks`): only the tab holding "hn-lora-port" owns the stick */
  locks?: LockManagerLike | null;
}

/** The subset of the Web Locks API used here. */
export interface LockManagerLike {
  request(name: string, opts: { ifAvailable: true }, cb: (lock: unknown) => Promise<void>): Promise<unknown>;
}
export const PORT_LOCK_NAME = 'hn-lora-port';

interface SavedState {
  sequence: number;
  last_panic_at?: number;
  port?: { usbVendorId?: number; usbProductId?: number };
}

export class LoraService {
  private dc!: DutyCycle;
  peers!: PeerMap;
  rx!: RxPipeline;
  private bridge: SerialBridge | null = null;
  private adapter: LoraAdapter | null = null;
  private device: DeviceInfo | null = null;
  private usb: { vendorId?: number; productId?: number } | undefined;
  private state: LoraState = 'unavailable';
  private errorCode: string | undefined = 'lora_hardware_unavailable';
  private saved: SavedState = { sequence: 0 };
  private txCount = 0;
  private lastTxAt: number | undefined;
  private exhaustedEpisode = false;
  private schedTimer: unknown = null;
  private retryTimer: unknown = null;
  private retryDelay = 1000;
  private panicNext = false;
  private stopped = false;
  private packetSeq = 1;
  /** TX serialisation: one frame on the radio at a time */
  private txChain: Promise<unknown> = Promise.resolve();
  readonly debugLog: string[] = [];
  private readonly rand: () => number;
  private releaseLock: (() => void) | null = null;
  private onPlug: (() => void) | null = null;

  private constructor(private readonly d: LoraServiceDeps) {
    this.rand = d.random ?? Math.random;
  }

  static async create(d: LoraServiceDeps): Promise<LoraService> {
    const s = new LoraService(d);
    const cfg = d.settings();
    s.dc = await DutyCycle.open(d.kv, cfg.region === 'US915' ? null : cfg.duty_cycle_percent);
    s.peers = await PeerMap.open(d.kv);
    const saved = await d.kv.get<SavedState>(STATE_KEY);
    if (saved && Number.isInteger(saved.sequence)) s.saved = saved;
    s.rx = new RxPipeline({
      clock: d.clock,
      selfHash: senderHashOf(d.self),
      peers: s.peers,
      emit: (t, data) => d.emit(t as LoraEventType, data),
      notify: (n) => d.notify?.(n),
      acceptAuth: () => d.settings().accept_auth_frames,
      queueMax: cfg.rx_queue_max,
      perMinute: cfg.peer_rx_max_per_minute,
      autoAccept: (hash) => {
        if (!d.settings().tofu_auto_accept || !d.members) return undefined;
        const hits = d.members().filter((m) => senderHashOf(m) === hash);
        return hits.length === 1 ? hits[0] : undefined;
      },
      onAutoVerified: async (hash, nodeId) => {
        const out = await s.peers.verify({ sender_hash: hash, node_id: nodeId }, d.clock.now(), {
          tofu: true,
        });
        if (out.verified) d.emit('lora.peer.verified', { ...out.verified, at: out.result.at, auto: true });
      },
    });
    return s;
  }

  get selfHash(): string {
    return senderHashOf(this.d.self);
  }

  // ------------------------------------------------------------------ connection
  private makeAdapter(): LoraAdapter {
    const c = this.d.settings();
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
  async connect(port?: SerialPortLike): Promise<LoraStatus> {
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
        if (ev.kind === 'frame')
          this.rx.push({
            payload: ev.payload,
            rssi: ev.rssi,
            snr: ev.snr,
            device_id: ev.device_id,
            at: this.d.clock.now(),
          });
        else if (ev.kind === 'malformed') this.rx.malformed(ev.reason);
        else if (ev.kind === 'debug') {
          this.debugLog.push(ev.text.slice(0, 200));
          if (this.debugLog.length > DEBUG_LOG_MAX) this.debugLog.shift();
        }
      },
      onDisconnect: (reason) => {
        if (bridge !== this.bridge) return;
        this.bridge = null;
        this.setState('unavailable', 'lora_hardware_unavailable');
        this.debugLog.push(`disconnected: ${reason}`.slice(0, 200));
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
    this.saved.port = { usbVendorId: info.usbVendorId, usbProductId: info.usbProductId };
    await this.d.kv.put(STATE_KEY, this.saved);
    this.retryDelay = 1000;
    if (this.retryTimer) this.d.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState('ready');
    this.scheduleBeacon(true);
    return this.status();
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
        .catch(() => resolve(false));
    });
  }

  private async pickGranted(): Promise<SerialPortLike | undefined> {
    const ports = (await this.d.ports?.getPorts()) ?? [];
    const want = this.saved.port ?? this.d.remembered;
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
      this.debug(`connect failed: ${e instanceof HnError ? `${e.code}: ${e.message}` : String(e)}`);
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

  private debug(line: string) {
    this.debugLog.push(line.slice(0, 200));
    if (this.debugLog.length > DEBUG_LOG_MAX) this.debugLog.shift();
  }

  private setState(s: LoraState, code?: string) {
    this.state = s;
    this.errorCode = code;
  }

  private async disconnectBridge() {
    const b = this.bridge;
    this.bridge = null;
    if (b) await b.close();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.schedTimer) this.d.clock.clearTimeout(this.schedTimer);
    if (this.retryTimer) this.d.clock.clearTimeout(this.retryTimer);
    this.schedTimer = this.retryTimer = null;
    if (this.onPlug) this.d.ports?.removeEventListener?.('connect', this.onPlug);
    this.onPlug = null;
    this.rx.dispose();
    await this.disconnectBridge();
    this.releaseLock?.();
    this.releaseLock = null;
    this.setState('disabled');
  }

  // ------------------------------------------------------------------ radio
  private radio(): RadioInfo {
    if (this.adapter) return this.adapter.radio();
    const c = this.d.settings();
    return {
      sf: c.spreading_factor,
      bw_khz: c.bandwidth_khz,
      cr: c.coding_rate_denom,
      preamble: c.adapter === 'meshtastic' ? 16 : c.preamble_symbols,
      tx_power_dbm: c.tx_power_dbm,
      ...(c.adapter === 'meshtastic' ? {} : { frequency_hz: c.frequency_hz }),
    };
  }

  private frameBytes(): number {
    return this.d.settings().frame_version === 2 ? 64 : 32;
  }

  /** airtime of one beacon frame with the stick's real modem and on-air size */
  frameAirtimeMs(): number {
    const n = this.frameBytes();
    const onAir = this.adapter
      ? this.adapter.onAirBytes(n)
      : this.d.settings().adapter === 'meshtastic'
        ? 16 + 3 + 2 + n + 2
        : n;
    const r = this.radio();
    return timeOnAirMs(onAir, { sf: r.sf, bw_khz: r.bw_khz, cr: r.cr, preamble: r.preamble });
  }

  private requireReady(): SerialBridge {
    if (this.state === 'ready' && this.bridge?.isOpen) return this.bridge;
    if (this.state === 'error' && this.errorCode === 'lora_hardware_unsupported')
      throw new HnError('lora_hardware_unsupported', 'the LoRa adapter failed to initialise');
    throw new HnError('lora_hardware_unavailable', 'no LoRa stick is connected');
  }

  private buildFrame(flags: number, sequence: number, now: number): Uint8Array {
    const f = { sender_hash: this.selfHash, sequence, flags, unix_seconds: Math.floor(now / 1000) >>> 0 };
    if (this.d.settings().frame_version === 2) {
      if (!this.d.beaconKey) throw new HnError('bad_request', 'frame_version 2 needs the node beacon key');
      return encodeAuthFrame(f, this.d.beaconKey);
    }
    return encodeFrame(f);
  }

  private async nextSequence(): Promise<number> {
    const seq = this.saved.sequence & 0xffff;
    this.saved.sequence = (seq + 1) & 0xffff;
    await this.d.kv.put(STATE_KEY, this.saved);
    return seq;
  }

  private exhausted(
    now: number,
    frameMs: number,
    source: 'local' | 'firmware',
    extra: Record<string, unknown> = {},
  ): HnError {
    const next = this.dc.nextTxAllowedAt(now, frameMs);
    const retry =
      source === 'firmware' ? 60_000 : Number.isFinite(next) ? Math.max(0, next - now) : 3_600_000;
    if (!this.exhaustedEpisode) {
      this.exhaustedEpisode = true;
      this.d.emit('lora.duty_cycle.exhausted', {
        source,
        airtime_used_ms: this.dc.usedMs(now),
        airtime_budget_ms: this.dc.budgetMs,
        retry_after_ms: retry,
        ...(Number.isFinite(next) ? { next_tx_allowed_at: next } : {}),
      });
    }
    return new HnError('lora_duty_cycle_exhausted', 'the duty-cycle budget is spent', {
      retry_after_ms: retry,
      details: { source, ...extra },
    });
  }

  /**
   * Write one frame and wait for the firmware's verdict: HNLORA reports +HNTXDONE/+HNTXERR; Meshtastic
   * only reports refusals (Routing DUTY_CYCLE_LIMIT), so its window is the airtime plus a grace.
   */
  private async transmit(
    bridge: SerialBridge,
    frame: Uint8Array,
    airtimeMs: number,
    waitVerdict: boolean,
  ): Promise<void> {
    const adapter = bridge.adapter;
    const id = (this.packetSeq = (this.packetSeq + 1) >>> 0 || 1);
    const verdict = waitVerdict
      ? bridge
          .waitFor(
            (ev) =>
              ev.kind === 'tx_error' && (ev.packet_id === undefined || ev.packet_id === id)
                ? ev
                : ev.kind === 'tx_done' && adapter.name !== 'meshtastic'
                  ? ev
                  : undefined,
            Math.ceil(airtimeMs) + 1000,
          )
          .catch((e: unknown) => {
            if (e instanceof HnError && e.code === 'timeout') return null; // no refusal: sent
            throw e;
          })
      : Promise.resolve(null);
    await bridge.write(adapter.encodeTx(frame, id));
    const v = await verdict;
    if (v && v.kind === 'tx_error') {
      if (v.duty_cycle)
        throw new HnError('lora_duty_cycle_exhausted', 'the firmware refused: duty cycle', {
          details: { firmware: true },
        });
      throw new HnError('lora_hardware_unavailable', `the stick refused the frame: ${v.code}`);
    }
  }

  private serialTx<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.txChain.then(fn, fn);
    this.txChain = p.catch(() => undefined);
    return p;
  }

  // ------------------------------------------------------------------ capabilities
  status(): LoraStatus {
    const r = this.radio();
    const c = this.d.settings();
    return {
      state: this.state,
      ...(this.errorCode && this.state !== 'ready' ? { error_code: this.errorCode } : {}),
      adapter: c.adapter,
      region: this.device?.region ?? c.region,
      radio: {
        ...(r.frequency_hz !== undefined ? { frequency_hz: r.frequency_hz } : {}),
        sf: r.sf,
        bw_khz: r.bw_khz,
        cr: r.cr,
        tx_power_dbm: r.tx_power_dbm,
        preamble: r.preamble,
      },
      ...(this.device?.device_id ? { device_id: this.device.device_id } : {}),
      ...(this.device?.firmware ? { firmware: this.device.firmware } : {}),
      ...(this.usb ? { usb: this.usb } : {}),
      web_serial_supported: !!this.d.ports,
      simulated: !!this.d.simulated,
      tx_count: this.txCount,
      rx_count: this.rx.rxCount,
      rx_dropped: { ...this.rx.dropped },
      queue_depth: this.rx.depth,
      ...(this.lastTxAt !== undefined ? { last_tx_at: this.lastTxAt } : {}),
      ...(this.rx.lastRxAt !== null ? { last_rx_at: this.rx.lastRxAt } : {}),
    };
  }

  dutyCycle(): DutyCycleStatus {
    const now = this.d.clock.now();
    const c = this.d.settings();
    return this.dc.status(now, c.region, this.frameAirtimeMs());
  }

  async beaconSend(input: { flags?: unknown } = {}): Promise<{
    beacon_id: string;
    sequence: number;
    airtime_ms: number;
    sent_at: number;
    duty_cycle: { used_ms: number; budget_ms: number | null };
  }> {
    const flags = input.flags ?? FLAG_OK;
    if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || flags > 0xff)
      throw new HnError('bad_request', 'flags must be a u8');
    if (flags & ~FLAGS_SENDABLE)
      throw new HnError('bad_request', 'only OK, GATEWAY and LOW_BATTERY may be set');
    return this.sendBeacon(flags, true);
  }

  private async sendBeacon(flags: number, explicit: boolean) {
    const bridge = this.requireReady();
    return this.serialTx(async () => {
      const now = this.d.clock.now();
      const airtime = this.frameAirtimeMs();
      if (!this.dc.fits(now, airtime)) throw this.exhausted(now, airtime, 'local');
      const sequence = await this.nextSequence();
      const frame = this.buildFrame(flags, sequence, now);
      try {
        await this.transmit(bridge, frame, airtime, true);
      } catch (e) {
        if (e instanceof HnError && e.code === 'lora_duty_cycle_exhausted')
          throw this.exhausted(now, airtime, 'firmware');
        throw e;
      }
      await this.dc.record(now, airtime);
      this.exhaustedEpisode = false;
      this.txCount++;
      this.lastTxAt = now;
      const beacon_id = beaconIdOf({
        sender_hash: this.selfHash,
        sequence,
        flags,
        unix_seconds: Math.floor(now / 1000) >>> 0,
      });
      this.d.emit('lora.beacon.sent', {
        beacon_id,
        sequence,
        flags,
        airtime_ms: airtime,
        sent_at: now,
        scheduled: !explicit,
      });
      return {
        beacon_id,
        sequence,
        airtime_ms: airtime,
        sent_at: now,
        duty_cycle: { used_ms: this.dc.usedMs(now), budget_ms: this.dc.budgetMs },
      };
    });
  }

  async panicSend(): Promise<{
    beacon_id: string;
    sequence: number;
    frames: number;
    gap_ms: number;
    airtime_ms_total: number;
    override_used: boolean;
  }> {
    const bridge = this.requireReady();
    const c = this.d.settings();
    const now = this.d.clock.now();
    if (
      this.saved.last_panic_at !== undefined &&
      now - this.saved.last_panic_at < PANIC_COOLDOWN_MS &&
      now >= this.saved.last_panic_at
    )
      throw new HnError('lora_duty_cycle_exhausted', 'one panic burst per minute', {
        retry_after_ms: this.saved.last_panic_at + PANIC_COOLDOWN_MS - now,
        details: { reason: 'panic_cooldown' },
      });
    const frames = c.panic_burst_count;
    const gap = c.panic_burst_gap_ms;
    const airtime = this.frameAirtimeMs();
    const total = Math.round(airtime * frames * 1000) / 1000;
    let override = false;
    if (!this.dc.fits(now, total)) {
      if (!c.duty_cycle_override_for_panic) throw this.exhausted(now, total, 'local', { reason: 'budget' });
      override = true;
    }
    const sequence = await this.nextSequence();
    this.saved.last_panic_at = now;
    await this.d.kv.put(STATE_KEY, this.saved);
    const frame = this.buildFrame(FLAG_PANIC | FLAG_OK, sequence, now);
    const beacon_id = beaconIdOf({
      sender_hash: this.selfHash,
      sequence,
      flags: FLAG_PANIC | FLAG_OK,
      unix_seconds: Math.floor(now / 1000) >>> 0,
    });
    const sendOne = async () => {
      const t = this.d.clock.now();
      await this.transmit(bridge, frame, airtime, false);
      await this.dc.record(t, airtime, override);
      this.txCount++;
      this.lastTxAt = t;
    };
    // frame 1 is handed to the radio before we resolve; the rest runs on the clock
    await this.serialTx(sendOne);
    const rest = (async () => {
      for (let i = 1; i < frames; i++) {
        await this.d.clock.sleep(airtime + gap); // gap from the end of one transmission to the start of the next
        if (!this.bridge?.isOpen) return false;
        await this.serialTx(sendOne);
      }
      return true;
    })();
    void rest.then(
      (complete) => {
        this.d.emit('lora.panic.sent', {
          beacon_id,
          sequence,
          frames,
          gap_ms: gap,
          airtime_ms_total: total,
          override_used: override,
          complete,
        });
      },
      () => {
        this.d.emit('lora.panic.sent', {
          beacon_id,
          sequence,
          frames,
          gap_ms: gap,
          airtime_ms_total: total,
          override_used: override,
          complete: false,
        });
      },
    );
    if (override) {
      const n = this.d.clock.now();
      this.d.emit('lora.duty_cycle.overridden', {
        beacon_id,
        airtime_ms_total: total,
        airtime_used_ms: this.dc.usedMs(n),
        airtime_budget_ms: this.dc.budgetMs,
      });
      this.d.notify?.({
        kind: 'override',
        title: 'Duty-cycle limit overridden',
        body: 'A panic burst was sent beyond the hourly radio budget.',
        requireInteraction: false,
        tag: `lora-override-${beacon_id}`,
      });
    }
    return { beacon_id, sequence, frames, gap_ms: gap, airtime_ms_total: total, override_used: override };
  }

  peerList(input: { state?: unknown; limit?: unknown } = {}): { peers: Omit<LoraPeer, 'beacon_key'>[] } {
    const states: PeerState[] = ['unknown', 'verified', 'conflict', 'blocked'];
    if (input.state !== undefined && !states.includes(input.state as PeerState))
      throw new HnError('bad_request', 'unknown state');
    const limit = input.limit ?? 1000;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new HnError('bad_request', 'limit 1..1000');
    return { peers: this.peers.list(input.state as PeerState | undefined, limit) };
  }

  async peerVerify(
    input: VerifyInput,
  ): Promise<{ sender_hash: string; node_id?: string; state: string; at: number }> {
    if (!input || typeof input !== 'object') throw new HnError('bad_request', 'object expected');
    try {
      const out = await this.peers.verify(input, this.d.clock.now());
      if (out.verified) this.d.emit('lora.peer.verified', { ...out.verified, at: out.result.at });
      return out.result;
    } catch (e) {
      const conflict = (e as { outcome?: { conflict?: { sender_hash: string; candidates: string[] } } })
        .outcome?.conflict;
      if (conflict) this.d.emit('lora.peer.conflict', { ...conflict, at: this.d.clock.now() });
      throw e;
    }
  }

  /** a `lora.peer.verified` from another operator (gossip): a different binding makes a conflict */
  async remotePeerVerified(hash: string, nodeId: string): Promise<void> {
    const c = await this.peers.remoteVerified(hash, nodeId);
    if (c) this.d.emit('lora.peer.conflict', { ...c, at: this.d.clock.now(), remote: true });
  }

  recentBeacons(
    input: { since?: unknown; sender_hash?: unknown; flags_any?: unknown; limit?: unknown } = {},
  ): {
    beacons: LoraBeacon[];
  } {
    const { since, sender_hash, flags_any } = input;
    const limit = input.limit ?? 100;
    if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since)))
      throw new HnError('bad_request', 'since: ms');
    if (sender_hash !== undefined && !isSenderHash(sender_hash))
      throw new HnError('bad_request', 'sender_hash: 8 hex');
    if (
      flags_any !== undefined &&
      (typeof flags_any !== 'number' || !Number.isInteger(flags_any) || flags_any < 0 || flags_any > 255)
    )
      throw new HnError('bad_request', 'flags_any: u8');
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new HnError('bad_request', 'limit 1..1000');
    return {
      beacons: this.rx.recentBeacons({
        since: since as number | undefined,
        sender_hash: sender_hash as string | undefined,
        flags_any: flags_any as number | undefined,
        limit,
      }),
    };
  }

  // ------------------------------------------------------------------ scheduler and internal API
  /** M31 §5.8: the next beacon carries PANIC (internal API, not a capability) */
  setPanicNext(): void {
    this.panicNext = true;
  }

  private scheduleBeacon(first = false) {
    if (this.schedTimer) this.d.clock.clearTimeout(this.schedTimer);
    this.schedTimer = null;
    const c = this.d.settings();
    if (!c.scheduler || this.stopped) return;
    const period = c.beacon_period_seconds * 1000;
    const j = c.beacon_jitter_fraction;
    const delay = first ? this.rand() * period : period * (1 + (this.rand() * 2 - 1) * j);
    this.schedTimer = this.d.clock.setTimeout(
      () => void this.scheduledTick(),
      Math.max(1, Math.round(delay)),
    );
  }

  private async scheduledTick() {
    this.schedTimer = null;
    if (this.state !== 'ready') return;
    const now = this.d.clock.now();
    const airtime = this.frameAirtimeMs();
    const next = this.dc.nextTxAllowedAt(now, airtime);
    if (next > now) {
      // the scheduler waits silently for the budget
      if (Number.isFinite(next))
        this.schedTimer = this.d.clock.setTimeout(() => void this.scheduledTick(), next - now);
      return;
    }
    let flags = FLAG_OK | (this.d.gatewayUp?.() ? FLAG_GATEWAY : 0);
    if (this.panicNext) {
      flags |= FLAG_PANIC;
      this.panicNext = false;
    }
    try {
      await this.sendBeacon(flags, false);
    } catch {
      // counted by the failure paths; the next period tries again
    }
    this.scheduleBeacon();
  }
}
