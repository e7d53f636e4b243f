/**
 * LoRa time on air, the Semtech SX127x/SX126x formula (digest §6):
 *   Tsym = 2^SF / BW;  Tpre = (Npre + 4.25)·Tsym
 *   Npay = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE)))·(CR + 4), 0)
 *   ToA  = Tpre + Npay·Tsym
 * CRC on, explicit header, CR = denominator − 4, DE (low data rate optimisation) when Tsym ≥ 16 ms.
 * Computed in integer quarter-symbols, so the result is exact to the microsecond for the table.
 */
import { HnError } from '../core/errors.js';

export interface ModemParams {
  sf: number;
  bw_khz: number;
  /** coding-rate denominator, 5..8 (4/5 .. 4/8) */
  cr: number;
  preamble: number;
  crc?: boolean;
  implicit_header?: boolean;
  /** force low-data-rate optimisation on/off; default per the Tsym ≥ 16 ms rule */
  low_data_rate?: boolean;
}

export function symbolMs(p: Pick<ModemParams, 'sf' | 'bw_khz'>): number {
  return 2 ** p.sf / p.bw_khz;
}

export function payloadSymbols(payloadBytes: number, p: ModemParams): number {
  const tsym = symbolMs(p);
  const de = (p.low_data_rate ?? tsym >= 16) ? 1 : 0;
  const crc = (p.crc ?? true) ? 1 : 0;
  const ih = p.implicit_header ? 1 : 0;
  const num = 8 * payloadBytes - 4 * p.sf + 28 + 16 * crc - 20 * ih;
  const den = 4 * (p.sf - 2 * de);
  return 8 + Math.max(Math.ceil(num / den) * p.cr, 0);
}

/** Time on air in ms, rounded to 1 µs. */
export function timeOnAirMs(payloadBytes: number, p: ModemParams): number {
  if (!Number.isInteger(p.sf) || p.sf < 5 || p.sf > 12)
    throw new HnError('bad_request', 'spreading factor 5..12');
  if (!(p.bw_khz > 0)) throw new HnError('bad_request', 'bandwidth must be positive');
  if (!Number.isInteger(p.cr) || p.cr < 5 || p.cr > 8)
    throw new HnError('bad_request', 'coding rate denominator 5..8');
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > 255)
    throw new HnError('bad_request', 'payload 0..255 bytes');
  // quarter symbols keep the preamble's .25 exact: (4·Npre + 17 + 4·Npay) / 4 · 2^SF / BW
  const quarters = 4 * p.preamble + 17 + 4 * payloadSymbols(payloadBytes, p);
  const ms = (quarters * 2 ** p.sf) / (4 * p.bw_khz);
  return Math.round(ms * 1000) / 1000;
}
