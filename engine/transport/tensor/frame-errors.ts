/** X08 failure reasons (tensor-and-inference digest A4) and the typed error that carries them (split out of frame.ts). */
import { HnError, isErrorCode, type ErrorCode } from '../../core/errors.js';

/** NACK tokens of digest A4, plus the ones the session sends for HELLO failures. */
export type NackReason =
  | 'bad_frame'
  | 'unknown_frame_type'
  | 'tensor_too_large'
  | 'seq_gap'
  | 'shape_mismatch'
  | 'decompress_failed'
  | 'window_overrun'
  | 'purpose_mismatch'
  | 'timeout';
export const NACK_REASONS: readonly NackReason[] = [
  'bad_frame',
  'unknown_frame_type',
  'tensor_too_large',
  'seq_gap',
  'shape_mismatch',
  'decompress_failed',
  'window_overrun',
  'purpose_mismatch',
  'timeout',
];

/** Engine error code carried by an X08Error of each reason (seed codes where the seed has one). */
const REASON_CODE: Record<NackReason, ErrorCode> = {
  bad_frame: 'bad_request',
  unknown_frame_type: 'unknown_frame_type',
  tensor_too_large: 'tensor_too_large',
  seq_gap: 'bad_request',
  shape_mismatch: 'bad_request',
  decompress_failed: 'bad_request',
  window_overrun: 'bad_request',
  purpose_mismatch: 'unauthorized',
  timeout: 'timeout',
};

/** X08 reason of a failure: a NACK token of A4, or a token/engine error code (HELLO failures). */
export type X08Reason = NackReason | ErrorCode;

const isNackReason = (x: string): x is NackReason => (NACK_REASONS as readonly string[]).includes(x);

/**
 * The typed X08 failure. `reason` is what goes into the NACK (or came out of one); `code` is the engine
 * error code (`tensor_too_large`, `unknown_frame_type`, token codes, else `bad_request`).
 */
export class X08Error extends HnError {
  readonly reason: X08Reason;
  constructor(reason: X08Reason, message?: string) {
    const code: ErrorCode = isNackReason(reason) ? REASON_CODE[reason] : reason;
    super(code, message ?? reason, { details: { reason } });
    this.name = 'X08Error';
    this.reason = reason;
  }
}

export const isX08Reason = (x: string): x is X08Reason => isNackReason(x) || isErrorCode(x);
