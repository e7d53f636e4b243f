/**
 * Profiling aid for M26 (not a bench figure): orchestrator and two hosts in ONE thread, linked by ports that deliver
 * on the next macrotask (setImmediate), so a decoded token's wall time is its CPU time (no thread wake-ups). Prints
 * ms per token, pipeline vs the whole model, min and median of R runs. Run under `node --cpu-prof` to attribute it.
 */
import { rmSync } from 'node:fs';
import type { StreamFrame } from '../../engine/bus/types.js';
import { CAP } from '../../engine/distributed_inference/types.js';
import type { BytePort } from '../../engine/net/port.js';
import { admit, m26Node, makeFixture, syncAds } from '../../tests/unit/m26-helpers.js';
import { BIG } from './m26-models.js';

function immediatePair(): [BytePort, BytePort] {
  type Side = {
    recv?: (m: Uint8Array) => void;
    q: Uint8Array[];
    closed: boolean;
    cbs: ((r: string) => void)[];
  };
  const a: Side = { q: [], closed: false, cbs: [] };
  const b: Side = { q: [], closed: false, cbs: [] };
  const port = (me: Side, other: Side): BytePort => ({
    async send(m) {
      if (me.closed) throw new Error('closed');
      const c = m.slice();
      setImmediate(() => (other.recv ? other.recv(c) : other.q.push(c)));
    },
    onMessage(cb) {
      me.recv = cb;
      for (const m of me.q.splice(0)) cb(m);
    },
    onClose(cb) {
      me.cbs.push(cb);
    },
    close(r = 'closed') {
      for (const s of [me, other]) {
        if (s.closed) continue;
        s.closed = true;
        for (const cb of s.cbs) cb(r);
      }
    },
    get closed() {
      return me.closed;
    },
    maxMessageBytes: 256 * 1024,
  });
  return [port(a, b), port(b, a)];
}

const PROMPT = 'Describe a community mesh network in one paragraph.';
const GREEDY = { temperature: 0, top_p: 1, seed: 0, prefill_chunk_tokens: 64 } as const;
const N = Number(process.env.N ?? 32);
const R = Number(process.env.R ?? 7);
const f = await makeFixture({
  tiny: BIG,
  ranges: [
    [0, 3],
    [4, 7],
  ],
  validate: false,
});
const orch = await m26Node(f, {
  serve: false,
  config: { distributed_llm: { failover_timeout_seconds: 10 } },
});
const hosts = [];
for (const r of [
  [0, 3],
  [4, 7],
] as [number, number][]) {
  const h = await m26Node(f, { founder: orch.node });
  await admit(orch.node, h.node, 'trusted');
  const [pa, pb] = immediatePair();
  await Promise.all([
    orch.node.connect(pa, { transport: 'memory', expectedPeer: h.node.id }),
    h.node.connect(pb, { transport: 'memory', expectedPeer: orch.node.id }),
  ]);
  await h.mod.serve({ model_id: f.manifest.model_id, layer_range: r });
  hosts.push(h);
}
await syncAds(orch, hosts, 2);
const input = {
  model_id: f.manifest.model_id,
  weights_sha256: f.manifest.weights_sha256,
  prompt: PROMPT,
  max_tokens: N,
  wire_dtype: 'fp16',
  ...GREEDY,
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const pc: number[] = [];
const lc: number[] = [];
async function pipe() {
  let first = 0;
  let c0 = 0;
  let k = 0;
  for await (const fr of orch.node.stream(CAP.run, input) as AsyncIterable<StreamFrame>) {
    if (fr.event !== 'token') continue;
    if (k === 0) {
      first = performance.now();
      c0 = cpuMs();
    }
    k++;
  }
  pc.push((cpuMs() - c0) / (k - 1));
  return (performance.now() - first) / (k - 1);
}
async function local() {
  let first = 0;
  let c0 = 0;
  let k = 0;
  for await (const _ of f.whole.generate(PROMPT, { max_tokens: N, ...GREEDY })) {
    void _;
    if (k === 0) {
      first = performance.now();
      c0 = cpuMs();
    }
    k++;
  }
  lc.push((cpuMs() - c0) / (k - 1));
  return (performance.now() - first) / (k - 1);
}
await pipe();
await local();
pc.length = 0;
lc.length = 0;
const p: number[] = [];
const l: number[] = [];
const w0 = process.hrtime.bigint() / 1000n;
for (let r = 0; r < R; r++) p.push(await pipe());
const w1 = process.hrtime.bigint() / 1000n;
for (let r = 0; r < R; r++) l.push(await local());
const w2 = process.hrtime.bigint() / 1000n;
console.log(`window pipe ${w0} ${w1} local ${w1} ${w2}`);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `min ${Math.min(...xs).toFixed(2)} median ${med(xs).toFixed(2)}`;
console.log(
  `one thread, ms/token: pipeline ${fmt(p)} | local ${fmt(l)} | overhead (medians) ${(med(p) - med(l)).toFixed(2)}`,
);
console.log(
  `one thread, CPU ms/token: pipeline ${fmt(pc)} | local ${fmt(lc)} | overhead (medians) ${(med(pc) - med(lc)).toFixed(2)}`,
);
await orch.node.close();
for (const h of hosts) await h.node.close();
await f.whole.close();
await f.orch.close();
rmSync(f.dir, { recursive: true, force: true });
