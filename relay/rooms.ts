/**
 * Room admission (core digest §8.3, §8.5; issue #18): the signed hello, join rate per node, room
 * capacity, fresh keys per address per minute (so one address cannot fill a room with throwaway
 * identities), and the roster a joiner receives.
 */
import type { NodeID } from '../engine/core/types.js';
import { isNodeId, verifyObject } from '../engine/identity/identity.js';
import {
  RELAY_CLOSE_REPLACED,
  RELAY_PASS_MAX_TTL_SECONDS,
  checkRelayPass,
  checkRelayRevocation,
  RELAY_HELLO_SKEW_SECONDS,
  isSafeDisplayName,
  parseWallClock,
  wallClockMs,
  type RelayPeerInfo,
} from '../engine/net/relay-wire.js';
import { shortId, type RelayCtx } from './context.js';
import { createRevocationStore } from './revocations.js';
import type { Conn } from './types.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Addresses and nodes remembered for the per-minute and per-hour limits (oldest forgotten first). */
const MEMORY_MAX = 50_000;
/** Frames to a peer that left this recently are in flight, not a flood: no strike. */
const RECENTLY_LEFT_MS = 30_000;
/** The members' side of a room: peers that showed a valid room pass (relay-wire RelayPass). */
export const membersSide = (room: NodeID): string => `${room}/members`;

/** The delegating member of a (checked) pass, or null for a direct pass. */
const passIssuer = (p: unknown): NodeID | null => {
  const by = (p as { by?: { node_id?: unknown } }).by;
  return by && typeof by.node_id === 'string' ? (by.node_id as NodeID) : null;
};

export function createRooms(ctx: RelayCtx) {
  const { o, m, rooms } = ctx;
  const joinLog = new Map<string, number[]>(); // node_id → join times within the last hour
  const freshLog = new Map<string, number[]>(); // ip → times a new NodeID joined from it (last minute)
  const left = new Map<string, number>(); // room|node → when it left (frames may still be in flight)
  // room|node → until when its passes are refused (a pass lives at most RELAY_PASS_MAX_TTL_SECONDS),
  // kept across restarts in o.revocationsFile
  const revoked = createRevocationStore({ file: o.revocationsFile, now: o.now, log: ctx.log });
  const isRevoked = (room: NodeID, node: NodeID | null | undefined) => !!node && revoked.has(room, node);

  const roomPeers = (bucket: string, except: NodeID | null): RelayPeerInfo[] => {
    const r = rooms.get(bucket);
    if (!r) return [];
    const out: RelayPeerInfo[] = [];
    for (const c of r.values()) {
      if (c.nodeId !== except)
        out.push({ node_id: c.nodeId!, display_name: c.displayName, joined_at: c.joinedAt });
    }
    return out;
  };

  const broadcast = (bucket: string, except: Conn | null, msg: Record<string, unknown>) => {
    const r = rooms.get(bucket);
    if (!r) return;
    for (const c of r.values()) if (c !== except) ctx.sendJson(c, msg);
  };

  const bounded = (map: Map<string, number[]>) => {
    while (map.size > MEMORY_MAX) map.delete(map.keys().next().value as string);
  };

  const hello = (c: Conn, h: Record<string, unknown>) => {
    const dn = h.display_name;
    if (
      h.v !== 1 ||
      h.type !== 'relay.hello' ||
      !isNodeId(h.node_id) ||
      !isNodeId(h.room) ||
      typeof h.nonce !== 'string' ||
      typeof h.ts !== 'string' ||
      typeof h.signature !== 'string' ||
      (dn !== undefined && !isSafeDisplayName(dn))
    ) {
      ctx.reject(c, 'bad_request', 'bad_hello', 'malformed hello');
      return;
    }
    const nodeId = h.node_id as NodeID;
    const room = h.room as NodeID;
    if (h.nonce !== c.nonce) {
      ctx.reject(c, 'expired', 'stale_nonce', 'hello nonce is not this connection’s challenge');
      return;
    }
    const ts = parseWallClock(h.ts);
    const now = o.now();
    if (ts === null || Math.abs(ts - now) > RELAY_HELLO_SKEW_SECONDS * 1000) {
      ctx.reject(c, 'expired', 'stale_ts', 'hello ts is outside ±300 s of the relay clock');
      return;
    }
    if (!verifyObject(h, nodeId)) {
      ctx.reject(c, 'invalid_signature', 'bad_signature', 'hello signature does not verify for node_id');
      return;
    }
    // A room pass puts the peer on the members' side; without one it joins the open side, which
    // never sees the members (an invite community's room tells a stranger nothing).
    if (h.pass !== undefined) {
      const bad = checkRelayPass(h.pass, room, nodeId, now);
      if (bad) {
        ctx.reject(c, bad, `pass_${bad}`, 'the room pass is not valid for this node and room');
        return;
      }
    }
    // a pass of a revoked node, or one it delegated, is refused from the time the relay knows
    const passBy = h.pass !== undefined ? passIssuer(h.pass) : null;
    if (h.pass !== undefined && (isRevoked(room, nodeId) || isRevoked(room, passBy))) {
      ctx.reject(c, 'revoked', 'pass_revoked', 'the room pass was revoked', { close: true });
      return;
    }
    c.passBy = passBy;
    const bucket = h.pass !== undefined ? membersSide(room) : room;
    const other = h.pass !== undefined ? room : membersSide(room);
    // Join rate per node (sliding hour).
    const joins = (joinLog.get(nodeId) ?? []).filter((t) => t > now - HOUR);
    if (joins.length >= o.joinsPerHour) {
      joinLog.set(nodeId, joins);
      ctx.reject(c, 'rate_limited', 'join_rate', 'too many joins for this node in the last hour', {
        retry_after_ms: joins[0]! + HOUR - now,
        close: true,
      });
      return;
    }
    // Fresh keys per address (sliding minute): a node that joined within the hour is not fresh.
    const fresh = joins.length === 0;
    const fromIp = (freshLog.get(c.ip) ?? []).filter((t) => t > now - MINUTE);
    if (fresh && fromIp.length >= o.freshKeysPerIpPerMinute) {
      freshLog.set(c.ip, fromIp);
      ctx.reject(c, 'rate_limited', 'fresh_keys', 'too many new identities from this address', {
        retry_after_ms: fromIp[0]! + MINUTE - now,
        close: true,
      });
      return;
    }
    const r0 = rooms.get(bucket);
    const existing = r0?.get(nodeId) ?? null;
    // the same node on the room's other side (it gained or lost its pass) is replaced too
    const elsewhere = rooms.get(other)?.get(nodeId) ?? null;
    const others = (r0?.size ?? 0) - (existing ? 1 : 0);
    if (others >= o.maxRoomPeers) {
      ctx.reject(c, 'capacity_exceeded', 'room_full', 'the room is full', { close: true });
      return;
    }
    joins.push(now);
    joinLog.set(nodeId, joins);
    if (fresh) {
      fromIp.push(now);
      freshLog.set(c.ip, fromIp);
    }
    bounded(joinLog);
    bounded(freshLog);
    if (c.helloTimer) clearTimeout(c.helloTimer);
    c.helloTimer = null;
    c.state = 'joined';
    c.nodeId = nodeId;
    c.room = room;
    c.bucket = bucket;
    c.displayName = typeof dn === 'string' ? dn : '';
    c.joinedAt = wallClockMs(now).replace(/\.\d{3}Z$/, 'Z');
    o.home.noteJoin(room, nodeId);
    for (const old of [existing, elsewhere]) {
      // A second connection of the same node replaces the first (tab reload, network change).
      if (!old) continue;
      old.replaced = true;
      rooms.get(old.bucket!)?.delete(nodeId);
      if (rooms.get(old.bucket!)?.size === 0) rooms.delete(old.bucket!);
      m.inc('hearthnet_relay_rejects_total', { reason: 'replaced' });
      ctx.closeConn(old, RELAY_CLOSE_REPLACED, 'replaced');
      broadcast(old.bucket!, old, { t: 'peer_left', node_id: nodeId });
    }
    let r = rooms.get(bucket);
    if (!r) rooms.set(bucket, (r = new Map()));
    r.set(nodeId, c);
    m.inc('hearthnet_relay_joins_total');
    ctx.sendJson(c, {
      t: 'welcome',
      room,
      node_id: nodeId,
      peers: roomPeers(bucket, nodeId),
      server_time: wallClockMs(now),
    });
    broadcast(bucket, c, {
      t: 'peer_joined',
      node_id: nodeId,
      display_name: c.displayName,
      joined_at: c.joinedAt,
    });
    ctx.log('info', 'joined', {
      peer: shortId(nodeId),
      room: shortId(room),
      members_side: bucket !== room,
      replaced: !!(existing ?? elsewhere),
      room_size: r.size,
    });
  };

  /**
   * `{t:"revoke", revocation}`: a revocation signed by the room's community key (any joined peer may
   * carry it). The node's passes and those it delegated are refused from now on, and its (or its
   * invitees') members-side connections are closed with `revoked`.
   */
  const revoke = (c: Conn, r: unknown) => {
    const bad = checkRelayRevocation(r, c.room!);
    if (bad) {
      ctx.reject(c, bad, `revocation_${bad}`, 'not a revocation signed by this room’s community key');
      return;
    }
    const node = (r as { node_id: NodeID }).node_id;
    revoked.add(c.room!, node, o.now() + RELAY_PASS_MAX_TTL_SECONDS * 1000);
    m.inc('hearthnet_relay_revocations_total');
    for (const x of rooms.get(membersSide(c.room!))?.values() ?? []) {
      if (x.nodeId !== node && x.passBy !== node) continue;
      ctx.reject(x, 'revoked', 'pass_revoked', 'the room pass was revoked', { close: true });
    }
  };

  /** A joined connection left: drop it from its room and tell the others. */
  const leave = (c: Conn) => {
    if (!c.bucket || !c.nodeId) return;
    const r = rooms.get(c.bucket);
    if (r && r.get(c.nodeId) === c) {
      r.delete(c.nodeId);
      if (r.size === 0) rooms.delete(c.bucket);
      broadcast(c.bucket, null, { t: 'peer_left', node_id: c.nodeId });
      left.delete(`${c.bucket}|${c.nodeId}`);
      left.set(`${c.bucket}|${c.nodeId}`, o.now());
      while (left.size > MEMORY_MAX) left.delete(left.keys().next().value as string);
    }
    ctx.log('info', 'left', { peer: shortId(c.nodeId), room: shortId(c.room), replaced: c.replaced });
  };

  /** Forget join times older than the window (called from the ping sweep). */
  const prune = () => {
    const now = o.now();
    for (const [k, v] of joinLog) {
      const keep = v.filter((t) => t > now - HOUR);
      if (keep.length) joinLog.set(k, keep);
      else joinLog.delete(k);
    }
    for (const [k, t] of left) if (now - t >= RECENTLY_LEFT_MS) left.delete(k);
    revoked.prune();
    for (const [k, v] of freshLog) {
      const keep = v.filter((t) => t > now - MINUTE);
      if (keep.length) freshLog.set(k, keep);
      else freshLog.delete(k);
    }
  };

  const recentlyLeft = (bucket: string, node: NodeID) => {
    const t = left.get(`${bucket}|${node}`);
    return t !== undefined && o.now() - t < RECENTLY_LEFT_MS;
  };

  return { hello, leave, prune, recentlyLeft, revoke, flush: () => revoked.flush() };
}
