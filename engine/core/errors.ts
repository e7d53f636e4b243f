/**
 * One error type for the whole engine. Every failure carries a code from `ErrorCode`;
 * codes are the seed's §6 Phase-3 codes plus the core's generic ones (core digest §4.8),
 * event rejection reasons (§6.3), registration (§4.2), config (§10.2) and token codes (§7.2).
 */

export const ERROR_MESSAGES = {
  // --- generic (wire) ---
  bad_request: 'The request is malformed or violates the protocol.',
  schema_mismatch: 'The body does not match the capability schema, or no compatible version is offered.',
  invalid_signature: 'A signature does not verify, or the sender is not who it claims to be.',
  unauthorized: 'The caller is not allowed to do this.',
  revoked: 'The caller or the issuing authority has been revoked.',
  expired: 'The message, manifest or invite is too old or not yet valid.',
  not_found: 'The capability or resource is not offered here.',
  not_implemented: 'The capability is registered but its backend is missing.',
  timeout: 'The deadline passed before the call finished.',
  partition: 'The peer or link is unreachable.',
  capacity_exceeded: 'The capability is at its concurrency limit; retry later.',
  rate_limited: 'Too many requests; retry later.',
  internal_error: 'The handler failed unexpectedly.',
  token_invalid: 'The token is not valid for this community.',
  token_expired: 'The token has expired or is used up.',
  token_scope_insufficient: 'The token does not cover this capability or parameter.',
  token_revoked: 'The token has been revoked.',
  // --- token verification, local codes (core §7.2; mapped to the wire codes above by engine/tokens) ---
  token_malformed: 'The token is not a well-formed hntoken.',
  token_signature_bad: 'The token signature does not verify.',
  token_not_yet_valid: 'The token is not valid yet.',
  token_audience_mismatch: 'The token is meant for another community.',
  token_issuer_revoked: 'The token issuer has been revoked.',
  relay_unreachable: 'The relay is down while a relayed link was required.',
  // --- seed §6, shared ---
  experimental_disabled: 'This experimental module is switched off on this node.',
  // --- seed §6, M26 ---
  shard_unavailable: 'No replica hosts the required layer range.',
  shard_unreachable: 'All replicas of a shard failed to connect.',
  pipeline_failed: 'The in-flight pipeline failed.',
  pipeline_cancelled: 'The pipeline was cancelled by the caller.',
  // --- seed §6, X08 ---
  tensor_too_large: 'The tensor exceeds the receive buffer limit.',
  unknown_frame_type: 'The frame type is outside the defined set.',
  // --- seed §6, M27 ---
  expert_unknown: 'The referenced expert is not registered.',
  expert_unavailable: 'The expert is outside its availability window.',
  human_handoff_declined: 'The human expert declined the handoff.',
  human_handoff_timed_out: 'The handoff timed out without an answer.',
  // --- seed §6, M28 ---
  consent_required: 'Joining needs explicit operator consent.',
  base_model_mismatch: 'The local base model differs from the round manifest.',
  insufficient_resources: 'The estimated memory or disk exceeds the budget.',
  delta_invalid: 'The submitted delta fails structural validation.',
  fedlearn_aggregation_failed: 'Aggregation produced NaN or Inf.',
  fedlearn_min_participants_unmet: 'The round closed below quorum.',
  fedlearn_aggregator_unreachable: 'The coordinator is offline.',
  adapter_not_found: 'No adapter with that SHA is known.',
  // --- seed §6, M29 ---
  lora_hardware_unavailable: 'No LoRa stick is present.',
  lora_hardware_unsupported: 'The LoRa adapter failed to initialise.',
  lora_duty_cycle_exhausted: 'The duty-cycle budget is empty.',
  lora_peer_unknown: 'No beacon from that sender hash has been seen.',
  lora_peer_conflict: 'The verification would create a conflicting binding.',
  lora_frame_malformed: 'The received LoRa frame is structurally invalid.',
  // --- seed §6, M30 ---
  claim_not_found: 'No claim with that ID is known.',
  claim_signature_invalid: 'The claim signature does not verify.',
  evidence_cycle_detected: 'The derivation chain forms a cycle.',
  evidence_contradiction: 'Conflicting claims exist on the same triple.',
  ebkh_unavailable: 'The EBKH endpoint is unreachable.',
  // --- seed §6, M31 ---
  civdef_cert_not_owned: 'The certificate holder is not the caller.',
  civdef_cert_invalid: 'The certificate is expired, revoked or badly signed.',
  civdef_cert_unrecognised: 'The issuer chain does not reach a trust root.',
  civdef_cert_out_of_scope: 'The certificate lacks the requested role or region.',
  civdef_alert_not_found: 'No alert with that ID is known.',
  civdef_alert_target_invalid: 'The alert target is malformed or out of scope.',
  civdef_audit_chain_broken: 'The audit chain hash or signature does not match.',
  civdef_role_revoked: 'The role certificate has been revoked.',
  civdef_region_unsupported: 'No region adapter is loaded for that region.',
  civdef_ack_rate_limited: 'Too many acknowledgements; slow down.',
  // --- seed §6, M32 ---
  protocol_version_unknown: 'That protocol version is unknown.',
  protocol_suite_not_installed: 'The conformance suite is not installed.',
  protocol_descriptor_invalid: 'The implementation descriptor is malformed or badly signed.',
  protocol_unsupported_capability: 'No compatible major protocol version is shared.',
  // --- event receive (core §6.3) ---
  unknown_author: 'The event author is not a known member of the community.',
  revoked_author: 'The event author was revoked before this event.',
  schema_unknown: 'The event type is malformed.',
  out_of_order: 'The event clock jumps too far ahead.',
  data_invalid: 'The event data does not match its type schema.',
  chain_conflict: "The event conflicts with the author's hash chain.",
  community_mismatch: 'The event belongs to another community.',
  too_large: 'The message exceeds its size limit.',
  // --- bus registration (core §4.2), local only ---
  schema_invalid: 'The capability descriptor or its schema is invalid.',
  namespace_violation: 'The capability name is outside the registrable namespaces.',
  duplicate: 'A different capability with the same name and version is already registered.',
  // --- config (core §10.2) ---
  invalid_toml: 'The configuration file is not valid TOML.',
  invalid_field: 'A configuration field has an invalid value.',
  // --- identity / storage (core §2) ---
  keys_missing: 'The device key is missing.',
  keys_invalid: 'The stored device key is invalid.',
  bad_node_id: 'The NodeID is malformed.',
  storage_failed: 'The storage operation failed; nothing was written.',
  closed: 'The node or link is closed.',
} as const;

export type ErrorCode = keyof typeof ERROR_MESSAGES;
export const ERROR_CODES = Object.keys(ERROR_MESSAGES) as ErrorCode[];

/** Wire error object (core §4.8). */
export interface ErrorObject {
  error: ErrorCode;
  message?: string;
  retry_after_ms?: number;
  alt_capabilities?: string[];
  alt_nodes?: string[];
  schema_hash_expected?: string;
  field?: string;
  details?: Record<string, unknown>;
}

export class HnError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly retry_after_ms?: number;
  readonly details?: Record<string, unknown>;
  readonly extra: Omit<ErrorObject, 'error' | 'message'>;

  constructor(code: ErrorCode, message?: string, extra: Omit<ErrorObject, 'error' | 'message'> = {}) {
    super(message ?? ERROR_MESSAGES[code] ?? code);
    this.name = 'HnError';
    this.code = code;
    this.extra = extra;
    if (extra.field !== undefined) this.field = extra.field;
    if (extra.retry_after_ms !== undefined) this.retry_after_ms = extra.retry_after_ms;
    if (extra.details !== undefined) this.details = extra.details;
  }

  toObject(): ErrorObject {
    return { error: this.code, message: this.message.slice(0, 500), ...this.extra };
  }

  static fromObject(o: ErrorObject): HnError {
    const { error, message, ...extra } = o;
    const code = isErrorCode(error) ? error : 'internal_error';
    return new HnError(code, message, extra);
  }
}

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ERROR_MESSAGES, x);
}

/** Normalise anything thrown into an HnError; unknown throws become `internal_error` without stack text. */
export function toHnError(e: unknown): HnError {
  if (e instanceof HnError) return e;
  if (e && typeof e === 'object' && (e as { name?: string }).name === 'AbortError') {
    return new HnError('timeout', 'The call was aborted.');
  }
  return new HnError('internal_error');
}
