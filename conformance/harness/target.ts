/**
 * What conformance cases see of an implementation under test: JSON in, JSON out, per SUT peer.
 * Three kinds implement it: in-process (our engine), browsers (Chromium peers via Playwright) and
 * url (anything speaking harness protocol v1, conformance/README.md). Optional ops may be missing;
 * a case that needs one is skipped with a reason naming the op, never failed.
 */
export interface TargetInfo {
  harness_version: '1';
  test_mode: boolean;
  /** NodeID of each SUT peer, index = peer number */
  peers: string[];
  /** community every SUT peer belongs to (link hellos must carry it) */
  community_id: string;
  ops: string[];
  deterministic: boolean;
  browser?: { name: string; version: string };
}

export type CallResult = { output: any } | { error: { code: string; message: string } };

/** An ordered, message-oriented byte pipe to a SUT peer (the wire as the sim peer sees it). */
export interface RawPort {
  send(msg: Uint8Array): Promise<void>;
  onMessage(cb: (msg: Uint8Array) => void): void;
  onClose(cb: (reason: string) => void): void;
  close(reason?: string): void;
  readonly closed: boolean;
  readonly maxMessageBytes: number;
}

export interface LinkRow {
  peer: string;
  state: string;
  agreed_version: string | null;
}

export interface Target {
  readonly kind: 'in-process' | 'browsers' | 'url';
  info(): Promise<TargetInfo>;
  /** wipe state except the node keys; config back to the harness baseline; links closed */
  reset(): Promise<void>;
  call(peer: number, capability: string, input: unknown): Promise<CallResult>;
  /** signed event envelopes as the peer stored them (own and received), from `cursor` on */
  events(peer: number, cursor?: number): Promise<{ events: any[]; cursor: number }>;
  /** link every SUT peer to every other one (relay room or in-memory hub) */
  linkAll?(): Promise<void>;
  links?(peer: number): Promise<LinkRow[]>;
  /** set module flags on one peer (`config` op) */
  config?(peer: number, modules: Record<string, boolean>): Promise<void>;
  /** open a raw peer link to a SUT peer for the sim peer (`raw_link` op) */
  rawLink?(peer: number): Promise<RawPort>;
  /** the SUT mints a single-use X08 session token for the suite identity `local` (`x08_token` op) */
  x08Token?(
    peer: number,
    o: { local: string; purpose: string; session_id: string },
  ): Promise<{ token: string }>;
  /** run one vector through the implementation's own function for that family (`vector` op) */
  vector?(peer: number, family: string, op: string, input: unknown): Promise<CallResult>;
  /** open an X08 channel to a SUT peer running an echo responder (`x08_accept` op) */
  x08Accept?(peer: number, opts: { purpose: string; token: string; local: string }): Promise<RawPort>;
  close(): Promise<void>;
}

/** Round-trip through JSON so every target kind sees byte-for-byte the same values. */
export const viaJson = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
