/**
 * Browser model store on Cache Storage (`hearthnet-models`): model files under their own URL (relay or
 * any URL) or, for files the user picked, under `<origin>/__hn-models/files/<key>/<path>`; one JSON
 * record per installed model under `<origin>/__hn-models/index/<key>`. Used by the inference worker
 * (fetch with progress, cache, install) and by the main thread (the Models panel lists and deletes) —
 * this module imports no runtime, so it stays cheap on the first-paint path.
 *
 * Caching rule: a file whose SHA-256 is known (from the manifest) is served from the cache when the
 * cached bytes still hash right, else fetched again; a file without a known hash (JSON metadata, a
 * whole model without a manifest) is fetched from the network first and the cache is only the offline
 * fallback. Bytes that do not hash to the manifest are never cached (the loader then refuses them).
 */
import { HnError } from '../../engine/core/errors.js';
import { sha256Hex } from '../../engine/core/hash.js';
import type { ModelSource } from '../../engine/llm/local.js';

export const MODEL_CACHE = 'hearthnet-models';
const INDEX_PATH = '/__hn-models/index/';
const FILES_PATH = '/__hn-models/files/';

export interface InstalledFile {
  path: string;
  /** Where the bytes sit in the cache (and, for URL models, where they came from). */
  url: string;
  bytes: number;
  sha256: string;
  /** The hash was checked against a manifest (not just computed). */
  verified: boolean;
}

export interface InstalledModel {
  key: string;
  model_id: string;
  /** Base URL, or `picked files`. */
  source: string;
  kind: 'url' | 'files';
  mode: 'whole' | 'split';
  files: InstalledFile[];
  total_bytes: number;
  weights_sha256?: string;
  installed_at: number;
}

export interface FileProgress {
  file: string;
  loaded: number;
  /** 0 when the size is unknown. */
  total: number;
  from: 'network' | 'cache' | 'files';
}

const origin = (): string =>
  (globalThis as { location?: { origin: string } }).location?.origin ?? 'http://localhost';

export function cacheAvailable(): boolean {
  return typeof (globalThis as { caches?: unknown }).caches !== 'undefined';
}

async function openCache(): Promise<Cache | null> {
  if (!cacheAvailable()) return null;
  try {
    return await caches.open(MODEL_CACHE);
  } catch {
    return null; // e.g. opaque origins, storage disabled
  }
}

const indexUrl = (key: string): string => `${origin()}${INDEX_PATH}${encodeURIComponent(key)}`;
export const pickedFileUrl = (key: string, path: string): string =>
  `${origin()}${FILES_PATH}${encodeURIComponent(key)}/${path.split('/').map(encodeURIComponent).join('/')}`;

export async function listInstalled(): Promise<InstalledModel[]> {
  const c = await openCache();
  if (!c) return [];
  const out: InstalledModel[] = [];
  for (const req of await c.keys()) {
    if (!new URL(req.url).pathname.startsWith(INDEX_PATH)) continue;
    const r = await c.match(req);
    if (!r) continue;
    try {
      out.push((await r.json()) as InstalledModel);
    } catch {
      // a broken record is skipped; delete removes it by key
    }
  }
  return out.sort((a, b) => b.installed_at - a.installed_at);
}

export async function getInstalled(key: string): Promise<InstalledModel | null> {
  const c = await openCache();
  const r = c ? await c.match(indexUrl(key)) : undefined;
  return r ? ((await r.json()) as InstalledModel) : null;
}

export async function saveInstalled(m: InstalledModel): Promise<void> {
  const c = await openCache();
  if (!c) return;
  await c.put(
    indexUrl(m.key),
    new Response(JSON.stringify(m), { headers: { 'Content-Type': 'application/json' } }),
  );
}

/** Removes a model's record and every cached file it lists. */
export async function deleteInstalled(key: string): Promise<boolean> {
  const c = await openCache();
  if (!c) return false;
  const m = await getInstalled(key);
  for (const f of m?.files ?? []) await c.delete(f.url);
  return c.delete(indexUrl(key));
}

export async function putBytes(url: string, bytes: Uint8Array): Promise<void> {
  const c = await openCache();
  if (!c) return;
  await c.put(
    url,
    new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength) },
    }),
  );
}

async function readWithProgress(
  r: Response,
  onChunk: (loaded: number, total: number) => void,
): Promise<Uint8Array> {
  const total = Number(r.headers.get('Content-Length') ?? 0) || 0;
  if (!r.body) {
    const b = new Uint8Array(await r.arrayBuffer());
    onChunk(b.byteLength, b.byteLength);
    return b;
  }
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onChunk(loaded, total);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

/** A ModelSource that remembers what it read (for the install record) and reports progress. */
export interface TrackedSource extends ModelSource {
  /** Known SHA-256 per path (from the manifest): enables cache-first reads. */
  expect(path: string, sha256: string): void;
  readonly files: Map<string, InstalledFile>;
  readonly base: string;
}

export interface SourceOptions {
  onProgress?: (p: FileProgress) => void;
  /** Write fetched files to Cache Storage (default true). */
  cache?: boolean;
  signal?: AbortSignal;
}

/** Files under a base URL (the relay's `/models/<name>/` or any CORS-readable URL). */
export function urlSource(baseUrl: string, opts: SourceOptions = {}): TrackedSource {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : baseUrl + '/', origin()).href;
  const expected = new Map<string, string>();
  const files = new Map<string, InstalledFile>();
  const useCache = opts.cache !== false;
  const record = (path: string, url: string, bytes: Uint8Array, sha: string | undefined): void => {
    const actual = sha256Hex(bytes);
    files.set(path, { path, url, bytes: bytes.byteLength, sha256: actual, verified: sha === actual });
  };
  const fetchBytes = async (path: string, url: string): Promise<Uint8Array> => {
    let r: Response;
    try {
      r = await fetch(url, { cache: 'no-cache', ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      throw new HnError('not_found', `${url}: ${(e as Error).message}`);
    }
    if (!r.ok) throw new HnError('not_found', `${url}: HTTP ${r.status}`);
    return readWithProgress(r, (loaded, total) =>
      opts.onProgress?.({ file: path, loaded, total, from: 'network' }),
    );
  };
  return {
    base,
    files,
    expect(path, sha256) {
      expected.set(path, sha256.toLowerCase());
    },
    async read(path) {
      const url = new URL(path, base).href;
      const want = expected.get(path);
      const c = useCache ? await openCache() : null;
      if (c && want) {
        const hit = await c.match(url);
        if (hit) {
          const b = new Uint8Array(await hit.arrayBuffer());
          if (sha256Hex(b) === want) {
            opts.onProgress?.({ file: path, loaded: b.byteLength, total: b.byteLength, from: 'cache' });
            files.set(path, { path, url, bytes: b.byteLength, sha256: want, verified: true });
            return b;
          }
          await c.delete(url); // stale or damaged: fetch again
        }
      }
      let bytes: Uint8Array;
      try {
        bytes = await fetchBytes(path, url);
      } catch (e) {
        // offline: metadata without a known hash may come from the cache (files with a hash were tried above)
        const hit = c && !want ? await c.match(url) : undefined;
        if (!hit) throw e;
        bytes = new Uint8Array(await hit.arrayBuffer());
        opts.onProgress?.({ file: path, loaded: bytes.byteLength, total: bytes.byteLength, from: 'cache' });
        record(path, url, bytes, want);
        return bytes;
      }
      record(path, url, bytes, want);
      // never cache bytes that contradict the manifest (the loader refuses them with the details)
      if (c && (!want || files.get(path)!.verified)) await putBytes(url, bytes);
      return bytes;
    },
    async exists(path) {
      const url = new URL(path, base).href;
      try {
        const r = await fetch(url, { method: 'HEAD', cache: 'no-cache' });
        if (r.ok) return true;
        if (r.status === 404) return false;
      } catch {
        // offline: fall through to the cache
      }
      const c = useCache ? await openCache() : null;
      return !!(c && (await c.match(url)));
    },
  };
}

/** Files the user picked (`<input type=file multiple>` or a folder pick); paths are file names. */
export function pickedSource(picked: File[], key: () => string, opts: SourceOptions = {}): TrackedSource {
  const byName = new Map<string, File>();
  for (const f of picked) {
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath;
    // a folder pick: drop the top folder; keep the rest of the path
    const p = rel && rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : f.name;
    byName.set(p, f);
    if (!byName.has(f.name)) byName.set(f.name, f);
  }
  const expected = new Map<string, string>();
  const files = new Map<string, InstalledFile>();
  return {
    base: 'picked files',
    files,
    expect(path, sha256) {
      expected.set(path, sha256.toLowerCase());
    },
    async read(path) {
      const f = byName.get(path) ?? byName.get(path.split('/').pop()!);
      if (!f) throw new HnError('not_found', `${path} is not among the picked files`);
      const bytes = new Uint8Array(await f.arrayBuffer());
      opts.onProgress?.({ file: path, loaded: bytes.byteLength, total: bytes.byteLength, from: 'files' });
      const sha = sha256Hex(bytes);
      files.set(path, {
        path,
        url: pickedFileUrl(key(), path),
        bytes: bytes.byteLength,
        sha256: sha,
        verified: expected.get(path) === sha,
      });
      return bytes;
    },
    async exists(path) {
      return byName.has(path) || byName.has(path.split('/').pop()!);
    },
  };
}

/** An installed model's files, read back from the cache only (picked files; offline use). */
export function installedSource(m: InstalledModel, opts: SourceOptions = {}): TrackedSource {
  const byPath = new Map(m.files.map((f) => [f.path, f]));
  const files = new Map<string, InstalledFile>();
  return {
    base: m.source,
    files,
    expect() {
      // the record's own hashes are checked below; the manifest's by the loader
    },
    async read(path) {
      const f = byPath.get(path);
      const c = await openCache();
      const r = f && c ? await c.match(f.url) : undefined;
      if (!f || !r) throw new HnError('not_found', `${path} is not in the model cache (${m.key})`);
      const bytes = new Uint8Array(await r.arrayBuffer());
      opts.onProgress?.({ file: path, loaded: bytes.byteLength, total: bytes.byteLength, from: 'cache' });
      files.set(path, f);
      return bytes;
    },
    async exists(path) {
      return byPath.has(path);
    },
  };
}
