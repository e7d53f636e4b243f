/**
 * Relay figures (issue #18), the relay in its own process (`tsx relay/main.ts`) on 127.0.0.1:
 * - `relay.forward_mb_per_s.peers_N`: payload bytes (10^6 per MB) per second forwarded between
 *   N/2 sender→receiver pairs of engine RelayClients in one room, 64 KiB frames, for 3 s;
 * - `relay.rtt_p95_ms.peers_N`: p95 round trip of an 8-byte frame between two other peers of the
 *   same room while that bulk load runs (N = 10, 50, 100);
 * - `relay.rss_mb_under_flood`: the relay process's peak RSS while 20 connections signal 60 KiB
 *   at 45/s and 4 more forward 64 KiB frames at a peer that never reads (6 s), honest pairs linked.
 * Figures depend on the machine and its load; compare only runs on the same machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient, buildRelayHello } from '../../engine/net/relay-client.js';
import type { BenchFilter } from './run.js';

const SIZES = [10, 50, 100];
export const names = [
  ...SIZES.flatMap((n) => [`relay.forward_mb_per_s.peers_${n}`, `relay.rtt_p95_ms.peers_${n}`]),
  'relay.rss_mb_under_flood',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startRelay(): Promise<{ proc: ChildProcess; wsUrl: string }> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'relay/main.ts',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--static',
      '/nonexistent',
      '--connections-per-ip',
      '1000',
      '--sockets-per-ip',
      '1000',
      '--unjoined-per-ip',
      '1000',
      '--fresh-keys-per-minute',
      '1000',
      '--joins-per-hour',
      '1000',
      '--max-room-peers',
      '200',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /Open (http:\/\/[^\s]+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', () => reject(new Error('relay exited')));
  });
  proc.stdout!.resume();
  return { proc, wsUrl: url.replace('http://', 'ws://').replace('localhost', '127.0.0.1') + 'ws' };
}

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

async function joinAll(wsUrl: string, room: NodeID, n: number): Promise<RelayClient[]> {
  const cs = Array.from(
    { length: n },
    () => new RelayClient({ url: wsUrl, keyPair: generateKeyPair(), room, WebSocket, reconnect: false }),
  );
  for (const c of cs) c.start();
  await Promise.all(cs.map((c) => c.waitReady(60_000)));
  return cs;
}

async function room(wsUrl: string, n: number): Promise<{ mbps: number; p95: number }> {
  const roomId = generateKeyPair().nodeId;
  const cs = await joinAll(wsUrl, roomId, n);
  const [pa, pb] = [cs[0]!, cs[1]!];
  const bulk = cs.slice(2);
  const half = Math.floor(bulk.length / 2);
  let received = 0;
  for (let i = 0; i < half; i++)
    bulk[half + i]!.onForward(bulk[i]!.nodeId, (p) => void (received += p.length));
  pb.onForward(pa.nodeId, (p) => void pb.forward(pa.nodeId, p));
  const echoes = new Map<number, () => void>();
  pa.onForward(pb.nodeId, (p) => echoes.get(new DataView(p.buffer, p.byteOffset).getUint32(0))?.());
  const chunk = new Uint8Array(64 * 1024);
  const until = Date.now() + 3000;
  const senders = Array.from({ length: half }, async (_, i) => {
    while (Date.now() < until) await bulk[i]!.forward(bulk[half + i]!.nodeId, chunk);
  });
  const rtts: number[] = [];
  const t0 = performance.now();
  for (let k = 0; Date.now() < until; k++) {
    const p = new Uint8Array(8);
    new DataView(p.buffer).setUint32(0, k);
    const s = performance.now();
    const got = new Promise<void>((r) => echoes.set(k, r));
    await pa.forward(pb.nodeId, p);
    await Promise.race([got, sleep(5000)]);
    rtts.push(performance.now() - s);
    await sleep(20);
  }
  await Promise.all(senders);
  const secs = (performance.now() - t0) / 1000;
  for (const c of cs) c.close();
  rtts.sort((a, b) => a - b);
  return { mbps: received / 1e6 / secs, p95: rtts[Math.floor(rtts.length * 0.95)] ?? NaN };
}

async function flood(wsUrl: string, pid: number): Promise<number> {
  const roomId = generateKeyPair().nodeId;
  const honest = await joinAll(wsUrl, roomId, 2);
  // the sink: joins with a raw socket, then never reads
  const sinkKp = generateKeyPair();
  const sink = new WebSocket(wsUrl, 'hearthnet-relay.v1');
  await new Promise<void>((resolve) => {
    sink.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { t: string; nonce?: string };
      if (m.t === 'challenge')
        sink.send(JSON.stringify(buildRelayHello(sinkKp, roomId, m.nonce!, Date.now())));
      if (m.t === 'welcome') resolve();
    });
  });
  sink.pause();
  const attackers = await joinAll(wsUrl, roomId, 24);
  let peak = rssMb(pid);
  const blob = 'x'.repeat(60 * 1024);
  const frame = new Uint8Array(64 * 1024);
  const until = Date.now() + 6000;
  const binary = attackers.slice(20).map(async (a) => {
    while (Date.now() < until) await a.forward(sinkKp.nodeId, frame).catch(() => sleep(50));
  });
  while (Date.now() < until) {
    for (const a of attackers.slice(0, 20)) {
      try {
        a.signal(sinkKp.nodeId, blob);
      } catch {
        // cut off or not joined: the flood goes on with the others
      }
    }
    peak = Math.max(peak, rssMb(pid));
    await sleep(22);
  }
  await Promise.all(binary);
  peak = Math.max(peak, rssMb(pid));
  for (const c of [...honest, ...attackers]) c.close();
  sink.terminate();
  return peak;
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const { proc, wsUrl } = await startRelay();
  try {
    for (const n of SIZES) {
      if (!want(`relay.forward_mb_per_s.peers_${n}`) && !want(`relay.rtt_p95_ms.peers_${n}`)) continue;
      const r = await room(wsUrl, n);
      out[`relay.forward_mb_per_s.peers_${n}`] = Math.round(r.mbps * 10) / 10;
      out[`relay.rtt_p95_ms.peers_${n}`] = Math.round(r.p95 * 10) / 10;
      await sleep(500);
    }
    if (want('relay.rss_mb_under_flood'))
      out['relay.rss_mb_under_flood'] = Math.round(await flood(wsUrl, proc.pid!));
  } finally {
    proc.kill('SIGTERM');
  }
  return out;
}
