#!/usr/bin/env python3
"""Known answers for ike::crypto, computed independently of the Rust code
with nothing but Python's standard library (hmac, hashlib, pow).

    python3 ike/tests/vectors/ikev2_vectors.py > ike/tests/vectors/ikev2_vectors.txt

Each output line is `name hex`. The inputs are fixed, arbitrary values; the
formulas are those of RFC 7296 (2.13 prf+, 2.14 SKEYSEED and SK_*, 2.15
AUTH, 2.17 KEYMAT, 2.18 rekey, 2.23 NAT detection) and RFC 3526 (MODP).
"""
import hashlib
import hmac
import ipaddress

H = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def prf(alg, key, data):
    return hmac.new(key, data, H[alg]).digest()


def prf_plus(alg, key, seed, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        assert i <= 255
        t = prf(alg, key, t + seed + bytes([i]))
        out += t
        i += 1
    return out[:n]


def emit(name, b):
    print(name, b.hex())


ni = bytes(range(0x10, 0x30))          # 32 octets
nr = bytes(range(0x80, 0xa0))          # 32 octets
spi_i = bytes.fromhex("0102030405060708")
spi_r = bytes.fromhex("a1a2a3a4a5a6a7a8")
g_ir = bytes.fromhex("42" * 32)        # stands in for a shared secret

# prf+ over several blocks.
emit("prfplus_sha256_key", b"prf+ key")
emit("prfplus_sha256_seed", b"prf+ seed")
emit("prfplus_sha256_out", prf_plus("sha256", b"prf+ key", b"prf+ seed", 100))

# IKE SA keys. Suite A: AES_GCM_16 256 (SK_e 32+4 salt), no integrity,
# PRF_HMAC_SHA2_256 (SK_d/SK_p 32). Suite B: AES_CBC 128 (SK_e 16),
# AUTH_HMAC_SHA2_512_256 (SK_a 64), PRF_HMAC_SHA2_384 (SK_d/SK_p 48).
keys = {}
for name, alg, d, a, e in [("a", "sha256", 32, 0, 36), ("b", "sha384", 48, 64, 16)]:
    skeyseed = prf(alg, ni + nr, g_ir)
    emit(f"suite_{name}_skeyseed", skeyseed)
    lens = [d, a, a, e, e, d, d]
    km = prf_plus(alg, skeyseed, ni + nr + spi_i + spi_r, sum(lens))
    pos = 0
    for key, n in zip(["sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"], lens):
        keys[(name, key)] = km[pos:pos + n]
        emit(f"suite_{name}_{key}", keys[(name, key)])
        pos += n

# Child SA KEYMAT from suite A's SK_d. Without PFS: ESP AES_GCM_16 128
# (20 octets per direction, no integrity). With PFS: ESP AES_CBC 128 +
# HMAC_SHA1_96 (16 + 20 per direction).
sk_d = keys[("a", "sk_d")]
cni = bytes(range(0x30, 0x50))
cnr = bytes(range(0x50, 0x70))
child_g_ir = bytes.fromhex("77" * 256)
emit("child_ni", cni)
emit("child_nr", cnr)
emit("child_g_ir", child_g_ir)
emit("child_nopfs_keymat", prf_plus("sha256", sk_d, cni + cnr, 40))
emit("child_pfs_keymat", prf_plus("sha256", sk_d, child_g_ir + cni + cnr, 72))

# Rekeyed IKE SA: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the
# old SA's PRF (suite A: SHA2-256).
emit("rekey_skeyseed", prf("sha256", sk_d, child_g_ir + cni + cnr))

# Shared-key AUTH (RFC 7296 2.15), PRF HMAC-SHA2-256, suite A's SK_pi.
sk_pi = keys[("a", "sk_pi")]
msg1 = b"IKE_SA_INIT request bytes"
id_body = bytes([2, 0, 0, 0]) + b"initiator.example"   # ID_FQDN
psk = b"a shared secret"
signed = msg1 + nr + prf("sha256", sk_pi, id_body)
emit("auth_message", msg1)
emit("auth_id_body", id_body)
emit("auth_psk", psk)
emit("auth_signed_octets", signed)
emit("auth_value", prf("sha256", prf("sha256", psk, b"Key Pad for IKEv2"), signed))

# NAT detection (RFC 7296 2.23).
for name, ip, port in [("v4", "192.0.2.1", 500), ("v6", "2001:db8::1", 4500)]:
    emit(f"nat_{name}", hashlib.sha1(spi_i + spi_r + ipaddress.ip_address(ip).packed + port.to_bytes(2, "big")).digest())


# MODP (RFC 2409, RFC 3526): p = 2^n - 2^(n-64) - 1 + 2^64 * ([2^(n-130) pi] + offset),
# pi computed here with Machin's formula; generator 2. Exponents are fixed
# 512-bit values with the top bit set (as the Rust code sets it).
def pi_bits(bits):
    guard = 64
    one = 1 << (bits + guard)

    def atan_inv(x):
        s, term, n, sign = 0, one // x, 1, 1
        while term:
            s += sign * (term // n)
            term //= x * x
            n += 2
            sign = -sign
        return s

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> guard


x_i = int.from_bytes(bytes([0x80 | 0x11]) + bytes(range(1, 64)), "big")
x_r = int.from_bytes(bytes([0xc3]) + bytes(range(200, 255)) + bytes(8), "big")
assert x_i >> 511 == 1 and x_r >> 511 == 1
emit("modp_x_i", x_i.to_bytes(64, "big"))
emit("modp_x_r", x_r.to_bytes(64, "big"))
for n, off in [
    (2048, 124476), (3072, 1690314), (4096, 240904),
    # RFC 2409 group 2, RFC 3526 groups 5, 17 and 18.
    (1024, 129093), (1536, 741804), (6144, 929484), (8192, 4743158),
]:
    p = 2**n - 2**(n - 64) - 1 + 2**64 * (pi_bits(n - 130) + off)
    ln = n // 8
    gi, gr = pow(2, x_i, p), pow(2, x_r, p)
    s = pow(gr, x_i, p)
    assert s == pow(gi, x_r, p)
    emit(f"modp{n}_g_i", gi.to_bytes(ln, "big"))
    emit(f"modp{n}_g_r", gr.to_bytes(ln, "big"))
    emit(f"modp{n}_shared", s.to_bytes(ln, "big"))
