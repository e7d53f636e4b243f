/**
 * The relay's room-pass revocations (issue #18), kept across restarts: `room|node → until` in
 * memory, mirrored into a small JSON file (`<dataDir>/revocations.json` for the CLI) so a restarted
 * relay keeps refusing a revoked member before the founder rejoins and sends the revocation again.
 *
 * - Bounded: at most REVOCATIONS_PER_ROOM_MAX per room and REVOCATIONS_MAX in all (oldest dropped
 *   first), so a key that founds a room of its own and signs revocations cannot evict other rooms'
 *   entries or grow the file without bound; a file above REVOCATIONS_FILE_MAX_BYTES is not read.
 * - Written atomically (temp file + rename), coalesced (at most one write per WRITE_DELAY_MS) and
 *   flushed on close; a revocation learnt in the last WRITE_DELAY_MS before a crash is lost until
 *   the founder sends it again (it does, on every relay connection).
 * - A missing file starts empty; an unreadable or corrupt one starts empty with a logged warning
 *   (never a crash), and expired or malformed entries are dropped.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const NODE_ID = /^ed25519:[A-Za-z0-9_-]{43}$/;
export const REVOCATIONS_MAX = 50_000;
export const REVOCATIONS_PER_ROOM_MAX = 2_000;
export const REVOCATIONS_FILE_MAX_BYTES = 16 * 1024 * 1024;
const WRITE_DELAY_MS = 200;

export interface RevocationStoreOptions {
  /** JSON file; null = memory only */
  file: string | null;
  now: () => number;
  log: (level: 'info' | 'warning', msg: string, fields?: Record<string, unknown>) => void;
}

export interface RevocationStore {
  /** Is `node`'s pass (and what it delegated) in `room` refused right now? */
  has(room: string, node: string): boolean;
  /** Refuse `node`'s passes in `room` until `until` (ms); persisted (coalesced). */
  add(room: string, node: string, until: number): void;
  /** Drop expired entries. */
  prune(): void;
  readonly size: number;
  /** Write pending changes now (on close). */
  flush(): void;
}

export function createRevocationStore(o: RevocationStoreOptions): RevocationStore {
  const byRoom = new Map<string, Map<string, number>>(); // room → node → until, oldest first
  let size = 0;
  let dirty = false;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const drop = (room: string, node: string) => {
    const r = byRoom.get(room);
    if (!r?.delete(node)) return;
    size--;
    if (r.size === 0) byRoom.delete(room);
  };
  const oldest = (r: Map<string, number>) => r.keys().next().value as string;
  const put = (room: string, node: string, until: number) => {
    drop(room, node);
    let r = byRoom.get(room);
    if (!r) byRoom.set(room, (r = new Map()));
    if (r.size >= REVOCATIONS_PER_ROOM_MAX) drop(room, oldest(r));
    r.set(node, until);
    size++;
    while (size > REVOCATIONS_MAX) {
      const [first, fr] = byRoom.entries().next().value as [string, Map<string, number>];
      drop(first, oldest(fr));
    }
  };

  const write = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!dirty || !o.file) return;
    dirty = false;
    const revoked: { room: string; node_id: string; until: number }[] = [];
    for (const [room, r] of byRoom) for (const [node_id, until] of r) revoked.push({ room, node_id, until });
    try {
      mkdirSync(path.dirname(o.file), { recursive: true });
      const tmp = `${o.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ v: 1, revoked }) + '\n');
      renameSync(tmp, o.file);
    } catch (e) {
      o.log('warning', 'revocations not persisted', { file: o.file, error: (e as Error).message });
    }
  };
  const schedule = () => {
    dirty = true;
    if (!o.file || timer) return;
    timer = setTimeout(write, WRITE_DELAY_MS);
    timer.unref?.();
  };

  const load = (file: string) => {
    let text: string;
    try {
      if (statSync(file).size > REVOCATIONS_FILE_MAX_BYTES) {
        o.log('warning', 'revocations file too large; starting with none', { file });
        return;
      }
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        o.log('warning', 'revocations file unreadable; starting with none', {
          file,
          error: (e as Error).message,
        });
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      o.log('warning', 'revocations file is not JSON; starting with none', { file });
      return;
    }
    const list = (v as { v?: unknown; revoked?: unknown } | null)?.revoked;
    if ((v as { v?: unknown } | null)?.v !== 1 || !Array.isArray(list)) {
      o.log('warning', 'revocations file has an unknown shape; starting with none', { file });
      return;
    }
    const now = o.now();
    let bad = 0;
    for (const e of list as unknown[]) {
      const r = e as { room?: unknown; node_id?: unknown; until?: unknown } | null;
      if (
        !r ||
        typeof r.room !== 'string' ||
        typeof r.node_id !== 'string' ||
        !NODE_ID.test(r.room) ||
        !NODE_ID.test(r.node_id) ||
        typeof r.until !== 'number' ||
        !Number.isFinite(r.until)
      ) {
        bad++;
        continue;
      }
      if (r.until > now) put(r.room, r.node_id, r.until);
    }
    if (bad) o.log('warning', 'revocations file: malformed entries dropped', { file, dropped: bad });
    o.log('info', 'revocations loaded', { file, count: size });
  };
  if (o.file) load(o.file);

  return {
    has(room, node) {
      const until = byRoom.get(room)?.get(node);
      return until !== undefined && until > o.now();
    },
    add(room, node, until) {
      put(room, node, until);
      schedule();
    },
    prune() {
      const now = o.now();
      let changed = false;
      for (const [room, r] of byRoom)
        for (const [node, t] of r)
          if (t <= now) {
            drop(room, node);
            changed = true;
          }
      if (changed) schedule();
    },
    get size() {
      return size;
    },
    flush: write,
  };
}
