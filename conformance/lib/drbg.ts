/**
 * X09 B5 DRBG: block_i = SHA-256("HNCONF/1" ‖ u64be(seed) ‖ u16be(len(label)) ‖ utf8(label) ‖ u32be(i)).
 * Language-neutral, so a port of the suite in another language derives the same fixtures.
 */
import { keyFromSeed, sha256, toHex, utf8, type SuiteKey } from './crypto.js';

export function drbg(seed: number | bigint, label: string, length: number): Uint8Array {
  const l = utf8(label);
  const out = new Uint8Array(length);
  let off = 0;
  for (let i = 0; off < length; i++) {
    const msg = new Uint8Array(8 + 8 + 2 + l.length + 4);
    msg.set(utf8('HNCONF/1'), 0);
    const dv = new DataView(msg.buffer);
    dv.setBigUint64(8, BigInt(seed));
    dv.setUint16(16, l.length);
    msg.set(l, 18);
    dv.setUint32(18 + l.length, i);
    const block = sha256(msg);
    out.set(block.subarray(0, Math.min(32, length - off)), off);
    off += 32;
  }
  return out;
}

export const drbgIdentity = (seed: number | bigint, name: string): SuiteKey =>
  keyFromSeed(drbg(seed, `identity/${name}`, 32));
export const drbgHex = (seed: number | bigint, label: string, bytes: number): string =>
  toHex(drbg(seed, label, bytes));
export const formatSeed = (seed: number): string => `0x${seed.toString(16).toUpperCase()}`;
export function parseSeed(s: string): number {
  const n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad seed ${s}`);
  return n;
}
