#!/usr/bin/env python3
"""Independent derivation of the M28 (fedlearn) X09 vectors, in Python, from the digest's text alone
(no HearthNet code): manifest JCS + SHA-256 (§4), splitmix32 → xoshiro128** LoRA init (§7), FedAvg /
trimmed mean / median in float64 then float32 (§7), and canonical-safetensors delta validation
cases (§6). Run: python3 derive.py  (writes the JSON files beside it)."""
import base64, hashlib, json, math, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
M32 = 0xFFFFFFFF
SOURCE = lambda ref: {"kind": "independent", "ref": ref, "generated_by": "conformance/vectors/fedlearn/derive.py"}

def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]

def jcs(v):
    # RFC 8785 for the value types used here: ASCII strings, integers, and floats whose shortest
    # round-trip form Python's repr shares with ECMAScript (no exponents in these vectors)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + jcs(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return str(int(v)) if v == int(v) else repr(v)
    return json.dumps(v)

# ---- §4 manifest
manifest = {
    "t": "hn.fedlearn.manifest/1", "round_id": "01JD0000000000000000000000",
    "coordinator": "hn:" + "a" * 52, "base_model_id": "hn-tiny-decoder", "base_model_sha": "ab" * 32,
    "lora_target_modules": ["q_proj", "v_proj"], "lora_rank": 4, "lora_alpha": 8, "lora_dropout": 0,
    "train_steps": 60, "learning_rate": 0.01, "batch_size": 8, "seed": 42, "dp_noise_scale": 0,
    "clip_norm": 10, "min_participants": 3, "max_participants": 32, "deadline": "2026-03-01T13:00:00.000Z",
    "topic": "gardening", "consent_text": "I agree to train on my gardening notes.",
    "aggregator": "fedavg", "trim_fraction": 0.1, "secure": False, "objective": "next_token_loss", "freeze_a": False,
}
text = jcs(manifest)
json.dump({"source": SOURCE("M28 digest §4 RoundManifest (JCS, manifest_sha = SHA-256 of the bytes without coordinator_sig)"),
           "cases": [{"name": "plain", "manifest": manifest, "jcs": text,
                      "manifest_sha": hashlib.sha256(text.encode()).hexdigest()}]},
          open(os.path.join(HERE, "manifest.json"), "w"), indent=1)

# ---- §7 PRNG + init
def splitmix32(state):
    state = (state + 0x9E3779B9) & M32
    z = state
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
    return state, (z ^ (z >> 16)) & M32

def xoshiro(seed):
    st = seed & M32
    s = []
    for _ in range(4):
        st, out = splitmix32(st)
        s.append(out)
    rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & M32
    def u32():
        result = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result
    return u32

card = {"layers": 2, "modules": {"q_proj": [8, 8], "v_proj": [8, 4]}}
init_cases = []
for seed, rank in [(1, 2), (4294967295, 4)]:
    u = xoshiro(seed)
    names = sorted(f"layers.{i}.{m}.lora_{ab}" for i in range(card["layers"]) for m in card["modules"] for ab in "AB")
    tensors = {}
    for n in names:
        m = n.split(".")[2]
        d_in, d_out = card["modules"][m]
        if n.endswith("lora_A"):
            bound = 1 / math.sqrt(d_in)
            tensors[n] = {"shape": [rank, d_in], "values": [f32((2 * ((u() >> 8) * 2.0 ** -24) - 1) * bound) for _ in range(rank * d_in)]}
        else:
            tensors[n] = {"shape": [d_out, rank], "values": [0.0] * (d_out * rank)}
    u2 = xoshiro(seed)
    init_cases.append({"seed": seed, "rank": rank, "first_u32": [u2() for _ in range(4)], "tensors": tensors})
json.dump({"source": SOURCE("M28 digest §7 LoRA init (splitmix32 → xoshiro128**, float = (u32>>>8)·2^-24, A ~ U(±1/√d_in) in sorted tensor order, B = 0)"),
           "card": card, "cases": init_cases}, open(os.path.join(HERE, "init.json"), "w"), indent=1)

# ---- §7 aggregation
def combine(vals, w, method, beta):
    if method == "fedavg":
        return sum(wi * v for wi, v in zip(w, vals)) / sum(w)
    s = sorted(vals)
    if method == "median":
        n = len(s)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    k = math.floor(beta * len(s))
    kept = s[k:len(s) - k]
    return sum(kept) / len(kept)

subs = [
    {"participant": "hn:b", "num_samples": 3, "values": [f32(x) for x in [0.5, -1.25, 2.0, 0.1]]},
    {"participant": "hn:a", "num_samples": 1, "values": [f32(x) for x in [1.5, 0.25, -2.0, 0.3]]},
    {"participant": "hn:c", "num_samples": 2, "values": [f32(x) for x in [-0.5, 1.0, 1e6, 0.2]]},
    {"participant": "hn:e", "num_samples": 2, "values": [f32(x) for x in [0.75, 0.5, 1.0, -0.1]]},
    {"participant": "hn:d", "num_samples": 4, "values": [f32(x) for x in [0.0, -0.5, 3.0, 0.0]]},
]
S = sorted(subs, key=lambda s: s["participant"])
agg = []
for method, beta in [("fedavg", 0.1), ("trimmed_mean", 0.2), ("trimmed_mean", 0.1), ("median", 0.1)]:
    out = [f32(combine([s["values"][j] for s in S], [s["num_samples"] for s in S], method, beta)) for j in range(4)]
    agg.append({"method": method, "trim_fraction": beta, "expected_f32": out})
json.dump({"source": SOURCE("M28 digest §7 aggregation (sorted by NodeID, Float64, one F32 rounding)"),
           "submissions": subs, "cases": agg}, open(os.path.join(HERE, "aggregation.json"), "w"), indent=1)

# ---- §6 delta validation
def st(tensors, metadata, header_override=None, pad=b" "):
    names = sorted(tensors)
    header = {"__metadata__": metadata} if metadata else {}
    off = 0
    for n in names:
        shape, vals = tensors[n]
        header[n] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * len(vals)]}
        off += 4 * len(vals)
    if header_override: header_override(header)
    h = jcs(header).encode()
    h += pad * ((-len(h)) % 8)
    data = b"".join(struct.pack("<" + "f" * len(tensors[n][1]), *tensors[n][1]) for n in names)
    return struct.pack("<Q", len(h)) + h + data

meta = {"format": "hn.fedlearn.delta/1", "round_id": "01JD0000000000000000000000", "base_model_sha": "ab" * 32,
        "rank": "1", "alpha": "2", "target_modules": "q_proj"}
good = {"layers.0.q_proj.lora_A": ([1, 2], [0.1, -0.2]), "layers.0.q_proj.lora_B": ([2, 1], [0.05, 0.0])}
cases = []
def case(name, b, expect):
    cases.append({"name": name, "bytes_b64": base64.b64encode(b).decode(), "sha256": hashlib.sha256(b).hexdigest(), "expect": expect})
case("valid", st(good, meta), "ok")
case("wrong_base", st(good, {**meta, "base_model_sha": "cd" * 32}), "base_model_mismatch")
case("nan", st({**good, "layers.0.q_proj.lora_B": ([2, 1], [float("nan"), 0.0])}, meta), "delta_invalid")
case("missing_tensor", st({"layers.0.q_proj.lora_A": good["layers.0.q_proj.lora_A"]}, meta), "delta_invalid")
case("extra_tensor", st({**good, "layers.0.k_proj.lora_A": ([1, 2], [0.0, 0.0])}, meta), "delta_invalid")
case("bad_shape", st({**good, "layers.0.q_proj.lora_A": ([2, 1], [0.1, -0.2])}, meta), "delta_invalid")
def f16(h): h["layers.0.q_proj.lora_A"]["dtype"] = "F16"
case("f16", st(good, meta, f16), "delta_invalid")
case("non_canonical_header", st(good, meta, pad=b"\n"), "delta_invalid")
def hole(h): h["layers.0.q_proj.lora_B"]["data_offsets"] = [12, 20]
case("offset_hole", st(good, meta, hole), "delta_invalid")
case("truncated", st(good, meta)[:-4], "delta_invalid")
case("norm_over_bound", st({**good, "layers.0.q_proj.lora_B": ([2, 1], [100.0, 0.0])}, meta), "delta_invalid")
json.dump({"source": SOURCE("M28 digest §6 (canonical safetensors, coordinator checks 8-12)"),
           "expectation": {"round_id": meta["round_id"], "base_model_sha": meta["base_model_sha"], "rank": 1, "alpha": 2,
                           "target_modules": ["q_proj"], "card": {"layers": 1, "modules": {"q_proj": [2, 2]}},
                           "clip_norm": 1, "dp_noise_scale": 0},
           "cases": cases}, open(os.path.join(HERE, "delta_validation.json"), "w"), indent=1)
print("ok")
