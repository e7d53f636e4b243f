/**
 * Bulk load for the relay bench (relay.bench.ts), in its own process so that the round-trip
 * probe's event loop is not the one pushing the bulk frames (a probe sharing its loop with 50
 * senders measured the bench, not the relay). Driven over IPC:
 *   → {wsUrl, room, n}      join n RelayClients to `room`; ← {t:'ready'}
 *   → {t:'run', ms, rate?}  n/2 senders forward 64 KiB frames to their n/2 receivers for `ms`, as
 *                           fast as they can or, with `rate`, at `rate` bytes/s in all (paced);
 *                           ← {t:'done', bytes, secs} (payload bytes received, from the start to
 *                           the last frame received, in-flight frames included)
 *   → {t:'flood', sink, ms}  the first n-4 clients signal 60 KiB at 45/s each to `sink`, the last
 *                           4 forward 64 KiB frames to it, for `ms`; ← {t:'flooded'}
 */
import WebSocket from 'ws';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient } from '../../engine/net/relay-client.js';

interface Setup {
  wsUrl: string;
  room: NodeID;
  n: number;
}

const send = (m: Record<string, unknown>) => process.send!(m);
let clients: RelayClient[] = [];

async function join(s: Setup) {
  clients = Array.from(
    { length: s.n },
    () =>
      new RelayClient({
        url: s.wsUrl,
        keyPair: generateKeyPair(),
        room: s.room,
        WebSocket,
        reconnect: false,
      }),
  );
  for (const c of clients) c.start();
  await Promise.all(clients.map((c) => c.waitReady(120_000)));
  send({ t: 'ready' });
}

async function run(ms: number, bytesPerSecond = 0) {
  const half = Math.floor(clients.length / 2);
  let received = 0;
  let lastAt = performance.now();
  for (let i = 0; i < half; i++)
    clients[half + i]!.onForward(clients[i]!.nodeId, (p) => {
      received += p.length;
      lastAt = performance.now();
    });
  const chunk = new Uint8Array(64 * 1024);
  const t0 = performance.now();
  const until = Date.now() + ms;
  // paced (bytesPerSecond > 0): each sender keeps to its share of the total offered rate
  const each = bytesPerSecond / Math.max(1, half);
  await Promise.all(
    Array.from({ length: half }, async (_, i) => {
      let sent = 0;
      while (Date.now() < until) {
        await clients[i]!.forward(clients[half + i]!.nodeId, chunk);
        sent += chunk.length;
        if (each > 0) {
          const ahead = t0 + (sent / each) * 1000 - performance.now();
          if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
        }
      }
    }),
  );
  // frames still in flight when the senders stop count too (a starved machine delays, not loses,
  // them): wait at least 1 s, then until nothing has arrived for 300 ms (at most 5 s); time up to
  // the last one
  const stopAt = performance.now();
  for (let now = stopAt; now - stopAt < 5000 && (now - stopAt < 1000 || now - lastAt < 300);) {
    await new Promise((r) => setTimeout(r, 50));
    now = performance.now();
  }
  const secs = (Math.max(lastAt, stopAt) - t0) / 1000;
  send({ t: 'done', bytes: received, secs });
}

async function flood(sink: NodeID, ms: number) {
  const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
  const blob = 'x'.repeat(60 * 1024);
  const frame = new Uint8Array(64 * 1024);
  const until = Date.now() + ms;
  const signallers = clients.slice(0, Math.max(0, clients.length - 4));
  const binary = clients.slice(signallers.length).map(async (a) => {
    while (Date.now() < until) await a.forward(sink, frame).catch(() => sleep(50));
  });
  while (Date.now() < until) {
    for (const a of signallers) {
      try {
        a.signal(sink, blob);
      } catch {
        // cut off or not joined: the flood goes on with the others
      }
    }
    await sleep(22);
  }
  // frames held for the paused sink resolve only when it is cut off: do not wait for them
  await Promise.race([Promise.all(binary), sleep(500)]);
  send({ t: 'flooded' });
}

process.on('message', (m: { t: string; ms?: number; rate?: number; sink?: NodeID } & Partial<Setup>) => {
  const go =
    m.t === 'join'
      ? join(m as unknown as Setup)
      : m.t === 'run'
        ? run(m.ms!, m.rate ?? 0)
        : m.t === 'flood'
          ? flood(m.sink!, m.ms!)
          : Promise.resolve(process.exit(0));
  go.catch((e: Error) => {
    send({ t: 'error', message: e.message });
    process.exit(1);
  });
});
process.on('disconnect', () => {
  for (const c of clients) c.close();
  process.exit(0);
});
