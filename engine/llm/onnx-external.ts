/**
 * Which external data files an ONNX model needs, read straight from the protobuf wire format
 * (ModelProto.graph → GraphProto.initializer → TensorProto.external_data `location`), so the
 * browser worker and Node find `model.onnx_data` / `model.onnx.data` without an ONNX library.
 * Bounds-checked: malformed bytes give `bad_request`, never an exception from out-of-range reads.
 */
import { HnError } from '../core/errors.js';
import { fromUtf8 } from '../core/encoding.js';

export class Reader {
  constructor(
    private readonly b: Uint8Array,
    public pos: number,
    private readonly end: number,
  ) {}
  get done(): boolean {
    return this.pos >= this.end;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new HnError('bad_request', 'model.onnx: truncated varint');
      const x = this.b[this.pos++]!;
      v += (x & 0x7f) * mul;
      if (!(x & 0x80)) return v;
      mul *= 128;
    }
    throw new HnError('bad_request', 'model.onnx: varint too long');
  }
  /** Returns [field, wireType, start, end] of the next field (end = start for varints/fixed). */
  field(): [number, number, number, number] {
    const key = this.varint();
    const f = Math.floor(key / 8);
    const wt = key & 7;
    const start = this.pos;
    if (wt === 0) this.varint();
    else if (wt === 1) this.pos += 8;
    else if (wt === 5) this.pos += 4;
    else if (wt === 2) {
      const len = this.varint();
      const s = this.pos;
      this.pos += len;
      if (this.pos > this.end) throw new HnError('bad_request', 'model.onnx: field runs past its message');
      return [f, wt, s, this.pos];
    } else throw new HnError('bad_request', `model.onnx: unsupported wire type ${wt}`);
    if (this.pos > this.end) throw new HnError('bad_request', 'model.onnx: field runs past its message');
    return [f, wt, start, this.pos];
  }
}

export function sub(
  b: Uint8Array,
  start: number,
  end: number,
  field: number,
  each: (s: number, e: number) => void,
): void {
  const r = new Reader(b, start, end);
  while (!r.done) {
    const [f, wt, s, e] = r.field();
    if (f === field && wt === 2) each(s, e);
  }
}

/** Distinct external data locations of the main graph's initializers, in first-use order. */
export function externalDataLocations(model: Uint8Array): string[] {
  const out: string[] = [];
  sub(model, 0, model.length, 7, (gs, ge) =>
    sub(model, gs, ge, 5, (ts, te) =>
      sub(model, ts, te, 13, (es, ee) => {
        let key = '';
        let value = '';
        const r = new Reader(model, es, ee);
        while (!r.done) {
          const [f, wt, s, e] = r.field();
          if (wt !== 2) continue;
          if (f === 1) key = fromUtf8(model.subarray(s, e));
          else if (f === 2) value = fromUtf8(model.subarray(s, e));
        }
        if (key === 'location' && value && !out.includes(value)) out.push(value);
      }),
    ),
  );
  for (const loc of out)
    if (loc.includes('..') || loc.startsWith('/') || loc.includes('\\'))
      throw new HnError('bad_request', `model.onnx: external data location '${loc}' leaves the model folder`);
  return out;
}
