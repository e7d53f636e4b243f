/**
 * Our hand-rolled Meshtastic protobuf + serial framing against the reference: `@meshtastic/protobufs`
 * 2.7.18 (GPL-3.0, a devDependency used only here) through @bufbuild/protobuf. Property tests over
 * random field values: our bytes equal theirs byte for byte, and we parse everything they produce
 * (including messages with fields we do not model). Plus the hand-derived vectors.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Config, Mesh } from '@meshtastic/protobufs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../engine/core/encoding.js';
import {
  decodeFromRadio,
  decodeToRadio,
  encodeFromRadio,
  encodeRouting,
  encodeToRadio,
  type FromRadioMsg,
  type ToRadioMsg,
} from '../../engine/lora/meshtastic_pb.js';
import { frameSerial, MeshtasticAdapter } from '../../engine/lora/adapters/meshtastic.js';

const here = dirname(fileURLToPath(import.meta.url));
const V = JSON.parse(readFileSync(resolve(here, '../../conformance/vectors/lora/meshtastic.json'), 'utf8'));

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const small = fc.integer({ min: 0, max: 7 });
const payload = fc.uint8Array({ minLength: 0, maxLength: 64 });
const f32 = fc.float({ noNaN: true, noDefaultInfinity: true, min: -40, max: 40 }).map((x) => Math.fround(x));
const i32 = fc.integer({ min: -2147483648, max: 2147483647 });

/** the same MeshPacket as theirs */
function theirPacket(p: any) {
  return create(Mesh.MeshPacketSchema, {
    from: p.from ?? 0,
    to: p.to ?? 0,
    channel: p.channel ?? 0,
    payloadVariant: p.decoded
      ? {
          case: 'decoded',
          value: create(Mesh.DataSchema, {
            portnum: p.decoded.portnum ?? 0,
            payload: p.decoded.payload ?? new Uint8Array(0),
            requestId: p.decoded.request_id ?? 0,
          }),
        }
      : { case: undefined },
    id: p.id ?? 0,
    rxSnr: p.rx_snr ?? 0,
    hopLimit: p.hop_limit ?? 0,
    wantAck: p.want_ack ?? false,
    rxRssi: p.rx_rssi ?? 0,
  });
}

const packetArb = fc.record(
  {
    from: u32,
    to: u32,
    channel: small,
    decoded: fc.record(
      { portnum: fc.constantFrom(1, 5, 256, 257), payload, request_id: u32 },
      { requiredKeys: ['portnum'] },
    ),
    id: u32,
    rx_snr: f32,
    hop_limit: small,
    want_ack: fc.boolean(),
    rx_rssi: i32,
  },
  { requiredKeys: [] },
);

describe('Meshtastic protobuf: byte-for-byte with @meshtastic/protobufs 2.7.18', () => {
  it('ToRadio.packet (our TX) over random fields', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const ours = encodeToRadio({ packet: p });
        const theirs = toBinary(
          Mesh.ToRadioSchema,
          create(Mesh.ToRadioSchema, { payloadVariant: { case: 'packet', value: theirPacket(p) } }),
        );
        expect(toHex(ours)).toBe(toHex(theirs));
        // and we read it back
        const back = decodeToRadio(theirs).packet!;
        expect(back.id ?? 0).toBe(p.id ?? 0);
        expect(back.to ?? 0).toBe(p.to ?? 0);
        if (p.decoded)
          expect(toHex(back.decoded?.payload ?? new Uint8Array(0))).toBe(
            toHex(p.decoded.payload ?? new Uint8Array(0)),
          );
      }),
      { numRuns: 1000 },
    );
  });

  it('ToRadio want_config_id and heartbeat', () => {
    fc.assert(
      fc.property(u32, u32, (nonce, hb) => {
        const a = create(Mesh.ToRadioSchema, { payloadVariant: { case: 'wantConfigId', value: nonce } });
        expect(toHex(encodeToRadio({ want_config_id: nonce }))).toBe(toHex(toBinary(Mesh.ToRadioSchema, a)));
        const h = create(Mesh.ToRadioSchema, {
          payloadVariant: { case: 'heartbeat', value: create(Mesh.HeartbeatSchema, { nonce: hb }) },
        });
        expect(toHex(encodeToRadio({ heartbeat: { nonce: hb } }))).toBe(
          toHex(toBinary(Mesh.ToRadioSchema, h)),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('FromRadio (packet, my_info, config.lora, config_complete_id, queueStatus): equal bytes both ways', () => {
    const variant = fc.oneof(
      packetArb.map((p) => ({
        ours: { packet: p } as FromRadioMsg,
        theirs: { case: 'packet', value: theirPacket(p) },
      })),
      u32.map((n) => ({
        ours: { my_info: { my_node_num: n } } as FromRadioMsg,
        theirs: { case: 'myInfo', value: create(Mesh.MyNodeInfoSchema, { myNodeNum: n }) },
      })),
      fc
        .record({
          use_preset: fc.boolean(),
          modem_preset: fc.integer({ min: 0, max: 8 }),
          region: fc.integer({ min: 0, max: 20 }),
          tx_power: fc.integer({ min: -10, max: 30 }),
        })
        .map((l) => ({
          ours: { config: { lora: l } } as FromRadioMsg,
          theirs: {
            case: 'config',
            value: create(Config.ConfigSchema, {
              payloadVariant: {
                case: 'lora',
                value: create(Config.Config_LoRaConfigSchema, {
                  usePreset: l.use_preset,
                  modemPreset: l.modem_preset,
                  region: l.region,
                  txPower: l.tx_power,
                }),
              },
            }),
          },
        })),
      u32.map((n) => ({
        ours: { config_complete_id: n } as FromRadioMsg,
        theirs: { case: 'configCompleteId', value: n },
      })),
      fc.record({ res: i32, free: small, maxlen: small, mesh_packet_id: u32 }).map((q) => ({
        ours: { queueStatus: q } as FromRadioMsg,
        theirs: {
          case: 'queueStatus',
          value: create(Mesh.QueueStatusSchema, {
            res: q.res,
            free: q.free,
            maxlen: q.maxlen,
            meshPacketId: q.mesh_packet_id,
          }),
        },
      })),
    );
    fc.assert(
      fc.property(u32, variant, (id, v) => {
        const theirs = toBinary(
          Mesh.FromRadioSchema,
          create(Mesh.FromRadioSchema, { id, payloadVariant: v.theirs as any }),
        );
        expect(toHex(encodeFromRadio({ id, ...v.ours }))).toBe(toHex(theirs));
        const back = decodeFromRadio(theirs);
        expect(toHex(encodeFromRadio(back))).toBe(toHex(theirs));
        // and the reference parses ours
        expect(
          toBinary(
            Mesh.FromRadioSchema,
            fromBinary(Mesh.FromRadioSchema, encodeFromRadio({ id, ...v.ours })),
          ),
        ).toEqual(theirs);
      }),
      { numRuns: 1500 },
    );
  });

  it('parses FromRadio messages carrying fields we do not model (node_info, log_record, rebooted) without error', () => {
    fc.assert(
      fc.property(
        u32,
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 200 }),
        f32,
        (num, name, msg, snr) => {
          const ni = create(Mesh.FromRadioSchema, {
            payloadVariant: {
              case: 'nodeInfo',
              value: create(Mesh.NodeInfoSchema, {
                num,
                snr,
                user: create(Mesh.UserSchema, {
                  id: `!${num.toString(16)}`,
                  longName: name,
                  shortName: 'ab',
                }),
              }),
            },
          });
          expect(decodeFromRadio(toBinary(Mesh.FromRadioSchema, ni))).toEqual({});
          const lr = create(Mesh.FromRadioSchema, {
            payloadVariant: {
              case: 'logRecord',
              value: create(Mesh.LogRecordSchema, { message: msg, level: 20 }),
            },
          });
          expect(decodeFromRadio(toBinary(Mesh.FromRadioSchema, lr))).toEqual({});
          const rb = create(Mesh.FromRadioSchema, { payloadVariant: { case: 'rebooted', value: true } });
          expect(decodeFromRadio(toBinary(Mesh.FromRadioSchema, rb))).toEqual({ rebooted: true });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Routing error DUTY_CYCLE_LIMIT (9)', () => {
    const theirs = toBinary(
      Mesh.RoutingSchema,
      create(Mesh.RoutingSchema, {
        variant: { case: 'errorReason', value: Mesh.Routing_Error.DUTY_CYCLE_LIMIT },
      }),
    );
    expect(toHex(encodeRouting({ error_reason: 9 }))).toBe(toHex(theirs));
  });
});

describe('Meshtastic serial vectors (hand-derived)', () => {
  it.each(V.to_radio as any[])('$name', (v: any) => {
    const m: ToRadioMsg = v.message.packet
      ? {
          packet: {
            ...v.message.packet,
            decoded: {
              portnum: v.message.packet.decoded.portnum,
              payload: fromHex(v.message.packet.decoded.payload_hex),
            },
          },
        }
      : v.message;
    expect(toHex(frameSerial(encodeToRadio(m)))).toBe(v.hex);
  });
  it('the adapter TX bytes equal the digest §8 vector (55 bytes)', () => {
    const v = V.to_radio[0];
    const frame = fromHex(v.message.packet.decoded.payload_hex);
    const out = new MeshtasticAdapter().encodeTx(frame, v.message.packet.id);
    expect(out.length).toBe(55);
    expect(toHex(out)).toBe(v.hex);
  });
  it.each(V.from_radio as any[])('adapter receives $name', (v: any) => {
    const evs = new MeshtasticAdapter().feed(fromHex(v.hex));
    expect(evs).toEqual([
      {
        kind: 'frame',
        payload: fromHex(v.expect.payload_hex),
        rssi: v.expect.rssi,
        snr: v.expect.snr,
        device_id: v.expect.device_id,
      },
    ]);
  });
});
