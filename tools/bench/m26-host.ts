/**
 * M26 bench: a shard host in its own worker thread, as a tab on another device would be — its own node, its own
 * ORT-web WASM runtime (one thread), its own event log — linked to the orchestrator's node by a MessagePort that
 * carries the real link frames (X08 channels included). `startHost()` (main thread) spawns it and drives it
 * through the same steps the in-memory rig uses: admission by the founder, link, serve a range.
 */
import { MessageChannel, Worker, isMainThread, parentPort, type MessagePort } from 'node:worker_threads';
import type { HearthNode } from '../../engine/index.js';
import type { BytePort } from '../../engine/net/port.js';
import type { ModelManifest } from '../../engine/llm/manifest.js';

/** A BytePort over a worker MessagePort (messages transferred, never shared). `count` sees every link message. */
export function messageBytePort(p: MessagePort, count?: (msg: Uint8Array) => void): BytePort {
  let closed = false;
  let recv: ((m: Uint8Array) => void) | undefined;
  const early: Uint8Array[] = [];
  const closeCbs: ((r: string) => void)[] = [];
  const finish = (reason: string) => {
    if (closed) return;
    closed = true;
    p.close();
    for (const cb of closeCbs.splice(0)) cb(reason);
  };
  p.on('message', (m: Uint8Array | { close: string }) => {
    if (m instanceof Uint8Array) {
      count?.(m);
      if (recv) recv(m);
      else early.push(m);
    } else finish(m.close);
  });
  // the other thread died (a killed host): its end of the channel is gone
  p.on('close', () => finish('closed'));
  return {
    async send(msg) {
      if (closed) throw new Error('port closed');
      count?.(msg);
      const c = msg.slice();
      p.postMessage(c, [c.buffer]);
    },
    onMessage(cb) {
      recv = cb;
      for (const m of early.splice(0)) cb(m);
    },
    onClose(cb) {
      if (closed) cb('closed');
      else closeCbs.push(cb);
    },
    close(reason = 'closed') {
      if (closed) return;
      p.postMessage({ close: reason });
      finish(reason);
    },
    get closed() {
      return closed;
    },
    maxMessageBytes: 256 * 1024,
  };
}

export interface WorkerHost {
  id: string;
  /** the host's death: its thread is terminated at once (no BYE, no goodbye on the link) */
  kill(): Promise<void>;
  close(): Promise<void>;
}

type Reply = { type: string; [k: string]: unknown };

/** Spawn a host thread, admit it as trusted, link it to `orch` and have it serve `range`. */
export async function startHost(
  orch: HearthNode,
  splitDir: string,
  manifest: ModelManifest,
  range: [number, number],
  count?: (msg: Uint8Array) => void,
): Promise<WorkerHost> {
  // a JS entry that imports this file once tsx's loader is registered (a .ts entry is resolved before it is)
  const api = import.meta.resolve('tsx/esm/api');
  const w = new Worker(
    `import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`,
    { eval: true },
  );
  const replies: Reply[] = [];
  const waiting: ((r: Reply) => void)[] = [];
  const deliver = (r: Reply) => (waiting.length ? waiting.shift()!(r) : replies.push(r));
  w.on('message', deliver);
  w.on('error', (e) => deliver({ type: 'error', message: e.message }));
  w.on('exit', (code) => deliver({ type: 'exit', code }));
  const next = async (type: string): Promise<Reply> => {
    const r = replies.shift() ?? (await new Promise<Reply>((res) => waiting.push(res)));
    if (r.type !== type) throw new Error(`host thread: expected ${type}, got ${JSON.stringify(r)}`);
    return r;
  };
  w.postMessage({ type: 'init', splitDir, manifest, founder: orch.id });
  const { id } = (await next('ready')) as unknown as { id: string };
  const inv = await orch.events.append('community.member.invited', {
    invitee_node_id: id,
    initial_level: 'trusted',
  });
  w.postMessage({ type: 'admit', events: await orch.events.list(), invite: inv.event_id });
  const { joined } = await next('joined');
  await orch.events.receive([joined as never]);
  const ch = new MessageChannel();
  w.postMessage({ type: 'link', port: ch.port2, peer: orch.id }, [ch.port2]);
  await Promise.all([
    orch.connect(messageBytePort(ch.port1, count), { transport: 'memory', expectedPeer: id as never }),
    next('linked'),
  ]);
  w.postMessage({ type: 'serve', model_id: manifest.model_id, range });
  await next('served');
  let dead = false;
  return {
    id,
    async kill() {
      dead = true;
      await w.terminate();
    },
    async close() {
      if (dead) return;
      dead = true;
      w.postMessage({ type: 'close' });
      // a host that fails to close cleanly is terminated anyway; say so
      await next('closed').catch((e: unknown) =>
        process.stderr.write(`m26 bench: host ${id} did not close cleanly: ${(e as Error).message}\n`),
      );
      await w.terminate();
    },
  };
}

async function hostThread(port: MessagePort): Promise<void> {
  const [{ createNode }, { createDistributedLlm, distributedLlmApi }, { installedFromManifest }, ort, src] =
    await Promise.all([
      import('../../engine/index.js'),
      import('../../engine/distributed_inference/index.js'),
      import('../../engine/distributed_inference/onnx.js'),
      import('../../engine/llm/ort.js'),
      import('../model/node-source.js'),
    ]);
  ort.configureOrt({ numThreads: 1 });
  let node: HearthNode | null = null;
  port.on('message', async (m: Record<string, unknown>) => {
    try {
      if (m.type === 'init') {
        const inst = installedFromManifest(src.dirSource(m.splitDir as string), m.manifest as ModelManifest, {
          executionProviders: ['wasm'],
        });
        const def = createDistributedLlm({
          models: { installed: () => [inst], orchestrator: async () => undefined },
        });
        node = await createNode({
          config: {
            tensor_transport: { enabled: true },
            distributed_llm: { enabled: true },
            community: { community_id: m.founder as never },
          } as never,
          modules: [def],
        });
        port.postMessage({ type: 'ready', id: node.id });
      } else if (m.type === 'admit') {
        await node!.events.receive(m.events as never);
        const joined = await node!.events.append('community.member.joined', { invite_event_id: m.invite });
        port.postMessage({ type: 'joined', joined });
      } else if (m.type === 'link') {
        await node!.connect(messageBytePort(m.port as MessagePort), {
          transport: 'memory',
          expectedPeer: m.peer as never,
        });
        port.postMessage({ type: 'linked' });
      } else if (m.type === 'serve') {
        await distributedLlmApi(node!.id)!.serve({
          model_id: m.model_id as string,
          layer_range: m.range as [number, number],
        });
        port.postMessage({ type: 'served' });
      } else if (m.type === 'close') {
        await node?.close();
        port.postMessage({ type: 'closed' });
      }
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message });
    }
  });
}

if (!isMainThread && parentPort) void hostThread(parentPort);
