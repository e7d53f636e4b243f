/**
 * zstd for X08 (digest A3 gap 2, A5): one zstd frame over a tensor's whole raw payload, level 3.
 *
 * Backend: `@bokuweb/zstd-wasm` (MIT; zstd compiled to WASM; `browser` export = ESM build that loads its
 * `.wasm` next to itself via `new URL(..., import.meta.url)`, which Vite emits as a same-origin asset; `node`
 * export reads the file from disk). `await initZstd()` once, then calls are synchronous.
 *
 * Hostile input: the library's `decompress` trusts the frame's declared content size and would allocate
 * whatever it says (or write through a failed allocation). So `decompressExact` parses the zstd frame header
 * itself first and requires a single standard frame with Frame_Content_Size == the size the tensor header
 * declared (already bounded by rx_buffer_bytes_max), no dictionary, before the library sees the bytes.
 */
import { compress as zCompress, decompress as zDecompress, init as zInit } from '@bokuweb/zstd-wasm';
import { HnError } from '../../core/errors.js';
import { X08Error } from './frame.js';

export const ZSTD_LEVEL_DEFAULT = 3;
const ZSTD_MAGIC = 0xfd2fb528;

let ready: Promise<void> | null = null;
let isReady = false;

/**
 * Load the WASM module (idempotent). In a browser `wasm` may be a URL or the bytes; by default the module
 * resolves its own `.wasm` relative to itself (bundled by Vite, no network beyond the app's origin).
 */
export function initZstd(wasm?: string, timeoutMs = 15_000): Promise<void> {
  if (ready) return ready;
  ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new HnError('internal_error', 'zstd WASM did not load')),
      timeoutMs,
    );
    // the `node` build's init() reads the file next to itself and takes no argument; the browser build takes a URL/bytes
    (zInit as (path?: string) => Promise<void>)(wasm).then(
      () => {
        clearTimeout(timer);
        isReady = true;
        resolve();
      },
      () => {
        clearTimeout(timer);
        reject(new HnError('internal_error', 'zstd WASM did not load'));
      },
    );
  });
  ready.catch(() => {
    ready = null; // allow a retry
  });
  return ready;
}

export const zstdReady = (): boolean => isReady;

function requireReady(): void {
  if (!isReady) throw new HnError('internal_error', 'zstd is not initialised; await initZstd() first');
}

/** Compress to one zstd frame (with Frame_Content_Size, which libzstd writes for one-shot compression). */
export function zstdCompress(data: Uint8Array, level = ZSTD_LEVEL_DEFAULT): Uint8Array {
  requireReady();
  return zCompress(data, level);
}

export interface ZstdFrameInfo {
  /** Frame_Content_Size, or null when the header does not carry it. */
  contentSize: number | null;
  headerBytes: number;
  dictionaryId: number;
  checksum: boolean;
}

/**
 * Parse a zstd frame header (RFC 8878 §3.1.1). Throws X08Error('decompress_failed') on anything but a
 * standard zstd frame (skippable frames and garbage included).
 */
export function readZstdFrameHeader(b: Uint8Array): ZstdFrameInfo {
  const fail = (why: string): never => {
    throw new X08Error('decompress_failed', why);
  };
  if (b.length < 6) fail('zstd frame too short');
  const magic = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  if (magic !== ZSTD_MAGIC) fail('not a zstd frame');
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  if ((fhd >> 3) & 1) fail('reserved bit set in zstd frame header');
  const checksum = ((fhd >> 2) & 1) === 1;
  const didFlag = fhd & 3;
  let at = 5 + (singleSegment ? 0 : 1);
  const didBytes = [0, 1, 2, 4][didFlag]!;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  if (b.length < at + didBytes + fcsBytes) fail('truncated zstd frame header');
  let dictionaryId = 0;
  for (let i = 0; i < didBytes; i++) dictionaryId += b[at + i]! * 2 ** (8 * i);
  at += didBytes;
  let contentSize: number | null = null;
  if (fcsBytes > 0) {
    let v = 0;
    for (let i = 0; i < fcsBytes; i++) v += b[at + i]! * 2 ** (8 * i);
    contentSize = fcsBytes === 2 ? v + 256 : v;
  }
  return { contentSize, headerBytes: at + fcsBytes, dictionaryId, checksum };
}

/**
 * Decompress one zstd frame that must expand to exactly `expectedBytes` (digest A3 gap 2, A4):
 * missing Frame_Content_Size, a dictionary, a size mismatch, trailing data or any zstd error →
 * X08Error('decompress_failed').
 */
export function zstdDecompressExact(data: Uint8Array, expectedBytes: number): Uint8Array {
  requireReady();
  const info = readZstdFrameHeader(data);
  if (info.contentSize === null)
    throw new X08Error('decompress_failed', 'zstd frame lacks Frame_Content_Size');
  if (info.dictionaryId !== 0)
    throw new X08Error('decompress_failed', 'zstd dictionaries are not used by X08');
  if (info.contentSize !== expectedBytes)
    throw new X08Error('decompress_failed', 'zstd content size ≠ declared tensor size');
  let out: Uint8Array;
  try {
    out = zDecompress(data, { defaultHeapSize: expectedBytes });
  } catch {
    throw new X08Error('decompress_failed', 'zstd stream is corrupt');
  }
  if (out.length !== expectedBytes)
    throw new X08Error('decompress_failed', 'zstd output size ≠ declared tensor size');
  return out;
}

/** Upper bound of a zstd frame for `n` raw bytes (ZSTD_COMPRESSBOUND), used to cap compressed reassembly. */
export const zstdCompressBound = (n: number): number =>
  n + Math.floor(n / 256) + (n < 128 << 10 ? Math.floor(((128 << 10) - n) / 2048) : 0) + 64;
