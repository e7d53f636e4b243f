/**
 * Every constant of seed §5 (Phase 3), by its exact name and value, plus the core's
 * own constants (core digest §10.4). Constants are not configurable.
 */

// --- Distributed inference (M26) ---
export const DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE = 16;
export const DISTRIBUTED_LLM_SHARD_HEARTBEAT_SECONDS = 5;
export const DISTRIBUTED_LLM_FAILOVER_TIMEOUT_SECONDS = 10;
export const DISTRIBUTED_LLM_MAX_PIPELINE_LATENCY_TOKENS_PER_S = 2.0; // advisory floor
export const DISTRIBUTED_LLM_DEFAULT_DTYPE = 'fp16';
// --- MoE routing (M27) ---
export const MOE_TOP_K_DEFAULT = 3;
export const MOE_LEARNED_SCORER_MIN_FEEDBACK_SAMPLES = 200;
export const MOE_HUMAN_HANDOFF_DEFAULT_TIMEOUT_HOURS = 24;
export const MOE_HUMAN_HANDOFF_COOLDOWN_HOURS = 2;
export const MOE_HUMAN_RATE_LIMIT_PER_DAY = 5;
// --- Federated learning (M28) ---
export const FEDLEARN_MAX_LORA_RANK = 64;
export const FEDLEARN_MAX_LORA_TARGET_MODULES = 8;
export const FEDLEARN_MAX_TRAIN_STEPS = 1000;
export const FEDLEARN_MAX_PARTICIPANTS = 32;
export const FEDLEARN_MIN_PARTICIPANTS = 3;
export const FEDLEARN_DP_NOISE_SCALE_DEFAULT = 0.0; // off
export const FEDLEARN_CLIP_NORM_DEFAULT = 1.0;
export const FEDLEARN_SUBMISSION_MAX_BYTES = 64 * 1024 * 1024;
// --- LoRa beacons (M29) ---
export const LORA_BEACON_PERIOD_SECONDS_DEFAULT = 600; // 10 min
export const LORA_BEACON_MAX_PAYLOAD_BYTES = 32;
export const LORA_RX_QUEUE_MAX = 256;
export const LORA_PEER_RX_MAX_PER_MINUTE = 20;
export const LORA_PANIC_BURST_COUNT = 3;
export const LORA_PANIC_BURST_GAP_MS = 800;
// --- Evidence (M30) ---
export const EVIDENCE_CLAIM_TTL_DAYS_DEFAULT = 365;
export const EVIDENCE_DISPUTE_MIN_TRUST = 0.3;
export const EVIDENCE_MAX_PROVENANCE_DEPTH = 8;
// --- Civil defense (M31) ---
export const CIVDEF_AUDIT_RETENTION_YEARS = 10; // operator must validate against current law
export const CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE = 5;
export const CIVDEF_ALERT_TITLE_MAX_CHARS = 80;
export const CIVDEF_ALERT_BODY_MAX_CHARS = 1000;
// --- Tensor transport (X08) ---
export const TENSOR_CHUNK_BYTES = 1 * 1024 * 1024; // 1 MiB
export const TENSOR_FLOW_CONTROL_WINDOW = 16;
export const TENSOR_COMPRESSION_THRESHOLD_BYTES = 64 * 1024;
export const TENSOR_KEEPALIVE_SECONDS = 30;
export const TENSOR_MAX_SESSION_LIFETIME_SECONDS = 3600;
// --- Conformance suite (X09) ---
export const CONFORMANCE_DEFAULT_SEED = 0xc0ffee;
export const CONFORMANCE_DEFAULT_OUTPUT_DIR = './conformance-report';

// --- Core (Phase 1/2 names kept; core digest §10.4) ---
export const MANIFEST_TTL_SECONDS = 30;
export const MANIFEST_REPUBLISH_INTERVAL_SECONDS = 20;
export const CONNECTION_IDLE_SECONDS = 60;
export const RECONNECT_BACKOFF_CAP_SECONDS = 30;
export const STREAM_WINDOW_FRAMES = 16;
export const STREAM_ACK_INTERVAL_FRAMES = 8;
export const STREAM_ACK_TIMEOUT_SECONDS = 5;
export const RPC_DEFAULT_TIMEOUT_SECONDS = 30;
export const LLM_GENERATION_DEFAULT_TIMEOUT_SECONDS = 120;
export const CHUNK_SIZE_BYTES = 262144;
export const HEALTH_WINDOW_CALLS = 100;
export const HEALTH_QUARANTINE_THRESHOLD = 0.5;
export const HEALTH_QUARANTINE_SECONDS = 60;
export const RATE_LIMIT_SOFT_RPS_PER_CAP = 10;
export const RATE_LIMIT_HARD_RPS_PER_CAP = 100;
export const RATE_LIMIT_SOFT_RPS_TOTAL = 100;
export const RATE_LIMIT_HARD_RPS_TOTAL = 1000;
export const TRACE_RING_BUFFER = 10000;
export const TOKEN_DEFAULT_TTL_SECONDS = 3600;
export const TOKEN_MAX_TTL_SECONDS = 86400;
export const WEBSOCKET_PING_SECONDS = 30;
export const WEBSOCKET_IDLE_CLOSE_SECONDS = 120;

// --- This implementation's own (core digest §10.4 "Ours") ---
export const LINK_FRAGMENT_BYTES = 65536;
export const LINK_CONTROL_MAX_BYTES = 1048576;
export const LINK_HANDSHAKE_TIMEOUT_SECONDS = 10;
export const PEER_PRUNE_SECONDS = 90;
export const REGISTRY_FRESHNESS_SECONDS = 60;
export const CANCEL_DEADLINE_MS = 200;
export const SIG_VERIFY_CACHE_SECONDS = 60;
export const CALL_SKEW_PAST_SECONDS = 300;
export const CALL_SKEW_FUTURE_SECONDS = 60;
export const REQUEST_REPLAY_WINDOW_SECONDS = 600;
export const EVENT_MAX_BYTES = 65536;
export const SYNC_BATCH_MAX_EVENTS = 256;
export const SYNC_BATCH_MAX_BYTES = 1048576;
export const LAMPORT_MAX_JUMP = 1000000;
export const PENDING_EVENTS_MAX = 10000;
export const CONTRACT_VERSION = '3.0';
