/**
 * The M29 LoRa beacon service: the seven `experimental.lora.*` operations, the beacon scheduler,
 * panic bursts, duty-cycle enforcement, the receive pipeline and the stick connection (through the
 * serial bridge and an adapter). Dependencies are explicit — storage, clock, events, notifications,
 * the serial port provider — so the same code runs in a tab, in Node and against the simulated ether.
 */
import { HnError } from '../core/errors.js';
import { queueTail } from '../core/vocab.js';
import { timeOnAirMs } from './airtime.js';
import { DutyCycle, type DutyCycleStatus } from './duty_cycle.js';
import {
  beaconIdOf,
  encodeAuthFrame,
  encodeFrame,
  FLAG_GATEWAY,
  FLAG_OK,
  FLAG_PANIC,
  FLAGS_SENDABLE,
  senderHashOf,
} from './frame.js';
import { PeerMap, type LoraPeer, type VerifyInput } from './peer_map.js';
import { RxPipeline, type LoraBeacon } from './rx_pipeline.js';
import type { SerialBridge, SerialPortLike } from './serial_bridge.js';
import { parsePeerListInput, parseRecentInput, transmitFrame } from './tx.js';
import { StickConnection } from './connection.js';
import { PANIC_COOLDOWN_MS, type LoraEventType, type LoraServiceDeps, type LoraStatus } from './settings.js';
import type { RadioInfo } from './adapters/types.js';

// the shapes and defaults live in settings.ts; callers import them from here as before
export * from './settings.js';

const STATE_KEY = 'lora_state';
const DEBUG_LOG_MAX = 50;

interface SavedState {
  sequence: number;
  last_panic_at?: number;
  port?: { usbVendorId?: number; usbProductId?: number };
}

export class LoraService {
  private dc!: DutyCycle;
  peers!: PeerMap;
  rx!: RxPipeline;
  private saved: SavedState = { sequence: 0 };
  private txCount = 0;
  private lastTxAt: number | undefined;
  private exhaustedEpisode = false;
  private schedTimer: unknown = null;
  private panicNext = false;
  private packetSeq = 1;
  /** TX serialisation: one frame on the radio at a time */
  private txChain: Promise<unknown> = Promise.resolve();
  readonly debugLog: string[] = [];
  private readonly rand: () => number;
  readonly conn: StickConnection;

  private constructor(private readonly d: LoraServiceDeps) {
    this.rand = d.random ?? Math.random;
    this.conn = new StickConnection(d, this.rand, {
      onEvent: (ev) => {
        if (ev.kind === 'frame')
          this.rx.push({
            payload: ev.payload,
            rssi: ev.rssi,
            snr: ev.snr,
            device_id: ev.device_id,
            at: this.d.clock.now(),
          });
        else if (ev.kind === 'malformed') this.rx.malformed(ev.reason);
      },
      debug: (line) => {
        this.debugLog.push(line.slice(0, 200));
        if (this.debugLog.length > DEBUG_LOG_MAX) this.debugLog.shift();
      },
      onReady: () => this.scheduleBeacon(true),
      savedPort: () => this.saved.port,
      savePort: async (port) => {
        this.saved.port = port;
        await this.d.kv.put(STATE_KEY, this.saved);
      },
    });
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

  // ------------------------------------------------------------------ connection (connection.ts)
  /** Start: connect to a granted port if there is one, start the scheduler. Never throws for missing hardware. */
  start(): Promise<void> {
    return this.conn.start();
  }
  /** Connect to `port` (a user's pick) or to the first granted port. */
  async connect(port?: SerialPortLike): Promise<LoraStatus> {
    await this.conn.connect(port);
    return this.status();
  }
  async stop(): Promise<void> {
    if (this.schedTimer) this.d.clock.clearTimeout(this.schedTimer);
    this.schedTimer = null;
    this.rx.dispose();
    await this.conn.stop();
  }

  // ------------------------------------------------------------------ radio
  private radio(): RadioInfo {
    if (this.conn.adapter) return this.conn.adapter.radio();
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
    const adapter = this.conn.adapter;
    const onAir = adapter
      ? adapter.onAirBytes(n)
      : this.d.settings().adapter === 'meshtastic'
        ? 16 + 3 + 2 + n + 2
        : n;
    const r = this.radio();
    return timeOnAirMs(onAir, { sf: r.sf, bw_khz: r.bw_khz, cr: r.cr, preamble: r.preamble });
  }

  private requireReady(): SerialBridge {
    return this.conn.requireReady();
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

  private transmit(bridge: SerialBridge, frame: Uint8Array, airtimeMs: number, waitVerdict: boolean) {
    const id = (this.packetSeq = (this.packetSeq + 1) >>> 0 || 1);
    return transmitFrame(bridge, frame, airtimeMs, waitVerdict, id);
  }

  private serialTx<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.txChain.then(fn, fn);
    // the caller gets p (and its rejection); the chain only needs to know it settled
    this.txChain = queueTail(p);
    return p;
  }

  // ------------------------------------------------------------------ capabilities
  status(): LoraStatus {
    const r = this.radio();
    const c = this.d.settings();
    return {
      state: this.conn.state,
      ...(this.conn.errorCode && this.conn.state !== 'ready' ? { error_code: this.conn.errorCode } : {}),
      adapter: c.adapter,
      region: this.conn.device?.region ?? c.region,
      radio: {
        ...(r.frequency_hz !== undefined ? { frequency_hz: r.frequency_hz } : {}),
        sf: r.sf,
        bw_khz: r.bw_khz,
        cr: r.cr,
        tx_power_dbm: r.tx_power_dbm,
        preamble: r.preamble,
      },
      ...(this.conn.device?.device_id ? { device_id: this.conn.device.device_id } : {}),
      ...(this.conn.device?.firmware ? { firmware: this.conn.device.firmware } : {}),
      ...(this.conn.usb ? { usb: this.conn.usb } : {}),
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
        if (!this.conn.bridge?.isOpen) return false;
        await this.serialTx(sendOne);
      }
      return true;
    })();
    // a burst cut short (unplug, a refused frame) is reported as incomplete, never lost
    void rest
      .catch((e: unknown) => {
        this.conn.debug(`panic burst cut short: ${e instanceof HnError ? e.code : String(e)}`);
        return false;
      })
      .then((complete) =>
        this.d.emit('lora.panic.sent', {
          beacon_id,
          sequence,
          frames,
          gap_ms: gap,
          airtime_ms_total: total,
          override_used: override,
          complete,
        }),
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
    const q = parsePeerListInput(input);
    return { peers: this.peers.list(q.state, q.limit) };
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
    return { beacons: this.rx.recentBeacons(parseRecentInput(input)) };
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
    if (!c.scheduler || this.conn.stopped) return;
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
    if (this.conn.state !== 'ready') return;
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
    } catch (e) {
      // the failure paths count it (events, debug log); the next period tries again
      this.conn.debug(`scheduled beacon not sent: ${e instanceof HnError ? e.code : String(e)}`);
    }
    this.scheduleBeacon();
  }
}
