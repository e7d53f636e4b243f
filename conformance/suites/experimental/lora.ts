/**
 * experimental/lora (M29). Over the capabilities: the flag rule, hardware-absent behaviour, input
 * validation, TOFU on an unheard hash, and the duty-cycle status checked against the suite's own
 * time-on-air formula for the radio the SUT reports. The language-neutral vectors in vectors/lora/
 * (frames, airtime, duty-cycle cases; hand-derived from the digest) are checked against the suite's
 * own reference (conformance/lib/lora.ts), so another implementation can use them.
 * Self-contained: one file, one `section`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beaconBytes, loraToaMs, nextAllowed } from '../../lib/lora.js';
import {
  all,
  expectError,
  expectOk,
  fail,
  pass,
  type CaseDef,
  type SectionDef,
  flagOffCase,
} from '../../runner/case.js';

const CAPS = [
  'experimental.lora.status',
  'experimental.lora.beacon.send',
  'experimental.lora.panic.send',
  'experimental.lora.peer.list',
  'experimental.lora.peer.verify',
  'experimental.lora.recent_beacons',
  'experimental.lora.duty_cycle',
];
const VEC = resolve(dirname(fileURLToPath(import.meta.url)), '../../vectors/lora');
const vec = (f: string) => JSON.parse(readFileSync(resolve(VEC, f), 'utf8'));
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

const cases: CaseDef[] = [
  flagOffCase({
    id: 'M29-01',
    spec_ref: 'lora digest status; seed §2.4',
    title: 'module off → all seven experimental.lora.* capabilities answer experimental_disabled',
    module: 'lora',
    capabilities: CAPS,
  }),
  {
    id: 'M29-02',
    spec_ref: 'lora digest §2 (status errors), §3 LoraStatus, §11.13',
    title: 'without a stick, status answers state "unavailable" with error_code lora_hardware_unavailable',
    async run(ctx) {
      const r = expectOk(await ctx.call('experimental.lora.status', {}), {});
      if ('bad' in r) return r.bad;
      const s = r.out;
      if (s.state === 'ready') return pass(); // a SUT with a real or simulated stick attached
      return all(
        () => (s.state === 'unavailable' ? null : fail('unavailable', s.state, 'state without hardware')),
        () =>
          s.error_code === 'lora_hardware_unavailable'
            ? null
            : fail('lora_hardware_unavailable', s.error_code, 'error_code'),
        () =>
          typeof s.web_serial_supported === 'boolean'
            ? null
            : fail('boolean', s.web_serial_supported, 'web_serial_supported'),
        () =>
          ['queue', 'rate_limited', 'malformed', 'blocked', 'self'].every((k) =>
            Number.isInteger(s.rx_dropped?.[k]),
          )
            ? null
            : fail(
                'rx_dropped{queue,rate_limited,malformed,blocked,self}',
                s.rx_dropped,
                'rx_dropped counters',
              ),
        () =>
          Number.isInteger(s.radio?.sf) && s.radio.bw_khz > 0
            ? null
            : fail('radio{sf,bw_khz,…}', s.radio, 'radio'),
      );
    },
  },
  {
    id: 'M29-03',
    spec_ref: 'lora digest §3 beacon.send, panic.send',
    title:
      'beacon.send refuses PANIC and reserved flag bits (bad_request); sends without a stick fail lora_hardware_unavailable',
    async run(ctx) {
      const st = expectOk(await ctx.call('experimental.lora.status', {}), {});
      if ('bad' in st) return st.bad;
      return all(
        () => null,
        async () =>
          expectError(await ctx.call('experimental.lora.beacon.send', { flags: 1 }), 'bad_request', {
            flags: 1,
          }),
        async () =>
          expectError(await ctx.call('experimental.lora.beacon.send', { flags: 0x40 }), 'bad_request', {
            flags: 0x40,
          }),
        async () =>
          st.out.state === 'ready'
            ? null
            : expectError(
                await ctx.call('experimental.lora.beacon.send', { flags: 2 }),
                'lora_hardware_unavailable',
                { flags: 2 },
              ),
        async () =>
          st.out.state === 'ready'
            ? null
            : expectError(
                await ctx.call('experimental.lora.panic.send', {}),
                'lora_hardware_unavailable',
                {},
              ),
      );
    },
  },
  {
    id: 'M29-04',
    spec_ref: 'lora digest §7 (never heard → lora_peer_unknown), §3 limits',
    title: 'verify of a never-heard sender hash → lora_peer_unknown; list limits are enforced',
    async run(ctx) {
      const hash = hex(ctx.bytes('hash', 4));
      return all(
        async () =>
          expectError(
            await ctx.call('experimental.lora.peer.verify', {
              sender_hash: hash,
              node_id: ctx.identity('peer').nodeId,
            }),
            'lora_peer_unknown',
            { sender_hash: hash },
          ),
        async () =>
          expectError(await ctx.call('experimental.lora.peer.list', { limit: 1001 }), 'bad_request', {
            limit: 1001,
          }),
        async () =>
          expectError(await ctx.call('experimental.lora.recent_beacons', { limit: 0 }), 'bad_request', {
            limit: 0,
          }),
        async () =>
          expectError(
            await ctx.call('experimental.lora.recent_beacons', { sender_hash: 'XYZ' }),
            'bad_request',
            { sender_hash: 'XYZ' },
          ),
        async () => {
          const r = expectOk(await ctx.call('experimental.lora.recent_beacons', { sender_hash: hash }), {});
          if ('bad' in r) return r.bad;
          return Array.isArray(r.out.beacons) && r.out.beacons.length === 0
            ? null
            : fail('[]', r.out, 'no beacons from an unheard hash');
        },
      );
    },
  },
  {
    id: 'M29-05',
    spec_ref: 'lora digest §6 (budget, window, time on air)',
    title:
      'duty_cycle: 3600 s window, 1 % budget in EU868/AS923, frame airtime = Semtech formula for the reported radio',
    async run(ctx) {
      const st = expectOk(await ctx.call('experimental.lora.status', {}), {});
      if ('bad' in st) return st.bad;
      const dc = expectOk(await ctx.call('experimental.lora.duty_cycle', {}), {});
      if ('bad' in dc) return dc.bad;
      const s = st.out;
      const d = dc.out;
      const pl = s.adapter === 'meshtastic' ? 55 : 32; // Meshtastic adds header + Data wrapper (digest §6)
      const want = loraToaMs(pl, s.radio.sf, s.radio.bw_khz, s.radio.cr, s.radio.preamble);
      return all(
        () => (d.window_seconds === 3600 ? null : fail('3600', d.window_seconds, 'window_seconds')),
        () =>
          s.region === 'US915' || d.airtime_budget_ms === 36000
            ? null
            : fail('36000', d.airtime_budget_ms, 'budget for EU868/AS923'),
        () =>
          d.airtime_used_ms >= 0 && d.airtime_used_ms <= 36000
            ? null
            : fail('0..36000', d.airtime_used_ms, 'airtime_used_ms'),
        () =>
          Math.abs(d.frame_airtime_ms - want) <= 0.001
            ? null
            : fail(
                String(want),
                d.frame_airtime_ms,
                `frame airtime for PL ${pl} SF${s.radio.sf} BW${s.radio.bw_khz}`,
              ),
      );
    },
  },
  {
    id: 'M29-06',
    spec_ref: 'lora digest §4 (frame layout, test vector)',
    title: 'vectors/lora/frames.json agrees with the suite reference (language-neutral vectors)',
    async run() {
      const v = vec('frames.json');
      for (const c of v.valid) {
        const got = hex(beaconBytes(c.fields));
        if (got !== c.hex) return fail(c.hex, got, `frame vector ${c.name}`);
      }
      return pass();
    },
  },
  {
    id: 'M29-07',
    spec_ref: 'lora digest §6 (time-on-air table)',
    title: 'vectors/lora/airtime.json agrees with the Semtech formula to 0.001 ms',
    async run() {
      const v = vec('airtime.json');
      for (const c of v.cases) {
        const got = loraToaMs(c.payload_bytes, c.sf, c.bw_khz, c.cr, c.preamble);
        if (Math.abs(got - c.toa_ms) > v.tolerance_ms / 2)
          return fail(String(c.toa_ms), got, `SF${c.sf} PL${c.payload_bytes}`);
      }
      return pass();
    },
  },
  {
    id: 'M29-08',
    spec_ref: 'lora digest §6 (accounting)',
    title: 'vectors/lora/duty_cycle.json agrees with the rolling-window reference',
    async run() {
      const v = vec('duty_cycle.json');
      for (const c of v.cases) {
        const got = nextAllowed(c.entries, c.now, c.frame_ms, c.budget_ms);
        if (got !== c.next_tx_allowed_at) return fail(String(c.next_tx_allowed_at), got, c.name);
      }
      return pass();
    },
  },
];

export const section: SectionDef = {
  name: 'experimental/lora',
  required: false,
  module: 'lora',
  probe: { capability: 'experimental.lora.status', input: {} },
  cases,
};
