/** zstd for X08: identity round trip, and every hostile-input path → decompress_failed (never a crash). */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { X08Error } from '../../engine/transport/tensor/frame.js';
import {
  initZstd,
  readZstdFrameHeader,
  zstdCompress,
  zstdCompressBound,
  zstdDecompressExact,
} from '../../engine/transport/tensor/compress.js';

beforeAll(() => initZstd());

const reason = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof X08Error) return e.reason;
    throw e;
  }
};

describe('zstd', () => {
  it('round trip is identity (property) and the frame carries Frame_Content_Size', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        fc.integer({ min: 1, max: 8 }),
        (b, rep) => {
          const data = new Uint8Array(b.length * rep);
          for (let i = 0; i < rep; i++) data.set(b, i * b.length);
          const c = zstdCompress(data, 3);
          expect(c.length).toBeLessThanOrEqual(zstdCompressBound(data.length));
          expect(readZstdFrameHeader(c).contentSize).toBe(data.length);
          const d = zstdDecompressExact(c, data.length);
          expect(Buffer.from(d).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('wrong declared size, missing content size, dictionary, skippable frame, garbage → decompress_failed', () => {
    const data = new Uint8Array(10000).map((_, i) => i % 7);
    const c = zstdCompress(data, 3);
    expect(reason(() => zstdDecompressExact(c, 9999))).toBe('decompress_failed');
    expect(reason(() => zstdDecompressExact(c, 10001))).toBe('decompress_failed');
    // a header without Frame_Content_Size (FCS flag 0, not single-segment)
    expect(
      readZstdFrameHeader(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 1, 2, 3])).contentSize,
    ).toBeNull();
    expect(
      reason(() => zstdDecompressExact(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 1, 2, 3]), 5)),
    ).toBe('decompress_failed');
    // dictionary id present
    expect(
      reason(() => zstdDecompressExact(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 5, 0, 0, 0]), 5)),
    ).toBe('decompress_failed');
    // skippable frame
    expect(reason(() => zstdDecompressExact(new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]), 1))).toBe(
      'decompress_failed',
    );
    // a header claiming 4 GiB is refused before anything is allocated
    const huge = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0]);
    expect(readZstdFrameHeader(huge).contentSize).toBe(0xffffffff);
    expect(reason(() => zstdDecompressExact(huge, 1000))).toBe('decompress_failed');
    // truncated and bit-flipped streams
    expect(reason(() => zstdDecompressExact(c.subarray(0, c.length - 4), 10000))).toBe('decompress_failed');
    expect(reason(() => zstdDecompressExact(new Uint8Array(3), 3))).toBe('decompress_failed');
  });

  it('fuzz: corrupted frames of the right declared size → identity or decompress_failed, never a crash', () => {
    const data = new Uint8Array(20000).map((_, i) => (i * 31) & 0x3f);
    const c = zstdCompress(data, 3);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (flips) => {
          const m = c.slice();
          for (const [i, v] of flips) m[6 + (i % (m.length - 6))] = v; // keep magic + header so the library is reached
          const r = reason(() => zstdDecompressExact(m, data.length));
          expect(['ok', 'decompress_failed']).toContain(r);
        },
      ),
      { numRuns: 1000 },
    );
    // the module still works after all that
    expect(zstdDecompressExact(c, data.length).length).toBe(data.length);
  });
});
