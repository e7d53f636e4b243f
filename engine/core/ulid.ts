/** ULID: 48-bit ms time + 80 random bits, Crockford base32, monotonic within one millisecond. */
import { HnError } from './errors.js';
import { randomBytes } from './encoding.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

function encodeTime(ms: number): string {
  let s = '';
  for (let i = 0; i < 10; i++) {
    s = ALPHABET[ms % 32] + s;
    ms = Math.floor(ms / 32);
  }
  return s;
}

/** 80 random bits as 16 base32 digits (each digit holds 5 bits). */
function encodeRandom(digits: number[]): string {
  return digits.map((d) => ALPHABET[d]).join('');
}

export interface UlidGenerator {
  (): string;
}

/** A monotonic ULID generator; `now` is injectable for tests. */
export function ulidGenerator(now: () => number = Date.now): UlidGenerator {
  let lastMs = -1;
  let last: number[] = [];
  return function next(): string {
    let ms = now();
    if (ms > 2 ** 48 - 1 || ms < 0) throw new HnError('bad_request', 'time out of ULID range');
    if (ms <= lastMs) {
      ms = lastMs;
      // increment the 80-bit random part; on overflow, move to the next millisecond
      let i = 15;
      while (i >= 0 && last[i] === 31) {
        last[i] = 0;
        i--;
      }
      if (i < 0) {
        lastMs = ms + 1;
        last = freshRandom();
        return encodeTime(lastMs) + encodeRandom(last);
      }
      last[i]!++;
    } else {
      lastMs = ms;
      last = freshRandom();
    }
    return encodeTime(lastMs) + encodeRandom(last);
  };
}

function freshRandom(): number[] {
  const b = randomBytes(16);
  const out = Array.from(b, (x) => x & 31);
  out[0] = out[0]! & 15; // leave headroom so increments rarely overflow
  return out;
}

export const ulid = ulidGenerator();

export function ulidTime(id: string): number {
  if (!ULID_RE.test(id)) throw new HnError('bad_request', 'malformed ULID');
  let ms = 0;
  for (let i = 0; i < 10; i++) ms = ms * 32 + ALPHABET.indexOf(id[i]!);
  return ms;
}
