#!/usr/bin/env python3
"""Independent derivation of the M31 vectors (Python stdlib only; never generated from the engine).

merkle.json: RFC 9162 §2.1 MTH / PATH / PROOF written from the RFC text, leaves = UTF-8 of "leaf<i>".
cert_ids.json: cert_id = base32upper_nopad(SHA-256(JCS(cert minus cert_id, signature))) (digest §3);
for these ASCII-only bodies with integers, json.dumps(sort_keys, compact) is exactly RFC 8785 JCS.
Run: python3 conformance/vectors/civdef/derive.py  (rewrites both files)
"""
import base64, hashlib, json, os

H = lambda b: hashlib.sha256(b).digest()
def leaf(d): return H(b"\x00" + d)
def node(l, r): return H(b"\x01" + l + r)
def k_of(n):
    k = 1
    while k * 2 < n: k *= 2
    return k
def mth(D):
    n = len(D)
    if n == 0: return H(b"")
    if n == 1: return leaf(D[0])
    k = k_of(n)
    return node(mth(D[:k]), mth(D[k:]))
def path(m, D):
    n = len(D)
    if n <= 1: return []
    k = k_of(n)
    return path(m, D[:k]) + [mth(D[k:])] if m < k else path(m - k, D[k:]) + [mth(D[:k])]
def subproof(m, D, b):
    n = len(D)
    if m == n: return [] if b else [mth(D)]
    k = k_of(n)
    return subproof(m, D[:k], b) + [mth(D[k:])] if m <= k else subproof(m - k, D[k:], False) + [mth(D[:k])]

here = os.path.dirname(os.path.abspath(__file__))
trees = []
for n in range(1, 9):
    D = [f"leaf{i}".encode() for i in range(n)]
    trees.append({
        "size": n,
        "leaves_utf8": [d.decode() for d in D],
        "root": mth(D).hex(),
        "inclusion": [{"index": m, "path": [p.hex() for p in path(m, D)]} for m in range(n)],
        "consistency": [{"from_size": m, "from_root": mth(D[:m]).hex(), "proof": [p.hex() for p in subproof(m, D, True)]} for m in range(1, n + 1)],
    })
json.dump({"description": "RFC 9162 §2.1 Merkle trees over leaves 'leaf<i>' (derive.py)", "empty_root": H(b"").hex(), "trees": trees},
          open(os.path.join(here, "merkle.json"), "w"), indent=1)

def jcs(v): return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
holder = "ed25519:" + base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
issuer = "ed25519:" + base64.urlsafe_b64encode(bytes(range(32, 64))).decode().rstrip("=")
cases = []
for i, (role, region) in enumerate([
    ("DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter", "DE.NRW.Kleve.Issum"),
    ("DE.NRW.Kleve.KatS.Stabsleiter", "DE.NRW.Kleve"),
    ("DE.NRW.Wesel.THW.Helfer", "DE.NRW.Wesel"),
]):
    body = {"schema_version": 1, "holder": holder, "role": role, "region": region, "issuer": issuer,
            "issuer_chain": [issuer], "issued_at": "2026-01-01T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z",
            "scopes": ["alert.ack", "alert.publish"], "revocation_url": None}
    pre = jcs(body)
    cid = base64.b32encode(hashlib.sha256(pre.encode()).digest()).decode().rstrip("=")
    cases.append({"name": f"cert{i}", "body": body, "preimage_jcs": pre, "cert_id": cid})
json.dump({"description": "cert_id derivation (derive.py)", "cases": cases}, open(os.path.join(here, "cert_ids.json"), "w"), indent=1)
