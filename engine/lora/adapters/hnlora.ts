/**
 * HNLORA/1 (digest §8): the line protocol of our gateway firmware for bare SX127x/SX126x chips.
 * ASCII lines ending in CRLF, ≤ 300 bytes. Host: AT, AT+HNVER?, AT+HNCFG=…, AT+HNRX=1, AT+HNTX=<hex>.
 * Device: OK, ERR:<code>, +HNVER:1,<chip>,<fw>, +HNTXDONE:<ms>, +HNTXERR:<code>, +HNRX:<hex>,<rssi>,<snr>.
 */
import { HnError } from '../../core/errors.js';
import { fromHex, toHex } from '../../core/encoding.js';
import {
  DEFRAMER_BUFFER_MAX,
  type AdapterIO,
  type AdapterName,
  type DeviceInfo,
  type LoraAdapter,
  type RadioInfo,
  type RxEvent,
} from './types.js';

export const HNLORA_LINE_MAX = 300;
export type HnloraChip = 'sx1276' | 'sx1262';
export const CHIP_SF_RANGE: Record<HnloraChip, [number, number]> = { sx1276: [6, 12], sx1262: [5, 12] };

const enc = new TextEncoder();
const line = (s: string) => enc.encode(`${s}\r\n`);
const HEX_RE = /^(?:[0-9a-fA-F]{2})+$/;
const NUM_RE = /^-?\d+(?:\.\d+)?$/;

/** Split a byte stream into CRLF lines of at most HNLORA_LINE_MAX bytes; overlong lines are dropped whole. */
export class LineDeframer {
  private buf: number[] = [];
  private overlong = false;
  get buffered(): number {
    return this.buf.length;
  }
  push(bytes: Uint8Array): { lines: string[]; overlong: number } {
    const lines: string[] = [];
    let overlong = 0;
    for (const b of bytes) {
      if (b === 0x0a) {
        if (this.overlong) overlong++;
        else {
          if (this.buf.length && this.buf[this.buf.length - 1] === 0x0d) this.buf.pop();
          lines.push(String.fromCharCode(...this.buf));
        }
        this.buf = [];
        this.overlong = false;
        continue;
      }
      if (this.overlong) continue;
      this.buf.push(b);
      if (this.buf.length > HNLORA_LINE_MAX) {
        this.buf = [];
        this.overlong = true; // resync at the next LF
      }
    }
    if (this.buf.length > DEFRAMER_BUFFER_MAX) this.buf = [];
    return { lines, overlong };
  }
}

export interface HnloraOptions {
  frequency_hz: number;
  sf: number;
  bw_khz: number;
  cr: number;
  tx_power_dbm: number;
  preamble: number;
  sync_word: number;
}

export class HnloraAdapter implements LoraAdapter {
  private deframer = new LineDeframer();
  constructor(
    readonly name: AdapterName,
    readonly chip: HnloraChip,
    private readonly opts: HnloraOptions,
  ) {
    const [lo, hi] = CHIP_SF_RANGE[chip];
    if (!(opts.sf >= lo && opts.sf <= hi))
      throw new HnError('bad_request', `${chip} supports SF ${lo}..${hi}`);
    if (![125, 250, 500].includes(opts.bw_khz))
      throw new HnError('bad_request', 'bandwidth 125, 250 or 500 kHz');
    if (!(opts.cr >= 5 && opts.cr <= 8)) throw new HnError('bad_request', 'coding rate 4/5..4/8');
  }

  get buffered(): number {
    return this.deframer.buffered;
  }

  async init(io: AdapterIO): Promise<DeviceInfo> {
    const reply = (ms: number) =>
      io.waitFor(
        (ev) =>
          ev.kind === 'ctl' && (ev.name === 'ok' || ev.name === 'err' || ev.name === 'ver') ? ev : undefined,
        ms,
      );
    const expectOk = async (cmd: string) => {
      const r = reply(1500);
      await io.write(line(cmd));
      const ev = (await r) as { name: string; value: unknown };
      if (ev.name !== 'ok')
        throw new HnError('lora_hardware_unsupported', `${cmd.split('=')[0]} → ${String(ev.value)}`);
    };
    await expectOk('AT');
    const v = reply(1500);
    await io.write(line('AT+HNVER?'));
    const ver = (await v) as { name: string; value: unknown };
    if (ver.name !== 'ver') throw new HnError('lora_hardware_unsupported', 'no HNVER reply');
    const [proto, chip, fw] = String(ver.value).split(',');
    if (proto !== '1') throw new HnError('lora_hardware_unsupported', `HNLORA version ${proto}`);
    if (chip !== this.chip)
      throw new HnError('lora_hardware_unsupported', `stick reports ${chip}, adapter wants ${this.chip}`);
    const o = this.opts;
    await expectOk(
      `AT+HNCFG=${o.frequency_hz},${o.sf},${o.bw_khz * 1000},${o.cr},${o.tx_power_dbm},${o.preamble},${o.sync_word.toString(16).padStart(2, '0')}`,
    );
    await expectOk('AT+HNRX=1');
    return { chip, firmware: fw ?? '', radio: this.radio() };
  }

  encodeTx(frame: Uint8Array): Uint8Array {
    if (frame.length !== 32 && frame.length !== 64)
      throw new HnError('bad_request', 'frame must be 32 or 64 bytes');
    return line(`AT+HNTX=${toHex(frame)}`);
  }

  onAirBytes(n: number): number {
    return n;
  }

  radio(): RadioInfo {
    const o = this.opts;
    return {
      sf: o.sf,
      bw_khz: o.bw_khz,
      cr: o.cr,
      preamble: o.preamble,
      frequency_hz: o.frequency_hz,
      tx_power_dbm: o.tx_power_dbm,
      sync_word: o.sync_word,
    };
  }

  feed(bytes: Uint8Array): RxEvent[] {
    const { lines, overlong } = this.deframer.push(bytes);
    const out: RxEvent[] = [];
    for (let i = 0; i < overlong; i++) out.push({ kind: 'malformed', reason: 'line_too_long' });
    for (const l of lines) {
      if (l === 'OK') out.push({ kind: 'ctl', name: 'ok', value: 'OK' });
      else if (l.startsWith('ERR:')) out.push({ kind: 'ctl', name: 'err', value: l.slice(4, 40) });
      else if (l.startsWith('+HNVER:')) out.push({ kind: 'ctl', name: 'ver', value: l.slice(7, 80) });
      else if (l.startsWith('+HNTXDONE:')) {
        const ms = l.slice(10);
        out.push(
          NUM_RE.test(ms)
            ? { kind: 'tx_done', airtime_ms: Number(ms) }
            : { kind: 'malformed', reason: 'txdone' },
        );
      } else if (l.startsWith('+HNTXERR:')) {
        const code = l.slice(9, 40);
        out.push({ kind: 'tx_error', code, duty_cycle: /duty/i.test(code) });
      } else if (l.startsWith('+HNRX:')) {
        const parts = l.slice(6).split(',');
        const [hex, rssi, snr] = parts;
        if (
          parts.length !== 3 ||
          !hex ||
          !HEX_RE.test(hex) ||
          !NUM_RE.test(rssi ?? '') ||
          !NUM_RE.test(snr ?? '')
        )
          out.push({ kind: 'malformed', reason: 'hnrx' });
        else
          out.push({
            kind: 'frame',
            payload: fromHex(hex.toLowerCase()),
            rssi: Number(rssi),
            snr: Number(snr),
          });
      } else if (l.length) out.push({ kind: 'debug', text: l.slice(0, 200).replace(/[^\x20-\x7e]/g, '.') });
    }
    return out;
  }
}
