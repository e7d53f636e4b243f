/**
 * Relay figures (issue #18), each relay in its own process (`tsx relay/main.ts`) on 127.0.0.1:
 * - `relay.forward_mb_per_s.peers_N`: payload bytes (10^6 per MB) per second forwarded between
 *   N/2 sender→receiver pairs of engine RelayClients in one room, 64 KiB frames, for 3 s; the
 *   bulk clients run in a child process of their own (relay-load.ts);
 * - `relay.rtt_p95_ms.peers_N`: p95 round trip of an 8-byte frame between two other peers of the
 *   same room (in this process, an open-loop probe every 10 ms, all rounds' samples pooled) while
 *   that bulk load runs; `relay.rtt_idle_p95_ms.peers_N` the same before the load starts, and
 *   `relay.rtt_paced_p95_ms.peers_N` while the same senders offer a paced RELAY_BENCH_PACED_MBPS
 *   (default 8 MB/s in all): under saturating bulk the machine is the bottleneck, and a relay that
 *   forwards more starves the probe's process more, so only the paced figure compares the relays'
 *   latency at equal work (N = 10, 50, 100);
 * - `relay.baseline.*`: the same traffic, in the same run, against the relay as it was before the
 *   hardening (git commit BASELINE_COMMIT, extracted with `git archive` into .cache/); runs
 *   alternate hardened/baseline so that the machine's load hits both alike, and each figure is
 *   the mean of ROUNDS runs; `relay.forward_vs_baseline.peers_N` = hardened ÷ baseline
 *   throughput (issue #18: honest figures no more than 10 % worse, i.e. ≥ 0.9);
 * - `relay.cpu_ms_per_mb.peers_N` (and `relay.baseline.…`): the relay process's CPU time (user +
 *   system, /proc/<pid>/stat) per MB forwarded during the bulk run, and `relay.cpu_vs_baseline.peers_N`
 *   (hardened ÷ baseline). How far apart identical relays land (RELAY_BENCH_BASELINE_COMMIT=HEAD, 6
 *   rounds, 2-core host): CPU 0.98–1.40×, forward 0.88–0.96×, paced RTT p95 1.0–3.0×, bulk RTT p95
 *   up to 19× (one bad round decides a pooled p95) — read a ratio against that spread;
 * - `relay.rss_mb_under_flood`: the hardened relay's peak RSS while 20 connections signal 60 KiB
 *   at 45/s and 4 more forward 64 KiB frames at a peer that never reads (6 s), and
 *   `relay.rtt_p95_ms_under_flood`: an honest pair's round trip p95 in the same room meanwhile.
 * Figures depend on the machine and its load; compare only runs on the same machine.
 * Env: RELAY_BENCH_ROUNDS (default 2), RELAY_BENCH_SECONDS (default 3), RELAY_BENCH_PACED_MBPS (8),
 * RELAY_BENCH_BASELINE=0 skips the baseline, RELAY_BENCH_BASELINE_COMMIT another baseline (HEAD: A/A),
 * RELAY_BENCH_PEERS=10 (or 10,50) measures only those sizes,
 * RELAY_BENCH_NODE_ARGS passes node flags to both relay processes (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
 * Reading the CPU figure: one relay's `cpu_ms_per_mb` swings ±30 % between identical runs on this
 * 2-core host (its I/O settles either into large batched reads/writes or into a choppy pattern with
 * 2–3× the page faults per MB, /proc/<pid>/stat minflt), and either relay can land in either mode
 * in a round; compare `cpu_vs_baseline` over ≥ 4 alternating rounds, never one round.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient, buildRelayHello } from '../../engine/net/relay-client.js';
import type { BenchFilter } from './run.js';

const ALL_SIZES = [10, 50, 100];
/** RELAY_BENCH_PEERS=10,50 measures only those room sizes (iteration); default all three. */
const SIZES = process.env.RELAY_BENCH_PEERS
  ? ALL_SIZES.filter((n) => process.env.RELAY_BENCH_PEERS!.split(',').map(Number).includes(n))
  : ALL_SIZES;
/**
 * The relay before the issue #18 hardening (parent of 95556bc). RELAY_BENCH_BASELINE_COMMIT=HEAD
 * runs today's relay against itself: the spread of its ratios is the bench's own noise (A/A).
 */
const BASELINE_COMMIT = process.env.RELAY_BENCH_BASELINE_COMMIT ?? '95556bc^';
const ROUNDS = Math.max(1, Number(process.env.RELAY_BENCH_ROUNDS ?? 2));
const SECONDS = Math.max(1, Number(process.env.RELAY_BENCH_SECONDS ?? 3));
/** Offered load (MB/s in all) of the paced runs: below what either relay forwards on a busy 2-core host. */
const PACED_MBPS = Math.max(1, Number(process.env.RELAY_BENCH_PACED_MBPS ?? 8));
const PROBE_EVERY_MS = 10;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const names = [
  ...ALL_SIZES.flatMap((n) => [
    `relay.forward_mb_per_s.peers_${n}`,
    `relay.rtt_p95_ms.peers_${n}`,
    `relay.rtt_idle_p95_ms.peers_${n}`,
    `relay.rtt_paced_p95_ms.peers_${n}`,
    `relay.baseline.forward_mb_per_s.peers_${n}`,
    `relay.baseline.rtt_paced_p95_ms.peers_${n}`,
    `relay.baseline.rtt_p95_ms.peers_${n}`,
    `relay.baseline.rtt_idle_p95_ms.peers_${n}`,
    `relay.forward_vs_baseline.peers_${n}`,
    `relay.cpu_ms_per_mb.peers_${n}`,
    `relay.baseline.cpu_ms_per_mb.peers_${n}`,
    `relay.cpu_vs_baseline.peers_${n}`,
  ]),
  'relay.rss_mb_under_flood',
  'relay.rtt_p95_ms_under_flood',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pre-hardening relay's source tree (relay/ + engine/), extracted once into .cache/. */
function baselineTree(): string | null {
  try {
    const rev = execFileSync('git', ['rev-parse', BASELINE_COMMIT], { cwd: root }).toString().trim();
    const dir = join(root, '.cache', 'relay-baseline', rev);
    if (existsSync(join(dir, 'relay', 'main.ts'))) return dir;
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', rev, 'relay', 'engine', 'package.json'], {
      cwd: root,
      maxBuffer: 256 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    return dir;
  } catch (e) {
    process.stderr.write(`bench relay: no baseline (${(e as Error).message.split('\n')[0]})\n`);
    return null;
  }
}

async function startRelay(cwd: string): Promise<{ proc: ChildProcess; wsUrl: string }> {
  const limits = ['--connections-per-ip', '1000', '--joins-per-hour', '1000', '--max-room-peers', '200'];
  // flags the hardening added, where the tree's relay knows them (the pre-hardening one does not)
  if (readFileSync(join(cwd, 'relay/config.ts'), 'utf8').includes("'sockets-per-ip'"))
    limits.push('--sockets-per-ip', '1000', '--unjoined-per-ip', '1000', '--fresh-keys-per-minute', '1000');
  const proc = spawn(
    process.execPath,
    [
      // e.g. RELAY_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles both relays
      ...(process.env.RELAY_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      'tsx',
      'relay/main.ts',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--static',
      '/nonexistent',
      ...limits,
    ],
    { cwd, stdio: ['ignore', 'pipe', 'inherit'] },
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

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
const cpuMs = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

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

/** The bulk clients, in a child process (relay-load.ts). */
function loadProcess() {
  const child = fork(join(root, 'tools/bench/relay-load.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (t: string) =>
    new Promise<Record<string, number>>((resolve, reject) => {
      const on = (m: { t: string; message?: string }) => {
        if (m.t === 'error') reject(new Error(`load: ${m.message}`));
        else if (m.t === t) resolve(m as unknown as Record<string, number>);
        else return;
        child.off('message', on);
      };
      child.on('message', on);
      child.once('exit', () => reject(new Error('load process exited')));
    });
  return {
    join: (wsUrl: string, room: NodeID, n: number) => {
      child.send({ t: 'join', wsUrl, room, n });
      return next('ready');
    },
    run: (ms: number, rate = 0) => {
      child.send({ t: 'run', ms, rate });
      return next('done');
    },
    flood: (sink: NodeID, ms: number) => {
      child.send({ t: 'flood', sink, ms });
      return next('flooded');
    },
    stop: () => child.kill('SIGTERM'),
  };
}

const p95 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length * 0.95)] ?? NaN;
};

/**
 * Round trips of an 8-byte frame pa → pb → pa until `until` (pb echoes), open loop: a probe leaves
 * every PROBE_EVERY_MS whether or not the last one came back, so a 3 s run gives ~300 samples and a
 * stall delays every probe sent during it (a closed loop sends one probe per stall and, with ~30
 * samples, made p95 the single worst round trip). A probe not back within 5 s counts as 5 s.
 */
async function probe(pa: RelayClient, pb: RelayClient, until: number): Promise<number[]> {
  const sentAt = new Map<number, number>();
  const rtts: number[] = [];
  let lost = 0;
  const offA = pa.onForward(pb.nodeId, (p) => {
    const k = new DataView(p.buffer, p.byteOffset).getUint32(0);
    const s = sentAt.get(k);
    if (s === undefined) return;
    sentAt.delete(k);
    rtts.push(performance.now() - s);
  });
  const offB = pb.onForward(pa.nodeId, (p) => void pb.forward(pa.nodeId, p));
  for (let k = 0; Date.now() < until; k++) {
    const p = new Uint8Array(8);
    new DataView(p.buffer).setUint32(0, k);
    sentAt.set(k, performance.now());
    pa.forward(pb.nodeId, p).catch(() => lost++); // a lost probe counts as 5 s below
    await sleep(PROBE_EVERY_MS);
  }
  const waitFrom = performance.now();
  while (sentAt.size && performance.now() - waitFrom < 5000) await sleep(20);
  for (const s of sentAt.values()) rtts.push(Math.max(5000, performance.now() - s));
  if (lost) process.stderr.write(`bench relay: ${lost} probe(s) not sent (counted as 5 s)\n`);
  offA();
  offB();
  return rtts;
}

interface RoomFigures {
  mbps: number;
  p95: number;
  idleP95: number;
  pacedP95: number;
  cpuPerMb: number;
  /** the samples, pooled over rounds for the reported p95 */
  rtts: number[];
  idle: number[];
  paced: number[];
}

async function room(wsUrl: string, pid: number, n: number): Promise<RoomFigures> {
  const roomId = generateKeyPair().nodeId;
  const [pa, pb] = await joinAll(wsUrl, roomId, 2);
  const load = loadProcess();
  try {
    await load.join(wsUrl, roomId, n - 2);
    const idle = await probe(pa!, pb!, Date.now() + 1000);
    const cpu0 = cpuMs(pid);
    const bulk = load.run(SECONDS * 1000);
    const rtts = await probe(pa!, pb!, Date.now() + SECONDS * 1000);
    const { bytes, secs } = await bulk;
    const cpu = cpuMs(pid) - cpu0;
    // the same senders paced to PACED_MBPS in all: both relays carry the same bytes, so the round
    // trip compares their forwarding, not how much more bulk one of them let through
    const pacedRun = load.run(SECONDS * 1000, PACED_MBPS * 1e6);
    const paced = await probe(pa!, pb!, Date.now() + SECONDS * 1000);
    await pacedRun;
    return {
      mbps: bytes! / 1e6 / secs!,
      p95: p95(rtts),
      idleP95: p95(idle),
      pacedP95: p95(paced),
      cpuPerMb: bytes! > 0 ? cpu / (bytes! / 1e6) : NaN,
      rtts,
      idle,
      paced,
    };
  } finally {
    load.stop();
    pa!.close();
    pb!.close();
  }
}

async function flood(wsUrl: string, pid: number): Promise<{ peak: number; rttP95: number }> {
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
  // the 24 attackers run in the load process, so the honest probe's event loop is its own
  const attackers = loadProcess();
  try {
    await attackers.join(wsUrl, roomId, 24);
    let peak = rssMb(pid);
    const honestRtts = probe(honest[0]!, honest[1]!, Date.now() + 6000);
    let done = false;
    const flooding = attackers.flood(sinkKp.nodeId, 6000).finally(() => (done = true));
    while (!done) {
      peak = Math.max(peak, rssMb(pid));
      await sleep(50);
    }
    await flooding;
    peak = Math.max(peak, rssMb(pid));
    return { peak, rttP95: p95(await honestRtts) };
  } finally {
    attackers.stop();
    for (const c of honest) c.close();
    sink.terminate();
  }
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const base = process.env.RELAY_BENCH_BASELINE === '0' ? null : baselineTree();
  const hardened = await startRelay(root);
  const old = base ? await startRelay(base) : null;
  try {
    for (const n of SIZES) {
      if (!names.some((k) => k.endsWith(`.peers_${n}`) && want(k))) continue;
      const runs: { h: RoomFigures[]; b: RoomFigures[] } = { h: [], b: [] };
      // one unmeasured room per relay at each size first: in two full runs (load 10-19) the first
      // measured room at a size — always the hardened relay's — was the outlier of its size
      for (const relay of [hardened, old]) if (relay) await room(relay.wsUrl, relay.proc.pid!, n);
      for (let i = 0; i < ROUNDS; i++) {
        // alternate which relay goes first, so a load change on the machine hits both alike
        const order = i % 2 === 0 ? (['h', 'b'] as const) : (['b', 'h'] as const);
        for (const which of order) {
          const relay = which === 'h' ? hardened : old;
          if (!relay) continue;
          const f = await room(relay.wsUrl, relay.proc.pid!, n);
          runs[which].push(f);
          process.stderr.write(
            `bench relay: peers_${n} ${which === 'h' ? 'hardened' : 'baseline'}: ${f.mbps.toFixed(1)} MB/s, ` +
              `rtt p95 ${f.p95.toFixed(1)} ms (idle ${f.idleP95.toFixed(1)}, paced ${PACED_MBPS} MB/s ` +
              `${f.pacedP95.toFixed(1)}; ${f.rtts.length}/${f.idle.length}/${f.paced.length} samples), ` +
              `${f.cpuPerMb.toFixed(1)} cpu ms/MB\n`,
          );
          await sleep(300);
        }
      }
      // relay CPU per MB over all rounds, weighted by what each moved (rounds that moved nothing drop out)
      const cpuPerMb = (rs: RoomFigures[]) => {
        const ok = rs.filter((r) => Number.isFinite(r.cpuPerMb));
        return mean(ok.map((r) => r.cpuPerMb * r.mbps)) / mean(ok.map((r) => r.mbps));
      };
      const put = (prefix: string, rs: RoomFigures[]) => {
        if (!rs.length) return;
        out[`${prefix}forward_mb_per_s.peers_${n}`] = r1(mean(rs.map((r) => r.mbps)));
        // p95 of all rounds' samples together (hundreds), not a mean of per-round p95s
        out[`${prefix}rtt_p95_ms.peers_${n}`] = r1(p95(rs.flatMap((r) => r.rtts)));
        out[`${prefix}rtt_idle_p95_ms.peers_${n}`] = r1(p95(rs.flatMap((r) => r.idle)));
        out[`${prefix}rtt_paced_p95_ms.peers_${n}`] = r1(p95(rs.flatMap((r) => r.paced)));
        const c = cpuPerMb(rs);
        if (Number.isFinite(c)) out[`${prefix}cpu_ms_per_mb.peers_${n}`] = r1(c);
      };

      put('relay.', runs.h);
      put('relay.baseline.', runs.b);
      const fwdRatio = runs.b.length
        ? mean(runs.h.map((r) => r.mbps)) / mean(runs.b.map((r) => r.mbps))
        : NaN;
      if (Number.isFinite(fwdRatio))
        out[`relay.forward_vs_baseline.peers_${n}`] = Math.round(fwdRatio * 100) / 100;
      else if (runs.b.length)
        process.stderr.write(`bench relay: peers_${n}: a relay moved nothing, no ratio\n`);
      const cpuRatio = runs.b.length ? cpuPerMb(runs.h) / cpuPerMb(runs.b) : NaN;
      if (Number.isFinite(cpuRatio))
        out[`relay.cpu_vs_baseline.peers_${n}`] = Math.round(cpuRatio * 100) / 100;
    }
    if (want('relay.rss_mb_under_flood') || want('relay.rtt_p95_ms_under_flood')) {
      const f = await flood(hardened.wsUrl, hardened.proc.pid!);
      out['relay.rss_mb_under_flood'] = Math.round(f.peak);
      if (Number.isFinite(f.rttP95)) out['relay.rtt_p95_ms_under_flood'] = r1(f.rttP95);
    }
  } finally {
    hardened.proc.kill('SIGTERM');
    old?.proc.kill('SIGTERM');
  }
  return out;
}
