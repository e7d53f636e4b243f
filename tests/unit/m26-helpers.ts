/**
 * M26 test rig: real nodes linked in memory (real X08 sessions, real tokens, real event log), the tiny demo
 * decoder split per layer with the real splitter, ORT-web WASM in process. Fault injection wraps a host's real
 * range backend (NaN output, stall) — the orchestrator and the host logic under test are never replaced.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode, memoryPortPair, type HearthNode } from '../../engine/index.js';
import type { ConfigPatch } from '../../engine/core/config.js';
import type { BytePort } from '../../engine/net/port.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { parseManifest, type ModelManifest } from '../../engine/llm/manifest.js';
import { configureOrt } from '../../engine/llm/ort.js';
import {
  createDistributedLlm,
  distributedLlmApi,
  type DistributedLlmApi,
} from '../../engine/distributed_inference/index.js';
import type { ServeSpec } from '../../engine/distributed_inference/shard.js';
import type { ShardDescriptor } from '../../engine/distributed_inference/types.js';
import { installedFromManifest, orchestratorFromManifest } from '../../engine/distributed_inference/onnx.js';
import type {
  InstalledShardModel,
  OrchestratorModel,
  RangeBackend,
} from '../../engine/distributed_inference/types.js';
import { dirSource } from '../../tools/model/node-source.js';
import { splitModelFile } from '../../tools/model/split-model.js';
import { writeTinyModel, type WrittenTinyModel } from '../../tools/model/tiny-model.js';
import type { TinyConfig } from '../../tools/model/tiny-weights.js';

configureOrt({ numThreads: 1 });

export interface Fixture {
  dir: string;
  tiny: WrittenTinyModel;
  splitDir: string;
  manifest: ModelManifest;
  whole: OnnxLocalLlm;
  orch: OrchestratorModel & { close(): Promise<void> };
}

/** The tiny decoder (or a larger generated one) split per layer unless `ranges` says otherwise. */
export async function makeFixture(
  o: { tiny?: Partial<TinyConfig>; ranges?: [number, number][]; validate?: boolean } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'hn-m26-'));
  const tiny = writeTinyModel(join(dir, 'model'), { model_id: 'hn-m26-tiny', ...o.tiny });
  const splitDir = join(dir, 'split');
  const L = tiny.config.num_hidden_layers;
  await splitModelFile(tiny.modelPath, {
    ranges: o.ranges ?? Array.from({ length: L }, (_, i) => [i, i] as [number, number]),
    outDir: splitDir,
    ...(o.validate === false ? { validate: false } : {}),
  });
  const manifest = parseManifest(JSON.parse(readFileSync(join(splitDir, 'manifest.json'), 'utf8')));
  const whole = await OnnxLocalLlm.loadWhole(dirSource(tiny.dir), { executionProviders: ['wasm'] });
  const orch = await orchestratorFromManifest(dirSource(splitDir), manifest, {
    executionProviders: ['wasm'],
  });
  return { dir, tiny, splitDir, manifest, whole, orch };
}

/** Greedy reference tokens of the monolithic model (B9 oracle); a prompt string or a conversation. */
export async function reference(
  f: Fixture,
  prompt: string | { role: string; content: string }[],
  n: number,
): Promise<number[]> {
  const out: number[] = [];
  for await (const t of f.whole.generate(prompt, { max_tokens: n, temperature: 0 })) out.push(t.token_id);
  return out;
}

/** `delay`: the host's forward takes `ms` longer (holding its FIFO, no CPU); each probe counts such forwards in flight. */
export type Fault =
  | { kind: 'nan' | 'stall'; after: number }
  | { kind: 'delay'; after: number; ms: number; probes: { now: number; peak: number }[] }
  | null;

/** A host's installed split, with an optional fault injected into its real backend's output. */
export function installed(f: Fixture, fault: () => Fault = () => null): InstalledShardModel {
  const real = installedFromManifest(dirSource(f.splitDir), f.manifest, { executionProviders: ['wasm'] });
  return {
    ...real,
    async load(lo, hi): Promise<RangeBackend> {
      const b = await real.load(lo, hi);
      return {
        ...b,
        layer_range: b.layer_range,
        compute_dtype: b.compute_dtype,
        shard_sha256: b.shard_sha256,
        weight_bytes: b.weight_bytes,
        release: () => b.release(),
        openSession() {
          const s = b.openSession();
          let n = 0;
          return {
            get pastLength() {
              return s.pastLength;
            },
            async forward(h) {
              const out = await s.forward(h);
              const fl = fault();
              if (fl && ++n > fl.after) {
                if (fl.kind === 'stall') await new Promise((r) => setTimeout(r, 60_000));
                else if (fl.kind === 'delay') {
                  for (const p of fl.probes) p.peak = Math.max(p.peak, ++p.now);
                  await new Promise((r) => setTimeout(r, fl.ms));
                  for (const p of fl.probes) p.now--;
                } else (out.data as Float32Array).fill(NaN);
              }
              return out;
            },
            close: () => s.close(),
          };
        },
      };
    },
  };
}

export interface M26Node {
  node: HearthNode;
  mod: { serve(spec: ServeSpec): Promise<ShardDescriptor>; parts(): DistributedLlmApi };
}

export const ON: ConfigPatch = {
  tensor_transport: { enabled: true },
  distributed_llm: { enabled: true, failover_timeout_seconds: 2 },
};

export async function m26Node(
  f: Fixture,
  opts: {
    founder?: HearthNode;
    fault?: () => Fault;
    local?: boolean;
    config?: ConfigPatch;
    serve?: boolean;
  } = {},
): Promise<M26Node> {
  const inst = installed(f, opts.fault);
  const def = createDistributedLlm({
    // the B6 plan-time health poll is 1 s in the product; a loaded test machine gets more time to answer
    healthTimeoutMs: 15_000,
    models: {
      installed: () => (opts.serve === false ? [] : [inst]),
      orchestrator: async (m, w) =>
        m === f.orch.model_id && w === f.orch.weights_sha256 ? f.orch : undefined,
    },
  });
  const base = { ...ON, ...opts.config } as Record<string, Record<string, unknown>>;
  const cfg = {
    ...base,
    distributed_llm: { ...(ON.distributed_llm as object), ...(opts.config?.distributed_llm as object) },
    ...(opts.founder ? { community: { community_id: opts.founder.id } } : {}),
  } as ConfigPatch;
  const n = await createNode({ config: cfg, modules: [def] });
  // the local fallback is the unsplit model served on this node's bus as llm.chat (B6 step 7)
  if (opts.local) n.serveModel(f.whole);
  const parts = () => {
    const a = distributedLlmApi(n.id);
    if (!a) throw new Error('distributed_llm is not running');
    return a;
  };
  return { node: n, mod: { serve: (spec) => parts().serve(spec), parts } };
}

/** Founder invites `x` at `level`; `x` joins; both logs agree. */
export async function admit(founder: HearthNode, x: HearthNode, level: 'member' | 'trusted'): Promise<void> {
  const inv = await founder.events.append('community.member.invited', {
    invitee_node_id: x.id,
    initial_level: level,
  });
  await x.events.receive(await founder.events.list());
  const joined = await x.events.append('community.member.joined', { invite_event_id: inv.event_id });
  await founder.events.receive([joined]);
}

/** Link two nodes in memory; `count` (optional) receives the size of every message A sends to B. */
export async function link(A: HearthNode, B: HearthNode, count?: (bytes: number) => void): Promise<void> {
  const [raw, pb] = memoryPortPair();
  const pa: BytePort = count
    ? {
        send: (m) => {
          count(m.length);
          return raw.send(m);
        },
        onMessage: (cb) =>
          raw.onMessage((m) => {
            count(m.length);
            cb(m);
          }),
        onClose: (cb) => raw.onClose(cb),
        close: (r) => raw.close(r),
        get closed() {
          return raw.closed;
        },
        get maxMessageBytes() {
          return raw.maxMessageBytes;
        },
      }
    : raw;
  await Promise.all([
    A.connect(pa, { transport: 'memory', expectedPeer: B.id }),
    B.connect(pb, { transport: 'memory', expectedPeer: A.id }),
  ]);
}

/** Pull every host's events into the orchestrator (ads), and wait until its store sees `n` ads. */
export async function syncAds(o: M26Node, hosts: M26Node[], n: number): Promise<void> {
  for (const h of hosts) await o.node.events.sync(h.node.id);
  const t0 = Date.now();
  while (o.mod.parts().store.list().length < n) {
    if (Date.now() - t0 > 10_000) throw new Error('ads did not arrive');
    await new Promise((r) => setTimeout(r, 20));
  }
}
