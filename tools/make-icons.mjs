#!/usr/bin/env node
/**
 * Writes the PWA icons into public/ with nothing but node:zlib: a warm "hearth" flame over three
 * linked mesh dots on a dark tile. Deterministic output, so re-running it changes no bytes.
 *
 *   node tools/make-icons.mjs            → public/icon-192.png, icon-512.png, icon-maskable-512.png,
 *                                          apple-touch-icon.png (180), favicon-32.png
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'public');

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** RGBA pixels (Uint8Array, w*h*4) → PNG bytes (8-bit RGBA, filter 0 on every row). */
function encodePng(w, h, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  const raw = Buffer.alloc((w * 4 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 4 + 1)] = 0;
    Buffer.from(rgba.buffer, y * w * 4, w * 4).copy(raw, y * (w * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const BG = [0x1d, 0x1a, 0x2b];
const FLAME_OUT = [0xf2, 0x8c, 0x28];
const FLAME_IN = [0xff, 0xd1, 0x66];
const LINK = [0x8f, 0x86, 0xc9];

/**
 * Signed coverage functions in unit space (0..1, y down). `inset` shrinks the artwork towards the
 * centre (maskable icons keep everything inside the 80 % safe circle).
 */
function shade(u, v, rounded) {
  // tile: rounded square (any-purpose) or full bleed (maskable)
  if (rounded) {
    const r = 0.2;
    const dx = Math.max(Math.abs(u - 0.5) - (0.5 - r), 0);
    const dy = Math.max(Math.abs(v - 0.5) - (0.5 - r), 0);
    if (dx * dx + dy * dy > r * r) return null;
  }
  return BG;
}
function flame(u, v) {
  // teardrop: circle at (0.5, 0.56) r 0.2 plus a tip up to (0.5, 0.16)
  const cx = 0.5;
  const cy = 0.56;
  const inDrop = (r, tipY) => {
    const d = Math.hypot(u - cx, v - cy);
    if (d <= r) return true;
    if (v < cy && v > tipY) {
      const t = (cy - v) / (cy - tipY); // 0 at centre line, 1 at tip
      const half = r * Math.sqrt(Math.max(0, 1 - t)) * (1 - 0.15 * t);
      return Math.abs(u - cx + 0.04 * Math.sin(t * 3.1)) <= half;
    }
    return false;
  };
  if (inDrop(0.1, 0.4)) return FLAME_IN;
  if (inDrop(0.2, 0.16)) return FLAME_OUT;
  return null;
}
const NODES = [
  [0.2, 0.84],
  [0.5, 0.9],
  [0.8, 0.84],
];
function mesh(u, v) {
  for (const [x, y] of NODES) if (Math.hypot(u - x, v - y) <= 0.045) return FLAME_OUT;
  for (let i = 0; i + 1 < NODES.length; i++) {
    const [x1, y1] = NODES[i];
    const [x2, y2] = NODES[i + 1];
    const t = Math.max(
      0,
      Math.min(1, ((u - x1) * (x2 - x1) + (v - y1) * (y2 - y1)) / ((x2 - x1) ** 2 + (y2 - y1) ** 2)),
    );
    if (Math.hypot(u - (x1 + t * (x2 - x1)), v - (y1 + t * (y2 - y1))) <= 0.012) return LINK;
  }
  return null;
}

function render(size, { maskable }) {
  const px = new Uint8Array(size * size * 4);
  const SS = 4; // 4×4 supersampling for smooth edges
  const inset = maskable ? 0.62 : 0.8; // artwork scale inside the tile
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const u = (x + (sx + 0.5) / SS) / size;
          const v = (y + (sy + 0.5) / SS) / size;
          const tile = shade(u, v, !maskable);
          if (!tile) continue;
          const au = (u - 0.5) / inset + 0.5;
          const av = (v - 0.5) / inset + 0.5;
          const c = flame(au, av) ?? mesh(au, av) ?? tile;
          r += c[0];
          g += c[1];
          b += c[2];
          a += 255;
        }
      }
      const n = SS * SS;
      const i = (y * size + x) * 4;
      // colour is averaged over covered samples only (premultiplied → straight alpha)
      const covered = a / 255;
      px[i] = covered ? Math.round(r / covered) : 0;
      px[i + 1] = covered ? Math.round(g / covered) : 0;
      px[i + 2] = covered ? Math.round(b / covered) : 0;
      px[i + 3] = Math.round(a / n);
    }
  }
  return encodePng(size, size, px);
}

const ICONS = [
  ['icon-192.png', 192, false],
  ['icon-512.png', 512, false],
  ['icon-maskable-512.png', 512, true],
  ['apple-touch-icon.png', 180, true],
  ['favicon-32.png', 32, false],
];
mkdirSync(OUT, { recursive: true });
for (const [name, size, maskable] of ICONS) {
  const png = render(size, { maskable });
  writeFileSync(join(OUT, name), png);
  console.log(
    `make-icons: public/${name} (${size}×${size}${maskable ? ', maskable' : ''}, ${png.length} bytes)`,
  );
}
