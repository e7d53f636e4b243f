/**
 * In-process target: N engine nodes in this Node process (memory storage, DRBG identities), one
 * community (peer 0 founds it). The only suite file that imports engine/. Every value crossing the
 * boundary is JSON round-tripped, so cases cannot take object-sharing shortcuts.
 */
import { createNode, memoryPortPair, type HearthNode } from '../../../engine/index.js';
import type { ModuleName } from '../../../engine/core/config.js';
import { TensorSession } from '../../../engine/transport/tensor/index.js';
import { keyPairFromSeed } from '../../../engine/identity/identity.js';
import { checkSessionHello, mintSessionToken, SessionTokenRegistry } from '../../../engine/tokens/session.js';
import type { NodeID } from '../../../engine/core/types.js';
import { drbg } from '../../lib/drbg.js';
import { runVector } from '../vector-ops.js';
import {
  viaJson,
  type CallResult,
  type LinkRow,
  type RawPort,
  type Target,
  type TargetInfo,
} from '../target.js';

export interface EngineTargetOptions {
  peers?: number;
  seed?: number;
  /**
   * Test hook for "deliberately broken build" demonstrations: wraps what a SUT peer shows the suite
   * (its events, its X08 port) so a known defect can be injected without touching the engine.
   */
  tamper?: {
    events?: (ev: any, peer: number) => any;
    x08Port?: (suiteSide: RawPort) => RawPort;
  };
}

export const ENGINE_OPS = [
  'call',
  'events',
  'reset',
  'link',
  'config',
  'raw_link',
  'x08_accept',
  'x08_token',
  'vector',
];

export class EngineTarget implements Target {
  readonly kind = 'in-process' as const;
  private nodes: HearthNode[] = [];
  private logs: any[][] = [];
  private offs: (() => void)[] = [];
  private generation = 0;
  /** per SUT peer: the engine's single-use session-token bookkeeping for x08_token / x08_accept */
  private tokenRegistries: SessionTokenRegistry[] = [];

  constructor(private o: EngineTargetOptions = {}) {}

  private seedFor(i: number) {
    return drbg(this.o.seed ?? 0xc0ffee, `identity/sut-${i}`, 32);
  }

  async start(): Promise<void> {
    const n = this.o.peers ?? 2;
    this.generation++;
    const first = await createNode({ seed: this.seedFor(0), name: `conf-${this.generation}-0` });
    this.nodes = [first];
    for (let i = 1; i < n; i++)
      this.nodes.push(
        await createNode({
          seed: this.seedFor(i),
          name: `conf-${this.generation}-${i}`,
          config: { community: { community_id: first.id } },
        }),
      );
    this.logs = [];
    this.offs = [];
    for (const [i, node] of this.nodes.entries()) {
      const log: any[] = [...(await node.events.list())];
      this.logs.push(log);
      this.offs.push(node.events.subscribe((ev) => log.push(ev)));
      void i;
    }
  }

  private node(i: number): HearthNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no SUT peer ${i}`);
    return n;
  }

  async info(): Promise<TargetInfo> {
    if (!this.nodes.length) await this.start();
    return viaJson({
      harness_version: '1' as const,
      test_mode: true,
      peers: this.nodes.map((n) => n.id),
      community_id: this.nodes[0]!.communityId,
      ops: ENGINE_OPS,
      deterministic: false,
    });
  }

  async reset(): Promise<void> {
    await this.close();
    this.tokenRegistries = [];
    await this.start();
  }

  private registry(peer: number) {
    return (this.tokenRegistries[peer] ??= new SessionTokenRegistry());
  }

  /** the suite identity `local` is treated as a member of the SUT's community for its session tokens */
  private membership(peer: number, local: string) {
    const n = this.node(peer);
    return (id: string) => (id === local || id === n.id ? ('member' as const) : null);
  }

  /**
   * `x08_token` op: the SUT mints a single-use X08 session token (core §7.5, the engine's own
   * mintSessionToken with the node key) for the suite identity `local`, session `session_id`, `purpose`.
   */
  async x08Token(
    peer: number,
    o: { local: string; purpose: string; session_id: string },
  ): Promise<{ token: string }> {
    const n = this.node(peer);
    const kp = keyPairFromSeed(this.seedFor(peer));
    const t = mintSessionToken(kp, {
      caller: o.local as NodeID,
      communityId: n.communityId,
      membership: this.membership(peer, o.local),
      sessionId: o.session_id,
      purpose: o.purpose,
      registry: this.registry(peer),
    });
    return { token: t.token };
  }

  async call(peer: number, capability: string, input: unknown): Promise<CallResult> {
    try {
      return viaJson({ output: await this.node(peer).call(capability, viaJson(input)) });
    } catch (e: any) {
      return { error: { code: String(e?.code ?? 'internal_error'), message: String(e?.message ?? e) } };
    }
  }

  async vector(peer: number, family: string, op: string, input: unknown): Promise<CallResult> {
    this.node(peer);
    try {
      return viaJson({ output: await runVector(family, op, viaJson(input)) });
    } catch (e: any) {
      return { error: { code: String(e?.code ?? 'internal_error'), message: String(e?.message ?? e) } };
    }
  }

  async events(peer: number, cursor = 0) {
    this.node(peer);
    const log = this.logs[peer]!;
    const t = this.o.tamper?.events;
    return viaJson({
      events: log.slice(cursor).map((e) => (t ? t(viaJson(e), peer) : e)),
      cursor: log.length,
    });
  }

  async linkAll(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++)
      for (let j = i + 1; j < this.nodes.length; j++) {
        const a = this.nodes[i]!;
        const b = this.nodes[j]!;
        if (a.session(b.id)?.state === 'open') continue;
        const [pa, pb] = memoryPortPair();
        await Promise.all([
          a.connect(pa, { transport: 'memory', expectedPeer: b.id }),
          b.connect(pb, { transport: 'memory', expectedPeer: a.id }),
        ]);
      }
  }

  async links(peer: number): Promise<LinkRow[]> {
    return viaJson(
      this.node(peer)
        .peers()
        .map((p) => ({ peer: p.id, state: p.state, agreed_version: p.agreed_version })),
    );
  }

  async config(peer: number, modules: Record<string, boolean>): Promise<void> {
    const n = this.node(peer);
    for (const [m, on] of Object.entries(modules))
      await (on ? n.enable(m as ModuleName) : n.disable(m as ModuleName));
  }

  async rawLink(peer: number): Promise<RawPort> {
    const [mine, theirs] = memoryPortPair();
    // the SUT side runs the handshake; failures surface to the sim peer as a link.close
    void this.node(peer)
      .connect(mine, { transport: 'memory' })
      .catch(() => undefined);
    return theirs;
  }

  async x08Accept(peer: number, o: { purpose: string; token: string; local: string }): Promise<RawPort> {
    const n = this.node(peer);
    const [mine, theirs] = memoryPortPair();
    void TensorSession.accept(mine, {
      local: n.id,
      peer: o.local as NodeID,
      expectedPurpose: o.purpose,
      // a real session token (hntoken://, from x08_token) is checked by the engine's own
      // checkSessionHello (signature, issuer, subject, scope, single use); any other string must equal
      // the token the suite named
      validateToken: (tok, hello) => {
        if (tok.startsWith('hntoken://')) {
          const acc = checkSessionHello(tok, hello, {
            self: n.id,
            linkPeer: o.local as NodeID,
            linkKind: 'memory',
            communityId: n.communityId,
            membership: this.membership(peer, o.local),
            registry: this.registry(peer),
          });
          return { expiresAt: acc.expiresAt };
        }
        if (tok !== o.token) throw Object.assign(new Error('bad token'), { code: 'token_invalid' });
      },
    })
      .then(async (s) => {
        // echo responder: every tensor received goes back unchanged under the same id
        while (true) {
          const r = await s.recvTensor();
          await s.sendTensor(r.tensorId, r.tensor);
        }
      })
      .catch(() => undefined);
    return this.o.tamper?.x08Port ? this.o.tamper.x08Port(theirs) : theirs;
  }

  /** for the report: each SUT peer's seed-derived NodeID */
  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  async close(): Promise<void> {
    for (const off of this.offs) off();
    const nodes = this.nodes;
    this.nodes = [];
    await Promise.all(nodes.map((n) => n.close()));
  }
}
