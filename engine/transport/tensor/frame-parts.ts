/**
 * X08 frames that cross a peer link in several pieces (link fragments, core §5.2), decoded without joining the
 * tensor bytes (issue #11). Same checks and verdicts as `decodeFrame` on the joined message.
 */
import {
  FrameType,
  HEADER_BYTES,
  MAX_DIMS,
  chunkHeaderBytes,
  decodeFrame,
  decodeFrameOf,
  type DecodeOptions,
  type X08Frame,
} from './frame.js';
import { concatBytes } from '../../core/encoding.js';

/**
 * Decode one X08 message that arrived as several pieces (link fragments), with the same checks and verdicts as
 * `decodeFrame` on the joined bytes. A TENSOR_DATA frame whose headers lie wholly in the first piece is not
 * joined: its `data` is the first piece's tail and `rest` the following pieces (views, no copy), which the
 * reassembly copies straight into the tensor (issue #11: one copy less per chunk). Anything else is joined.
 */
export function decodeFrameParts(
  parts: readonly Uint8Array[],
  opts: DecodeOptions = {},
): { frame: X08Frame; rest: Uint8Array[] } {
  const first = parts[0] ?? new Uint8Array(0);
  if (parts.length <= 1) return { frame: decodeFrame(first, opts), rest: [] };
  const nDims = first.length > HEADER_BYTES + 3 ? first[HEADER_BYTES + 3]! : 0;
  const headsInFirst =
    first[1] === FrameType.TENSOR_DATA &&
    nDims >= 1 &&
    nDims <= MAX_DIMS &&
    first.length >= HEADER_BYTES + chunkHeaderBytes(nDims);
  if (!headsInFirst) return { frame: decodeFrame(concatBytes(...parts), opts), rest: [] };
  let total = 0;
  for (const p of parts) total += p.length;
  return { frame: decodeFrameOf(first, total, opts), rest: parts.slice(1) };
}
