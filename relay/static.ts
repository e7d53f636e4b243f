/**
 * Static file serving for the relay: the built PWA (SPA fallback to index.html) and a
 * read-only model folder. Every response carries the cross-origin isolation headers
 * (set by the caller); this module adds MIME types, caching rules, ETags and byte ranges.
 */
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.data': 'application/octet-stream',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
};

export function mimeType(file: string): string {
  return MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Files whose name carries a content hash (Vite: `name-<hash>.ext`) never change. */
const HASHED_RE = /[-.][A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

function cacheControl(urlPath: string, file: string): string {
  const base = path.basename(file);
  if (base === 'index.html' || base === 'sw.js' || base.startsWith('workbox-') || base === 'registerSW.js') {
    return 'no-cache';
  }
  if (urlPath.startsWith('/assets/') && HASHED_RE.test(base)) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

/**
 * Map a URL path onto a file under `root`; null when the path escapes the root or is
 * otherwise unacceptable (NUL bytes, bad escapes, dot-files other than `.well-known`).
 */
export function resolveUnder(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (s === '..' || s === '.') return null;
    if (s.startsWith('.') && s !== '.well-known') return null;
  }
  const full = path.resolve(root, ...segments);
  const rootResolved = path.resolve(root);
  if (full !== rootResolved && !full.startsWith(rootResolved + path.sep)) return null;
  return full;
}

async function statFile(p: string): Promise<Stats | null> {
  try {
    const st = await fsp.stat(p);
    return st.isFile() ? st : null;
  } catch {
    return null;
  }
}

const etagOf = (st: Stats) => `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;

/** Send one file with MIME, caching, ETag/304 and single-range support. */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  st: Stats,
  cache: string,
): Promise<void> {
  const etag = etagOf(st);
  res.setHeader('Content-Type', mimeType(file));
  res.setHeader('Cache-Control', cache);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', st.mtime.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  if (req.headers['if-none-match'] === etag) {
    res.statusCode = 304;
    res.end();
    return;
  }
  let start = 0;
  let end = st.size - 1;
  const range = req.headers.range;
  if (typeof range === 'string' && st.size > 0) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    let ok = !!m && (m[1] !== '' || m[2] !== '');
    if (ok && m) {
      if (m[1] === '') {
        const n = Number(m[2]);
        start = Math.max(0, st.size - n);
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      ok = start <= end && start < st.size;
    }
    if (!ok) {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${st.size}`);
      res.end();
      return;
    }
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${st.size}`);
  } else {
    res.statusCode = 200;
  }
  const len = st.size === 0 ? 0 : end - start + 1;
  res.setHeader('Content-Length', String(len));
  if (req.method === 'HEAD' || len === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const s = createReadStream(file, { start, end });
    s.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      s.destroy();
      resolve();
    });
    s.pipe(res);
  });
}

export const BUILD_FIRST_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HearthNet relay</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem">
<h1>HearthNet relay is running</h1>
<p>The web app has not been built yet, so there is nothing to serve here.</p>
<p>Build it with <code>npm run build</code> (or start everything with <code>npm start</code>), then reload this page.</p>
<p>Relay status: <a href="/healthz">/healthz</a> · metrics: <a href="/metrics">/metrics</a></p>
</body></html>
`;

/** Serve the PWA: exact file, else SPA fallback to index.html for extension-less paths. */
export async function serveApp(
  req: IncomingMessage,
  res: ServerResponse,
  root: string | null,
  urlPath: string,
): Promise<void> {
  const index = root ? path.join(root, 'index.html') : null;
  const indexStat = index ? await statFile(index) : null;
  if (!root || !index || !indexStat) {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.end(req.method === 'HEAD' ? undefined : BUILD_FIRST_PAGE);
    return;
  }
  const file = resolveUnder(root, urlPath);
  if (file === null) {
    notFound(res);
    return;
  }
  const st = await statFile(file);
  if (st) {
    await sendFile(req, res, file, st, cacheControl(urlPath, file));
    return;
  }
  const dirIndex = path.join(file, 'index.html');
  const dst = await statFile(dirIndex);
  if (dst) {
    await sendFile(req, res, dirIndex, dst, 'no-cache');
    return;
  }
  // SPA fallback only for navigations (no file extension); missing assets are real 404s.
  if (path.extname(urlPath) === '') {
    await sendFile(req, res, index, indexStat, 'no-cache');
    return;
  }
  notFound(res);
}

/** Serve a read-only folder (model files): exact files only, no listing, no fallback. */
export async function serveFolder(
  req: IncomingMessage,
  res: ServerResponse,
  root: string | null,
  subPath: string,
): Promise<void> {
  const file = root ? resolveUnder(root, subPath) : null;
  const st = file ? await statFile(file) : null;
  if (!file || !st) {
    notFound(res);
    return;
  }
  await sendFile(req, res, file, st, 'no-cache');
}

export function notFound(res: ServerResponse): void {
  res.statusCode = 404;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache');
  res.end('not found\n');
}
