/**
 * X08 receive-side reassembly (digest A2/A4): tensors arrive as TENSOR_DATA chunks (the first one fixes dtype,
 * shape and flags), end with a FINAL chunk and a TENSOR_END frame. Uncompressed tensors are written straight into
 * one buffer of the declared size; compressed ones collect their pieces and are decompressed to exactly the
 * declared size at the end. Every violation throws the A4 error the session NACKs with; the declared bytes of
 * open tensors count against rx_buffer_bytes_max before any byte is stored.
 */
import { DTYPE_BYTES, type Dtype } from '../../core/types.js';
import { zstdCompressBound, zstdDecompressExact } from './compress.js';
import {
  FLAG_COMPRESSED,
  FLAG_FINAL,
  FLAG_GRAD,
  FrameType,
  X08Error,
  declaredBytes,
  type X08Frame,
} from './frame.js';

interface PartialTensor {
  dtype: Dtype;
  shape: number[];
  flags: number; // COMPRESSED | GRAD as in the first chunk
  declared: number;
  final: boolean;
  filled: number;
  buf: Uint8Array | null; // uncompressed: preallocated declared bytes
  parts: Uint8Array[]; // compressed: received pieces
}

export interface Reassembled {
  dtype: Dtype;
  shape: number[];
  data: Uint8Array;
  isGrad: boolean;
}

export class Reassembly {
  private readonly partials = new Map<number, PartialTensor>();
  /** Declared bytes of the tensors being reassembled. */
  bytes = 0;

  /**
   * Take one TENSOR_DATA chunk (the window check is the caller's). `rest`: the chunk's data continues in these
   * pieces (a frame that arrived in link fragments, `decodeFrameParts`); they are copied straight into place.
   */
  add(
    f: Extract<X08Frame, { type: typeof FrameType.TENSOR_DATA }>,
    maxChunk: number,
    maxOpen: number,
    rxMax: number,
    rest: readonly Uint8Array[] = [],
  ): void {
    let len = f.data.length;
    for (const r of rest) len += r.length;
    if (len > maxChunk) throw new X08Error('bad_frame', 'chunk exceeds max_chunk_bytes');
    const chunkFlags = f.flags & (FLAG_COMPRESSED | FLAG_GRAD);
    let p = this.partials.get(f.tensorId);
    if (!p) {
      if (this.partials.size >= maxOpen)
        throw new X08Error('shape_mismatch', 'more tensors open than the window');
      const declared = declaredBytes(DTYPE_BYTES[f.dtype], f.shape, rxMax);
      if (declared > rxMax - this.bytes)
        throw new X08Error('tensor_too_large', 'tensor exceeds rx_buffer_bytes_max');
      const compressed = (chunkFlags & FLAG_COMPRESSED) !== 0;
      p = {
        dtype: f.dtype,
        shape: f.shape,
        flags: chunkFlags,
        declared,
        final: false,
        filled: 0,
        buf: compressed ? null : new Uint8Array(declared),
        parts: [],
      };
      this.partials.set(f.tensorId, p);
      this.bytes += declared;
    } else {
      if (p.final) throw new X08Error('shape_mismatch', 'TENSOR_DATA after the FINAL chunk');
      if (p.dtype !== f.dtype || p.flags !== chunkFlags || !sameShape(p.shape, f.shape)) {
        throw new X08Error('shape_mismatch', "chunk header differs from the tensor's first chunk");
      }
    }
    if (p.buf) {
      if (p.filled + len > p.declared)
        throw new X08Error('shape_mismatch', 'more data than the shape declares');
      let at = p.filled;
      for (const piece of [f.data, ...rest]) {
        p.buf.set(piece, at);
        at += piece.length;
      }
    } else {
      if (p.filled + len > zstdCompressBound(p.declared)) {
        throw new X08Error('decompress_failed', 'compressed data exceeds the bound for the declared size');
      }
      p.parts.push(f.data, ...rest);
    }
    p.filled += len;
    if (f.flags & FLAG_FINAL) p.final = true;
  }

  /** TENSOR_END: the complete tensor (decompressed where it was compressed). */
  end(tensorId: number): Reassembled {
    const p = this.partials.get(tensorId);
    if (!p) throw new X08Error('shape_mismatch', 'TENSOR_END for a tensor that is not open');
    if (!p.final) throw new X08Error('shape_mismatch', 'TENSOR_END without a FINAL chunk');
    let data: Uint8Array;
    if (p.buf) {
      if (p.filled !== p.declared)
        throw new X08Error('shape_mismatch', 'data length ≠ product(shape)·sizeof(dtype)');
      data = p.buf;
    } else {
      const all = new Uint8Array(p.filled);
      let o = 0;
      for (const part of p.parts) {
        all.set(part, o);
        o += part.length;
      }
      p.parts = [];
      data = zstdDecompressExact(all, p.declared);
    }
    this.partials.delete(tensorId);
    this.bytes -= p.declared;
    return { dtype: p.dtype, shape: p.shape, data, isGrad: (p.flags & FLAG_GRAD) !== 0 };
  }

  clear(): void {
    this.partials.clear();
    this.bytes = 0;
  }
}

function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
