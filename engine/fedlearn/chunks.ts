/**
 * M28 wire chunking (digest §3: payloads over 1 MiB travel as chunks, checked against their SHA).
 * Submissions: the participant uploads `round.submit{…, chunk_index, chunk_count, size_bytes, chunk}`
 * parts, then the submission itself with `delta: {chunks, size_bytes}`; the coordinator buffers at most
 * the declared size (checked against the limit before anything is buffered) and one pending delta per
 * participant. Fetches: `adapter.fetch{sha, offset}` pages of at most 1 MiB (`next_offset`).
 */
import { b64url, fromB64url } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';

export const CHUNK_BYTES = 1024 * 1024;

export interface ChunkPart {
  delta_sha: string;
  size_bytes: number;
  chunk_index: number;
  chunk_count: number;
  chunk: string; // base64url
}

const tooLarge = (size: number, limit: number) =>
  new HnError('delta_invalid', 'delta over the size limit', {
    details: { reason: 'too_large', size, limit },
  });

export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK_BYTES));
}

/** The upload parts of a delta (only used when it is larger than one chunk). */
export function splitChunks(bytes: Uint8Array): Omit<ChunkPart, 'delta_sha'>[] {
  const count = chunkCount(bytes.length);
  const out: Omit<ChunkPart, 'delta_sha'>[] = [];
  for (let i = 0; i < count; i++)
    out.push({
      size_bytes: bytes.length,
      chunk_index: i,
      chunk_count: count,
      chunk: b64url(bytes.subarray(i * CHUNK_BYTES, Math.min(bytes.length, (i + 1) * CHUNK_BYTES))),
    });
  return out;
}

interface Pending {
  delta_sha: string;
  data: Uint8Array;
  got: Uint8Array; // 1 per received chunk
  received: number;
  count: number;
}

/** The coordinator's bounded buffer of chunked uploads, one pending delta per (round, participant). */
export class ChunkBuffer {
  private readonly pending = new Map<string, Pending>();

  /** Store one part; `delta_invalid` on any inconsistency (size checked before allocating). */
  put(key: string, p: ChunkPart, maxBytes: number): { received: number; count: number } {
    const size = p.size_bytes;
    if (!Number.isSafeInteger(size) || size < 1) throw new HnError('delta_invalid', 'bad size_bytes');
    if (size > maxBytes) throw tooLarge(size, maxBytes); // before any buffering
    const count = chunkCount(size);
    if (
      p.chunk_count !== count ||
      !Number.isSafeInteger(p.chunk_index) ||
      p.chunk_index < 0 ||
      p.chunk_index >= count
    )
      throw new HnError('delta_invalid', 'bad chunk index or count');
    if (typeof p.delta_sha !== 'string' || !/^[0-9a-f]{64}$/.test(p.delta_sha))
      throw new HnError('delta_invalid', 'bad delta_sha');
    const expectLen = p.chunk_index === count - 1 ? size - p.chunk_index * CHUNK_BYTES : CHUNK_BYTES;
    if (typeof p.chunk !== 'string' || Math.floor((p.chunk.length * 3) / 4) > expectLen)
      throw new HnError('delta_invalid', 'chunk too long');
    let bytes: Uint8Array;
    try {
      bytes = fromB64url(p.chunk);
    } catch {
      throw new HnError('delta_invalid', 'chunk is not base64url');
    }
    if (bytes.length !== expectLen) throw new HnError('delta_invalid', 'chunk has the wrong length');
    let cur = this.pending.get(key);
    if (!cur || cur.delta_sha !== p.delta_sha || cur.data.length !== size) {
      cur = {
        delta_sha: p.delta_sha,
        data: new Uint8Array(size),
        got: new Uint8Array(count),
        received: 0,
        count,
      };
      this.pending.set(key, cur); // replaces any other pending delta of this participant
    }
    cur.data.set(bytes, p.chunk_index * CHUNK_BYTES);
    if (!cur.got[p.chunk_index]) {
      cur.got[p.chunk_index] = 1;
      cur.received++;
    }
    return { received: cur.received, count };
  }

  /** The assembled delta for a chunk reference; `delta_invalid` when incomplete or its SHA differs. */
  take(
    key: string,
    ref: { chunks: number; size_bytes: number },
    delta_sha: string,
    maxBytes: number,
  ): Uint8Array {
    if (!Number.isSafeInteger(ref.size_bytes) || ref.size_bytes > maxBytes)
      throw tooLarge(ref.size_bytes, maxBytes);
    const cur = this.pending.get(key);
    if (!cur || cur.delta_sha !== delta_sha || cur.data.length !== ref.size_bytes || cur.count !== ref.chunks)
      throw new HnError('delta_invalid', 'no matching chunked upload', {
        details: { reason: 'chunks_missing' },
      });
    if (cur.received !== cur.count)
      throw new HnError('delta_invalid', 'chunked upload incomplete', {
        details: { reason: 'chunks_missing', received: cur.received, count: cur.count },
      });
    this.pending.delete(key);
    if (sha256Hex(cur.data) !== delta_sha) throw new HnError('delta_invalid', 'delta_sha mismatch');
    return cur.data;
  }

  drop(key: string): void {
    this.pending.delete(key);
  }

  get size(): number {
    return this.pending.size;
  }
}

/** One page of a stored blob for adapter.fetch (whole when ≤ 1 MiB). */
export function page(
  bytes: Uint8Array,
  offset: unknown,
): { bytes: string; offset?: number; next_offset?: number | null } {
  if (bytes.length <= CHUNK_BYTES && (offset === undefined || offset === 0)) return { bytes: b64url(bytes) };
  const off = offset === undefined ? 0 : offset;
  if (typeof off !== 'number' || !Number.isSafeInteger(off) || off < 0 || off >= bytes.length)
    throw new HnError('bad_request', 'offset out of range', { field: 'offset' });
  const end = Math.min(bytes.length, off + CHUNK_BYTES);
  return {
    bytes: b64url(bytes.subarray(off, end)),
    offset: off,
    next_offset: end < bytes.length ? end : null,
  };
}

/** Reads a whole blob through `adapter.fetch` pages and checks it against `sha256:<hex>`. */
export async function fetchAll(
  call: (input: Record<string, unknown>) => Promise<Record<string, any>>,
  sha: string,
  maxBytes: number,
): Promise<{ meta: Record<string, any>; bytes: Uint8Array }> {
  const first = await call({ sha });
  const size = first.size_bytes;
  if (!Number.isSafeInteger(size) || size < 0 || size > maxBytes) throw tooLarge(size, maxBytes);
  const out = new Uint8Array(size);
  let r = first;
  let at = 0;
  for (;;) {
    const part = fromB64url(String(r.bytes ?? ''));
    const off = r.offset ?? 0;
    if (off !== at || at + part.length > size)
      throw new HnError('delta_invalid', 'fetched pages do not line up');
    out.set(part, at);
    at += part.length;
    if (r.next_offset === undefined || r.next_offset === null) break;
    r = await call({ sha, offset: r.next_offset });
  }
  if (at !== size || `sha256:${sha256Hex(out)}` !== sha)
    throw new HnError('delta_invalid', 'fetched bytes do not match the SHA');
  return { meta: first, bytes: out };
}
