/**
 * Slots (core digest §12): each tab of one browser profile runs its own node in its own
 * IndexedDB database `hearthnet-<slot>`. A slot is held with a Web Lock for the life of the
 * page, so two tabs never open the same node. The first free slot wins; `?slot=n` forces one.
 *
 * A reload releases the old page's lock asynchronously, so the tab's previous slot (kept in
 * sessionStorage, which is per tab and survives reloads) is waited for briefly before falling
 * back to the first free slot: a reloaded tab keeps its NodeID.
 */
export const MAX_SLOTS = 64;
const LOCK_PREFIX = 'hearthnet-slot-';
const SESSION_KEY = 'hearthnet-slot';
/** how long a reloaded tab (or a forced slot) waits for its slot's lock to come free */
export const SLOT_WAIT_MS = 1500;

export class SlotTakenError extends Error {
  readonly code = 'slot_taken';
  constructor(readonly slot: number) {
    super(`slot ${slot} is in use by another tab of this browser; close it or open the app without ?slot=`);
  }
}

export class SlotsExhaustedError extends Error {
  readonly code = 'capacity_exceeded';
  constructor() {
    super(`all ${MAX_SLOTS} slots are in use by other tabs of this browser`);
  }
}

export class SlotParamError extends Error {
  readonly code = 'bad_request';
  constructor(raw: string) {
    super(`?slot=${raw} is not a slot number (0–${MAX_SLOTS - 1})`);
  }
}

export interface SlotClaim {
  slot: number;
  /** false where the browser has no Web Locks (not a secure context): slots cannot be guarded */
  guarded: boolean;
  release(): void;
}

/** `?slot=n` → n; null when absent; throws SlotParamError when malformed. */
export function parseSlotParam(search: string): number | null {
  const raw = new URLSearchParams(search).get('slot');
  if (raw === null) return null;
  if (!/^\d{1,2}$/.test(raw) || Number(raw) >= MAX_SLOTS) throw new SlotParamError(raw);
  return Number(raw);
}

/** Hold the lock for `slot`; resolves to its release function, or null when it stays taken. */
function acquire(slot: number, waitMs: number): Promise<(() => void) | null> {
  return new Promise((resolve, reject) => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const opts: LockOptions = waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true };
    navigator.locks
      .request(LOCK_PREFIX + slot, opts, async (lock) => {
        if (!lock) return resolve(null);
        resolve(release);
        await held; // the lock is held until release() or the page goes away
      })
      .catch((e: unknown) => {
        const name = (e as { name?: string }).name;
        if (name === 'TimeoutError' || name === 'AbortError') resolve(null);
        else reject(e);
      });
  });
}

function remembered(): number | null {
  try {
    const v = sessionStorage.getItem(SESSION_KEY);
    return v !== null && /^\d{1,2}$/.test(v) && Number(v) < MAX_SLOTS ? Number(v) : null;
  } catch {
    return null;
  }
}

function remember(slot: number): void {
  try {
    sessionStorage.setItem(SESSION_KEY, String(slot));
  } catch {
    /* storage blocked: the tab just won't prefer its old slot after a reload */
  }
}

export async function claimSlot(forced: number | null): Promise<SlotClaim> {
  if (typeof navigator === 'undefined' || !navigator.locks) {
    // no Web Locks (plain http on a LAN address): one unguarded slot
    return { slot: forced ?? 0, guarded: false, release: () => {} };
  }
  if (forced !== null) {
    const release = await acquire(forced, SLOT_WAIT_MS);
    if (!release) throw new SlotTakenError(forced);
    remember(forced);
    return { slot: forced, guarded: true, release };
  }
  const previous = remembered();
  if (previous !== null) {
    const release = await acquire(previous, SLOT_WAIT_MS);
    if (release) return { slot: previous, guarded: true, release };
  }
  for (let n = 0; n < MAX_SLOTS; n++) {
    const release = await acquire(n, 0);
    if (release) {
      remember(n);
      return { slot: n, guarded: true, release };
    }
  }
  throw new SlotsExhaustedError();
}
