/**
 * experimental/tensor_transport (X08), driven over the harness op `x08_accept`: the SUT runs an X08
 * responder (echo service) on a fresh channel and the suite is the initiator on the wire.
 * Runs when the target offers the op (X08 exists in this build before M26; see conformance/README.md).
 */
import { toHex } from '../../lib/crypto.js';
import { dataBody, endBody, fp32le, frame, helloBody, parse, T, type Parsed } from '../../lib/x08.js';
import { all, eventually, fail, pass, type CaseCtx, type SectionDef } from '../../runner/case.js';
import type { RawPort } from '../../harness/target.js';

const PURPOSE = 'conformance.echo';

interface Wire {
  port: RawPort;
  got: Parsed[];
  raw: Uint8Array[];
  closed: boolean;
  next: number;
  send(
    type: number,
    body?: Uint8Array,
    o?: { flags?: number; reserved?: number; seq?: number },
  ): Promise<void>;
}

async function open(ctx: CaseCtx, hello = true): Promise<Wire> {
  const me = ctx.identity('x08').nodeId;
  const token = toHex(ctx.bytes('token', 16));
  const port = await ctx.target.x08Accept!(0, { purpose: PURPOSE, token, local: me });
  const w: Wire = {
    port,
    got: [],
    raw: [],
    closed: false,
    next: 1,
    async send(type, body, o = {}) {
      await port.send(frame(type, o.seq ?? w.next++, o.flags ?? 0, body, o.reserved ?? 0));
    },
  };
  port.onMessage((b) => {
    w.raw.push(b.slice());
    w.got.push(parse(b.slice()));
  });
  port.onClose(() => (w.closed = true));
  if (hello) {
    await w.send(
      T.HELLO,
      helloBody({
        session_id: '01J0C0NF0RMANCE00000000000',
        session_token: token,
        from: me,
        to: ctx.info.peers[0],
        purpose: PURPOSE,
        negotiation: {
          preferred_dtype: 'fp32',
          compression: 'none',
          max_chunk_bytes: 262144,
          flow_window: 16,
        },
      }),
    );
    await eventually(async () => w.got.find((f) => f.type === T.HELLO), 2000);
  }
  return w;
}

const nackOf = (w: Wire) => w.got.find((f) => f.type === T.NACK);
const reasonOf = (f: Parsed | undefined) => (f ? new TextDecoder().decode(f.body).split(' ')[0] : null);

/** The SUT must answer a protocol violation with a NACK naming `reason` and close the session. */
async function expectNackClose(w: Wire, reason: string | null, repro: Record<string, unknown>) {
  const n = await eventually(async () => nackOf(w), 2000);
  if (!n)
    return fail(
      `CONTROL_NACK${reason ? ` ${reason}` : ''}`,
      w.got.map((f) => f.type),
      'no NACK',
      repro,
    );
  if (reason && reasonOf(n) !== reason) return fail(reason, reasonOf(n), 'NACK reason', repro);
  const closed = await eventually(async () => w.closed, 2000);
  return closed ? pass() : fail('session closed', 'open', 'SUT kept the session after a NACK', repro);
}

export const section: SectionDef = {
  name: 'experimental/tensor_transport',
  required: false,
  cases: [
    {
      id: 'X08-01',
      spec_ref: 'X08 §3, §4.1 HELLO',
      title: 'HELLO is answered with HELLO for the same session; version 0x01, reserved 0',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        try {
          const h = w.got.find((f) => f.type === T.HELLO);
          if (!h)
            return fail(
              'CONTROL_HELLO',
              w.got.map((f) => f.type),
              'no HELLO answer',
              {},
            );
          const body = JSON.parse(new TextDecoder().decode(h.body));
          return all(
            () => (h.version === 1 ? null : fail('0x01', h.version, 'version byte', {})),
            () => (h.reserved === 0 ? null : fail('0', h.reserved, 'reserved', {})),
            () =>
              body.session_id === '01J0C0NF0RMANCE00000000000'
                ? null
                : fail('same session_id', body.session_id, 'session id', {}),
          );
        } finally {
          w.port.close();
        }
      },
    },
    {
      id: 'X08-07',
      spec_ref: 'X08 §4.3 TENSOR_DATA/END',
      title: 'an fp32 [1,8] tensor goes through and comes back bit-exact, dtype and shape echoed',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        try {
          const vals = [...ctx.bytes('tensor', 8)].map((b) => (b - 128) / 64);
          const data = fp32le(vals);
          await w.send(T.DATA, dataBody(1, 2, [1, 8], data), { flags: 2 });
          await w.send(T.END, endBody(1));
          const back = await eventually(async () => w.got.find((f) => f.type === T.DATA), 3000);
          if (!back)
            return fail(
              'TENSOR_DATA back',
              w.got.map((f) => f.type),
              'no echo',
              {},
            );
          const want = toHex(dataBody(1, 2, [1, 8], data));
          return toHex(back.body) === want
            ? pass()
            : fail(want, toHex(back.body), 'echoed tensor differs', {});
        } finally {
          w.port.close();
        }
      },
    },
    {
      id: 'X08-02',
      spec_ref: 'X08 §3 header',
      title:
        'every SUT frame: 16-byte header, payload_length = body length, reserved and reserved flag bits 0, seq +1 per non-ACK frame (ACK carries the acked seq)',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        try {
          await w.send(T.DATA, dataBody(2, 2, [2], fp32le([1, 2])), { flags: 2 });
          await w.send(T.END, endBody(2));
          await w.send(T.PING, ctx.bytes('nonce', 8));
          await eventually(async () => w.got.some((f) => f.type === T.PONG), 2000);
          let last = 0;
          for (const f of w.got) {
            if (f.length !== f.body.length)
              return fail(String(f.body.length), f.length, 'payload_length', {
                frames_hex: w.raw.map(toHex),
              });
            if (f.reserved !== 0 || (f.flags & 0xfffffff0) !== 0)
              return fail('0', [f.reserved, f.flags], 'reserved bits', {});
            if (f.type === T.ACK) continue; // ACK takes no seq (X08 digest A3.4)
            if (f.seq !== last + 1)
              return fail(String(last + 1), f.seq, `seq of frame type ${f.type}`, {
                frames_hex: w.raw.map(toHex),
              });
            last = f.seq;
          }
          return pass();
        } finally {
          w.port.close();
        }
      },
    },
    {
      id: 'X08-05',
      spec_ref: 'X08 §3 frame types',
      title: 'frame type 0xFF mid-session → NACK unknown_frame_type, close',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        await w.send(0xff, new Uint8Array(0));
        return expectNackClose(w, 'unknown_frame_type', { frames_hex: [toHex(frame(0xff, 2, 0))] });
      },
    },
    {
      id: 'X08-06',
      spec_ref: 'X08 §3 reserved',
      title: 'header with reserved 0x0001 → NACK, close',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        await w.send(T.PING, ctx.bytes('nonce', 8), { reserved: 1 });
        return expectNackClose(w, 'bad_frame', {});
      },
    },
    {
      id: 'X08-11',
      spec_ref: 'X08 §4.5 sequencing',
      title: 'skipping a session_seq → NACK seq_gap, close',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        w.next++; // skip one sequence number
        await w.send(T.DATA, dataBody(3, 2, [1], fp32le([1])), { flags: 2 });
        return expectNackClose(w, 'seq_gap', { note: 'seq 2 skipped' });
      },
    },
    {
      id: 'X08-15',
      spec_ref: 'X08 §4.7 keepalive',
      title: 'CONTROL_PING with an 8-byte nonce → CONTROL_PONG echoing it within 1 s',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w = await open(ctx);
        try {
          const nonce = ctx.bytes('nonce', 8);
          await w.send(T.PING, nonce);
          const p = await eventually(async () => w.got.find((f) => f.type === T.PONG), 1000);
          if (!p)
            return fail(
              'PONG',
              w.got.map((f) => f.type),
              'no PONG within 1 s',
              {},
            );
          return toHex(p.body) === toHex(nonce)
            ? pass()
            : fail(toHex(nonce), toHex(p.body), 'nonce not echoed', {});
        } finally {
          w.port.close();
        }
      },
    },
    {
      id: 'X08-19',
      spec_ref: 'X08 §4.3 body',
      title: 'dtype 0x05 → NACK, close; n_dims 9 → NACK, close',
      requires: { ops: ['x08_accept'] },
      async run(ctx) {
        const w1 = await open(ctx);
        await w1.send(T.DATA, dataBody(4, 5, [1], new Uint8Array(4)), { flags: 2 });
        const a = await expectNackClose(w1, 'bad_frame', { dtype: 5 });
        if (a.status !== 'pass') return a;
        const w2 = await open(ctx);
        await w2.send(T.DATA, dataBody(5, 2, [1, 1, 1, 1, 1, 1, 1, 1, 1], new Uint8Array(4)), { flags: 2 });
        return expectNackClose(w2, 'bad_frame', { n_dims: 9 });
      },
    },
  ],
};
