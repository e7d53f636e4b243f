/**
 * `browsers:N` target: N separate headless Chromium instances (Debian's `/usr/bin/chromium`, never
 * a downloaded browser), each running the built PWA from a relay of our own on a free loopback
 * port. Peer 0 founds the community; the others join it the way the app's join banner does
 * (`setConfig({community})` + reload), then they mesh through the relay (WebRTC or relayed links).
 *
 * Every op is a `page.evaluate` against `window.hearthnet` (the node); in-page code is passed as
 * strings so nothing the TypeScript loader injects (helpers like `__name`) can leak into the page.
 * `raw_link` is a byte pipe bridged through Playwright: the sim peer speaks the link protocol in
 * Node, the page's node runs its side of the handshake on a BytePort whose bytes cross
 * `exposeFunction` / `evaluate`. `x08_accept` runs `TensorSession.accept` in the page on such a bridged
 * port; the page reaches the class through a session it opens with `window.hearthnet.tensors` (N ≥ 2).
 */
import { chromium, type Browser, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay, type Relay } from '../../../relay/server.js';
import { BridgePort } from '../bridge-port.js';
import {
  viaJson,
  type CallResult,
  type LinkRow,
  type RawPort,
  type Target,
  type TargetInfo,
} from '../target.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CHROMIUM_PATH = process.env.HEARTHNET_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const BROWSER_OPS = [
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

/**
 * `vector` and `x08_token` ops in the browser: the page exposes no engine functions, so
 * harness/page-ops.ts (the vector dispatcher the in-process target uses, and the session-token mint /
 * check it calls, importing engine/) is bundled by esbuild into one script and evaluated in the SUT
 * page; they then run on the page's JS engine against the engine source of this checkout (not against
 * the functions inside the built app bundle), with the page node's own key.
 */
let vectorBundle: Promise<string> | null = null;
async function vectorScript(): Promise<string> {
  vectorBundle ??= (async () => {
    const { build } = await import('esbuild');
    const { fileURLToPath } = await import('node:url');
    const r = await build({
      entryPoints: [fileURLToPath(new URL('../page-ops.ts', import.meta.url))],
      bundle: true,
      format: 'iife',
      globalName: '__hnVectorsMod',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    return `${r.outputFiles[0]!.text}\nwindow.__hnVectors = __hnVectorsMod;`;
  })();
  return vectorBundle;
}
/** the harness baseline: every experimental flag off, protocol on */
const EXPERIMENTAL = ['distributed_llm', 'moe', 'fedlearn', 'lora', 'evidence', 'civdef', 'tensor_transport'];

export interface BrowserTargetOptions {
  peers?: number;
  /** serve this app build (default app/dist; built with `npx vite build` when missing) */
  appDir?: string;
  /** ms to wait for boot and for the mesh to form */
  meshTimeoutMs?: number;
  log?: (line: string) => void;
}

// ---------- in-page code (strings: evaluated verbatim in the page) ----------

/** a log of every event the node stores, in arrival order (like the in-process target's) */
const INSTALL_LOG = `(async () => {
  const n = window.hearthnet;
  const log = [...(await n.events.list())];
  if (window.__hnConfOff) window.__hnConfOff();
  window.__hnConfLog = log;
  window.__hnConfOff = n.events.subscribe((ev) => log.push(ev));
  return log.length;
})()`;

const callJs = (cap: string, input: unknown) => `(async () => {
  try {
    const out = await window.hearthnet.call(${JSON.stringify(cap)}, ${JSON.stringify(input ?? null)});
    return out === undefined ? {} : { output: JSON.parse(JSON.stringify(out)) };
  } catch (e) {
    return { error: { code: String((e && e.code) || 'internal_error'), message: String((e && e.message) || e) } };
  }
})()`;

/** wipe all state except the keys (and the community the peer belongs to), back to the baseline config */
const wipeJs = (patch: unknown) => `(async () => {
  const n = window.hearthnet;
  await n.setConfig(${JSON.stringify(patch)});
  if (window.__hnConfOff) window.__hnConfOff();
  await n.close();
  const slot = Number((document.querySelector('[data-testid=slot]')?.textContent || '0').replace(/\\D/g, '') || 0);
  const core = 'hearthnet-' + slot;
  const open = (name) => new Promise((res, rej) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
  const db = await open(core);
  const keep = new Set(['keys', 'config']);
  const stores = [...db.objectStoreNames].filter((s) => !keep.has(s));
  if (stores.length)
    await new Promise((res, rej) => {
      const tx = db.transaction(stores, 'readwrite');
      for (const s of stores) tx.objectStore(s).clear();
      tx.oncomplete = () => res(undefined);
      tx.onerror = () => rej(tx.error);
    });
  db.close();
  // databases of modules (registries, stores) go entirely
  const others = (await indexedDB.databases()).map((d) => d.name).filter((x) => x && x !== core);
  await Promise.all(others.map((name) => new Promise((res) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = r.onerror = r.onblocked = () => res(undefined);
  })));
  return stores;
})()`;

/** in-page source of a BytePort bridged to Node (`window.__hnRaw[id]`), bound to `port` */
const bridgePortJs = (id: number, maxMessageBytes: number) => `
  const id = ${id};
  const raw = (window.__hnRaw ||= {});
  const enc = (u8) => { let s = ''; for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000)); return btoa(s); };
  const dec = (b) => { const s = atob(b); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u; };
  let recv = null; const pending = []; const closeCbs = []; let closed = false; let chain = Promise.resolve();
  const shut = (reason) => { if (closed) return false; closed = true; for (const cb of closeCbs) cb(reason); return true; };
  const port = {
    get closed() { return closed; },
    maxMessageBytes: ${maxMessageBytes},
    send(msg) {
      if (closed) return Promise.reject(Object.assign(new Error('port closed'), { code: 'closed' }));
      const b = enc(msg);
      chain = chain.then(() => window.__hnRawOut(id, b)).catch(() => undefined);
      return Promise.resolve();
    },
    onMessage(cb) { recv = cb; for (const m of pending.splice(0)) cb(m); },
    onClose(cb) { closeCbs.push(cb); },
    close(reason = 'closed') { if (shut(reason)) chain = chain.then(() => window.__hnRawClose(id, String(reason))).catch(() => undefined); },
  };
  raw[id] = {
    deliver(b) { if (closed) return; const m = dec(b); if (recv) recv(m); else pending.push(m); },
    remoteClose(reason) { shut(reason); },
  };`;

/** open a BytePort bridged to Node (raw_link) and hand it to the node as a fresh peer link */
const rawOpenJs = (id: number) => `(() => {${bridgePortJs(id, 256 * 1024)}
  window.hearthnet.connect(port, { transport: 'memory' }).catch(() => undefined);
})()`;

/** the page node's own seed, read from its core database's `keys` store (it stays in the page) */
const PAGE_SEED_JS = `const slot = Number((document.querySelector('[data-testid=slot]')?.textContent || '0').replace(/\\D/g, '') || 0);
  const db = await new Promise((res, rej) => { const r = indexedDB.open('hearthnet-' + slot); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const rec = await new Promise((res, rej) => { const r = db.transaction('keys').objectStore('keys').get('device'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  db.close();
  if (!rec || !rec.seed) throw new Error('no device key in the page');
  const seed = new Uint8Array(rec.seed);`;

/** SUT peer: mint a single-use X08 session token with the node's own key (`x08_token`) */
const x08TokenJs = (o: { local: string; purpose: string; session_id: string }) => `(async () => {
  ${PAGE_SEED_JS}
  const n = window.hearthnet;
  return window.__hnVectors.mintX08Token(seed, { self: n.id, community: n.communityId }, ${JSON.stringify(o)});
})()`;

/** the X08 capability a helper peer serves so the SUT peer can get hold of the page's TensorSession class */
const X08_BOOT_CAP = 'llm.conformance_x08.connect@1.0';
const X08_BOOT_PURPOSE = 'conformance.x08.boot';

/** tensor_transport on (through `enable`), relayed links allowed (the mesh may relay) */
const X08_ENABLE_JS = `(async () => {
  const n = window.hearthnet;
  await n.enable('tensor_transport');
  await n.setConfig({ tensor_transport: { allow_relayed: true } });
})()`;

/** helper peer: serve the boot capability through node.tensors (once per page load) */
const X08_SERVE_JS = `(() => {
  const n = window.hearthnet;
  if (window.__hnX08Served) return;
  n.bus.register({
    descriptor: {
      name: ${JSON.stringify(X08_BOOT_CAP.split('@')[0])}, version: [1, 0], stability: 'experimental', module: 'core',
      request_schema: { type: 'object' }, response_schema: null, stream_schema: null,
      max_concurrent: 16, trust_required: 'member', timeout_seconds: 30, idempotent: false,
    },
    handler: async (_input, ctx) =>
      n.tensors.authorise({ caller: ctx.caller, capability: ${JSON.stringify(X08_BOOT_CAP)}, purpose: ${JSON.stringify(X08_BOOT_PURPOSE)} }),
  });
  n.tensors.onSession(${JSON.stringify(X08_BOOT_PURPOSE)}, (s) => s.close('done'));
  window.__hnX08Served = true;
})()`;

/** SUT peer: open one session through node.tensors to learn the page's TensorSession class, then close it */
const x08BootJs = (helper: string) => `(async () => {
  if (window.__hnTS) return true;
  const s = await window.hearthnet.tensors.open(${JSON.stringify(helper)}, { capability: ${JSON.stringify(X08_BOOT_CAP)}, purpose: ${JSON.stringify(X08_BOOT_PURPOSE)} });
  window.__hnTS = s.constructor;
  s.close('done');
  return typeof window.__hnTS.accept === 'function';
})()`;

/** what an X08 channel of a link carries per message (engine/net/frames.ts X08_CAP) */
const X08_PORT_BYTES = 1024 * 1024 + 64 * 1024;

/** SUT peer: an X08 responder on a bridged port accepting `purpose` with `token`, echoing every tensor */
const x08AcceptJs = (
  id: number,
  o: { purpose: string; token: string; local: string },
) => `(() => {${bridgePortJs(id, X08_PORT_BYTES)}
  const o = ${JSON.stringify(o)};
  window.__hnTS.accept(port, {
    local: window.hearthnet.id,
    peer: o.local,
    expectedPurpose: o.purpose,
    // a session token (hntoken://, from x08_token) is checked by the engine's own checkSessionHello
    // (page-ops bundle, single use); any other string must equal the token the suite named
    validateToken: (tok, hello) => {
      const n = window.hearthnet;
      if (typeof tok === 'string' && tok.startsWith('hntoken://'))
        return window.__hnVectors.checkX08Token(tok, hello, { self: n.id, community: n.communityId }, o.local);
      if (tok !== o.token) throw Object.assign(new Error('bad token'), { code: 'token_invalid' });
    },
  }).then(async (s) => {
    while (true) {
      const r = await s.recvTensor();
      await s.sendTensor(r.tensorId, r.tensor);
    }
  }).catch(() => undefined);
})()`;

// ---------- the target ----------

interface Peer {
  browser: Browser;
  page: Page;
}

export class BrowserTarget implements Target {
  readonly kind = 'browsers' as const;
  private relay: Relay | null = null;
  private peerList: Peer[] = [];
  private ids: string[] = [];
  private community = '';
  private raws = new Map<number, BridgePort>();
  private nextRaw = 1;
  private started: Promise<void> | null = null;
  browserVersion = '';

  constructor(private o: BrowserTargetOptions = {}) {}

  private log(l: string) {
    this.o.log?.(l);
  }

  private get appDir() {
    return this.o.appDir ?? join(ROOT, 'app/dist');
  }

  /** the relay's address (for the report) */
  get url(): string | null {
    return this.relay?.url ?? null;
  }

  private async start(): Promise<void> {
    const n = this.o.peers ?? 3;
    if (n < 1) throw Object.assign(new Error('browsers:N needs N ≥ 1'), { exitCode: 3 });
    if (!existsSync(CHROMIUM_PATH))
      throw Object.assign(new Error(`no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`), {
        exitCode: 3,
      });
    if (!existsSync(join(this.appDir, 'index.html'))) {
      this.log(`browsers: building the app (${this.appDir} is missing)`);
      const r = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
      if (r.status !== 0) throw Object.assign(new Error('vite build failed'), { exitCode: 3 });
    }
    this.relay = await createRelay({ host: '127.0.0.1', port: 0, staticDir: this.appDir, log: () => {} });
    const t0 = Date.now();
    // peer 0 first: on this fresh relay it founds the relay's home community before anyone else can
    // (launched together, two peers raced to found it and one ended in the other's community)
    const first = await this.launch();
    this.peerList = [first, ...(await Promise.all(Array.from({ length: n - 1 }, () => this.launch())))];
    this.browserVersion = this.peerList[0]!.browser.version();
    this.community = await this.peerList[0]!.page.evaluate('window.hearthnet.communityId');
    // the others join peer 0's community (what the join banner does) and restart in it
    await Promise.all(this.peerList.slice(1).map((p) => this.joinCommunity(p.page)));
    this.ids = await Promise.all(
      this.peerList.map((p) => p.page.evaluate('window.hearthnet.id') as Promise<string>),
    );
    await Promise.all(this.peerList.map((p) => p.page.evaluate(INSTALL_LOG)));
    await this.waitMesh();
    this.log(
      `browsers: ${n} Chromium ${this.browserVersion} peers meshed at ${this.relay.url} in ${Date.now() - t0} ms`,
    );
  }

  private async launch(): Promise<Peer> {
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    // raw_link bridge (exposed functions survive reloads)
    await page.exposeFunction('__hnRawOut', (id: number, b: string) =>
      this.raws.get(id)?.deliver(new Uint8Array(Buffer.from(b, 'base64'))),
    );
    await page.exposeFunction('__hnRawClose', (id: number, reason: string) =>
      this.raws.get(id)?.remoteClose(reason),
    );
    await page.goto(this.relay!.url);
    await this.ready(page);
    return { browser, page };
  }

  private async ready(page: Page): Promise<void> {
    await page.waitForFunction('window.hearthnetReady === true || !!window.hearthnetBootError', null, {
      timeout: this.o.meshTimeoutMs ?? 30_000,
    });
    const err = await page.evaluate('window.hearthnetBootError || null');
    if (err) throw new Error(`a browser peer did not boot: ${JSON.stringify(err)}`);
  }

  private async joinCommunity(page: Page): Promise<void> {
    await page.evaluate(
      `window.hearthnet.setConfig({ community: { community_id: ${JSON.stringify(this.community)} } })`,
    );
    await page.reload();
    await this.ready(page);
    const c = await page.evaluate('window.hearthnet.communityId');
    if (c !== this.community)
      throw new Error(`a browser peer did not join ${this.community} (it is in ${String(c)})`);
  }

  /** every peer lists every other one as open */
  private async waitMesh(): Promise<void> {
    const deadline = Date.now() + (this.o.meshTimeoutMs ?? 30_000);
    while (true) {
      const rows = await Promise.all(this.peerList.map((_, i) => this.links(i)));
      const ok = rows.every((r, i) =>
        this.ids.every((id, j) => j === i || r.some((l) => l.peer === id && l.state === 'open')),
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`browser peers did not mesh: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private page(i: number): Page {
    const p = this.peerList[i];
    if (!p) throw new Error(`no SUT peer ${i}`);
    return p.page;
  }

  async info(): Promise<TargetInfo> {
    await (this.started ??= this.start());
    return viaJson({
      harness_version: '1' as const,
      test_mode: true,
      peers: this.ids,
      community_id: this.community,
      // x08_accept borrows a second peer to reach the page's TensorSession class
      ops:
        this.peerList.length >= 2
          ? BROWSER_OPS
          : BROWSER_OPS.filter((o) => o !== 'x08_accept' && o !== 'x08_token'),
      deterministic: false,
      browser: { name: 'chromium', version: this.browserVersion },
    });
  }

  async reset(): Promise<void> {
    await (this.started ??= this.start());
    for (const r of this.raws.values()) r.close('reset');
    this.raws.clear();
    const patch: Record<string, unknown> = {
      protocol: { enabled: true },
      community: { community_id: this.community },
    };
    for (const m of EXPERIMENTAL) patch[m] = { enabled: false };
    // every node stops before any comes back, so none re-syncs old events into a wiped one
    await Promise.all(this.peerList.map(({ page }) => page.evaluate(wipeJs(patch))));
    await Promise.all(
      this.peerList.map(async ({ page }) => {
        await page.reload();
        await this.ready(page);
        await page.evaluate(INSTALL_LOG);
      }),
    );
    const ids = await Promise.all(this.peerList.map((p) => p.page.evaluate('window.hearthnet.id')));
    if (JSON.stringify(ids) !== JSON.stringify(this.ids))
      throw new Error('a browser peer lost its keys in reset');
    await this.waitMesh();
  }

  async call(peer: number, capability: string, input: unknown): Promise<CallResult> {
    return viaJson((await this.page(peer).evaluate(callJs(capability, viaJson(input)))) as CallResult);
  }

  /** load the page-ops bundle into a SUT page (once per page load) */
  private async pageOps(page: Page): Promise<void> {
    if (!(await page.evaluate('!!window.__hnVectors'))) await page.evaluate(await vectorScript());
  }

  async vector(peer: number, family: string, op: string, input: unknown): Promise<CallResult> {
    const page = this.page(peer);
    await this.pageOps(page);
    return viaJson(
      (await page.evaluate(
        `(async () => { try { return { output: await window.__hnVectors.runVector(${JSON.stringify(family)}, ${JSON.stringify(op)}, ${JSON.stringify(viaJson(input))}) }; } catch (e) { return { error: { code: String(e && e.code || 'internal_error'), message: String(e && e.message || e) } }; } })()`,
      )) as CallResult,
    );
  }

  async events(peer: number, cursor = 0) {
    const r = (await this.page(peer).evaluate(
      `({ events: (window.__hnConfLog || []).slice(${Number(cursor)}), cursor: (window.__hnConfLog || []).length })`,
    )) as { events: any[]; cursor: number };
    return viaJson(r);
  }

  /** the browsers mesh through the relay by themselves: wait until every link is open */
  async linkAll(): Promise<void> {
    await this.waitMesh();
  }

  async links(peer: number): Promise<LinkRow[]> {
    return viaJson(
      (await this.page(peer).evaluate(
        'window.hearthnet.peers().map((p) => ({ peer: p.id, state: p.state, agreed_version: p.agreed_version }))',
      )) as LinkRow[],
    );
  }

  async config(peer: number, modules: Record<string, boolean>): Promise<void> {
    const page = this.page(peer);
    for (const [m, on] of Object.entries(modules))
      await page.evaluate(`window.hearthnet.${on ? 'enable' : 'disable'}(${JSON.stringify(m)})`);
  }

  private async bridge(
    peer: number,
    openJs: (id: number) => string,
    maxMessageBytes?: number,
  ): Promise<RawPort> {
    const page = this.page(peer);
    const id = this.nextRaw++;
    const into = (fn: string, arg: string) =>
      page.evaluate(
        `window.__hnRaw && window.__hnRaw[${id}] && window.__hnRaw[${id}].${fn}(${JSON.stringify(arg)})`,
      );
    const port = new BridgePort({
      out: (msg) => into('deliver', Buffer.from(msg).toString('base64')),
      close: (reason) => into('remoteClose', reason),
      ...(maxMessageBytes ? { maxMessageBytes } : {}),
    });
    this.raws.set(id, port);
    await page.evaluate(openJs(id));
    return port;
  }

  async rawLink(peer: number): Promise<RawPort> {
    return this.bridge(peer, rawOpenJs);
  }

  /**
   * `x08_accept`: the page runs `TensorSession.accept` on a bridged port. The page exposes no
   * TensorSession, so the SUT peer first opens one session through `node.tensors` to a helper peer
   * (which serves it with `authorise`) and keeps that session's class.
   */
  async x08Accept(peer: number, o: { purpose: string; token: string; local: string }): Promise<RawPort> {
    const page = this.page(peer);
    const hi = (peer + 1) % this.peerList.length;
    if (hi === peer) throw new Error('x08_accept needs a second browser peer');
    const helper = this.page(hi);
    if (!(await page.evaluate('!!window.__hnTS'))) {
      await Promise.all([page.evaluate(X08_ENABLE_JS), helper.evaluate(X08_ENABLE_JS)]);
      await helper.evaluate(X08_SERVE_JS);
      if (!(await page.evaluate(x08BootJs(this.ids[hi]!))))
        throw new Error('the page has no TensorSession.accept');
    }
    await this.pageOps(page);
    return this.bridge(peer, (id) => x08AcceptJs(id, viaJson(o)), X08_PORT_BYTES);
  }

  /** `x08_token`: the page node mints a single-use session token with its own key (page-ops bundle) */
  async x08Token(
    peer: number,
    o: { local: string; purpose: string; session_id: string },
  ): Promise<{ token: string }> {
    const page = this.page(peer);
    await this.pageOps(page);
    const r = (await page.evaluate(x08TokenJs(viaJson(o)))) as { token: string };
    return { token: String(r.token) };
  }

  async close(): Promise<void> {
    const peers = this.peerList;
    this.peerList = [];
    this.started = null;
    await Promise.all(peers.map((p) => p.browser.close().catch(() => undefined)));
    await this.relay?.close().catch(() => undefined);
    this.relay = null;
  }
}
