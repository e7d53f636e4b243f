/**
 * M29 helpers of the service kept apart to keep service.ts small: one frame written through the
 * serial bridge with the firmware's verdict, and the checks of the read capabilities' inputs.
 */
import { HnError } from '../core/errors.js';
import { isSenderHash } from './frame.js';
import type { PeerState } from './peer_map.js';
import type { SerialBridge } from './serial_bridge.js';

/**
 * Write one frame and wait for the firmware's verdict: HNLORA reports +HNTXDONE/+HNTXERR; Meshtastic
 * only reports refusals (Routing DUTY_CYCLE_LIMIT), so its window is the airtime plus a grace.
 */
export async function transmitFrame(
  bridge: SerialBridge,
  frame: Uint8Array,
  airtimeMs: number,
  waitVerdict: boolean,
  id: number,
): Promise<void> {
  const adapter = bridge.adapter;
  const verdict = waitVerdict
    ? bridge
        .waitFor(
          (ev) =>
            ev.kind === 'tx_error' && (ev.packet_id === undefined || ev.packet_id === id)
              ? ev
              : ev.kind === 'tx_done' && adapter.name !== 'meshtastic'
                ? ev
                : undefined,
          Math.ceil(airtimeMs) + 1000,
        )
        .catch((e: unknown) => {
          if (e instanceof HnError && e.code === 'timeout') return null; // no refusal: sent
          throw e;
        })
    : Promise.resolve(null);
  await bridge.write(adapter.encodeTx(frame, id));
  const v = await verdict;
  if (v && v.kind === 'tx_error') {
    if (v.duty_cycle)
      throw new HnError('lora_duty_cycle_exhausted', 'the firmware refused: duty cycle', {
        details: { firmware: true },
      });
    throw new HnError('lora_hardware_unavailable', `the stick refused the frame: ${v.code}`);
  }
}

export function parsePeerListInput(input: { state?: unknown; limit?: unknown }): {
  state: PeerState | undefined;
  limit: number;
} {
  const states: PeerState[] = ['unknown', 'verified', 'conflict', 'blocked'];
  if (input.state !== undefined && !states.includes(input.state as PeerState))
    throw new HnError('bad_request', 'unknown state');
  const limit = input.limit ?? 1000;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new HnError('bad_request', 'limit 1..1000');
  return { state: input.state as PeerState | undefined, limit };
}

export function parseRecentInput(input: {
  since?: unknown;
  sender_hash?: unknown;
  flags_any?: unknown;
  limit?: unknown;
}): { since?: number; sender_hash?: string; flags_any?: number; limit: number } {
  const { since, sender_hash, flags_any } = input;
  const limit = input.limit ?? 100;
  if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since)))
    throw new HnError('bad_request', 'since: ms');
  if (sender_hash !== undefined && !isSenderHash(sender_hash))
    throw new HnError('bad_request', 'sender_hash: 8 hex');
  if (
    flags_any !== undefined &&
    (typeof flags_any !== 'number' || !Number.isInteger(flags_any) || flags_any < 0 || flags_any > 255)
  )
    throw new HnError('bad_request', 'flags_any: u8');
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new HnError('bad_request', 'limit 1..1000');
  return {
    since: since as number | undefined,
    sender_hash: sender_hash as string | undefined,
    flags_any: flags_any as number | undefined,
    limit,
  };
}
