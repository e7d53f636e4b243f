/**
 * One interface for every stick (digest §8). An adapter is a pure byte protocol: it encodes what the
 * host writes and de-frames what the device sends; the serial bridge owns the port and the read loop.
 */
import type { ModemParams } from '../airtime.js';

export type AdapterName = 'meshtastic' | 'rfm95w' | 'sx126x';

/** The de-framer keeps at most this many buffered bytes; past it, it resyncs (digest §8). */
export const DEFRAMER_BUFFER_MAX = 4096;

export interface DeviceInfo {
  device_id?: string;
  firmware?: string;
  chip?: string;
  region?: string;
  /** the radio the device actually uses (Meshtastic presets differ from our config) */
  radio: RadioInfo;
}

export interface RadioInfo extends ModemParams {
  frequency_hz?: number;
  tx_power_dbm: number;
  sync_word?: number;
}

export type RxEvent =
  | { kind: 'frame'; payload: Uint8Array; rssi: number | null; snr: number | null; device_id?: string }
  | { kind: 'malformed'; reason: string }
  | { kind: 'debug'; text: string }
  | { kind: 'tx_done'; airtime_ms?: number; packet_id?: number }
  | { kind: 'tx_error'; code: string; duty_cycle: boolean; packet_id?: number }
  | { kind: 'ctl'; name: string; value: unknown };

/** What `init` may do with the device: write bytes, wait for a de-framed event, sleep. */
export interface AdapterIO {
  write(bytes: Uint8Array): Promise<void>;
  /** resolve with the first event for which `pick` returns a value; reject with `timeout` after `ms` */
  waitFor<T>(pick: (ev: RxEvent) => T | undefined, ms: number): Promise<T>;
  sleep(ms: number): Promise<void>;
  random32(): number;
}

export interface LoraAdapter {
  readonly name: AdapterName;
  /** 5 s budget, enforced by the bridge; failure → `lora_hardware_unsupported` */
  init(io: AdapterIO): Promise<DeviceInfo>;
  /** the bytes to write for one frame (32 or 64 bytes); `packetId` for firmware that tracks TX */
  encodeTx(frame: Uint8Array, packetId?: number): Uint8Array;
  /** stateful de-framer */
  feed(bytes: Uint8Array): RxEvent[];
  /** bytes on air for a frame of `n` bytes (Meshtastic adds its header and Data wrapper) */
  onAirBytes(n: number): number;
  radio(): RadioInfo;
  heartbeat?(): Uint8Array;
  /** bytes currently held by the de-framer (bounded by DEFRAMER_BUFFER_MAX) */
  readonly buffered: number;
}
