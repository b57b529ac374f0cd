#!/usr/bin/env python3
"""Independent numpy reference for the ggml block formats.

Each dequantizer below is written from the block layout (ggml's published
format: field order, nibble and bit placement, 6-bit K-quant scales), not from
zipcache's C. Random blocks are built here (random bytes with finite fp16
scales), written to a file, dequantized by
`$ZIPCACHE_BUILD/tests/test_ggml_blocks --dequant TYPE in out`, and the C
output must equal the numpy output bit for bit. Float operations are done in
float32 in the order ggml evaluates them (for example Q6_K is (d*scale)*q), so
exact equality is the right bar.

The q8_0/q4_0/q4_1/q5_0/q5_1 quantizers follow ggml's quantize_row_*_ref
(round half away from zero for q8_0; truncation of x*id + 8.5 for q4_0, and so
on), and the C quantizer must produce the same bytes.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

F32 = np.float32
RNG = np.random.default_rng(20241123)
BUILD = os.environ.get("ZIPCACHE_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BIN = os.path.join(BUILD, "tests", "test_ggml_blocks")

# type: (elements per block, bytes per block)
LAYOUT = {"f32": (1, 4), "f16": (1, 2), "bf16": (1, 2), "q8_0": (32, 34), "q4_0": (32, 18),
          "q4_1": (32, 20), "q5_0": (32, 22), "q5_1": (32, 24), "q4_K": (256, 144),
          "q5_K": (256, 176), "q6_K": (256, 210)}


def half(raw):
    """uint8 [..., 2] little-endian fp16 -> float32 [...]"""
    return np.ascontiguousarray(raw).view("<f2").astype(F32)[..., 0]


def random_half(n, lo=-6, hi=2):
    """n finite fp16 values as uint8 [n, 2]: random sign and mantissa, exponent in [2^lo, 2^hi)."""
    v = RNG.uniform(1, 2, n) * np.exp2(RNG.integers(lo, hi, n)) * RNG.choice([-1, 1], n)
    v[RNG.random(n) < 0.02] = 0.0
    return v.astype("<f2").view(np.uint8).reshape(n, 2)


# ---- dequantization from the layout ---------------------------------------

def deq_f32(b):
    return b.reshape(-1).view("<f4").astype(F32)


def deq_f16(b):
    return b.reshape(-1).view("<f2").astype(F32)


def deq_bf16(b):
    return (b.reshape(-1).view("<u2").astype(np.uint32) << 16).view(F32)


def deq_q8_0(b):  # d, qs[32]
    d = half(b[:, 0:2])
    q = b[:, 2:34].view(np.int8).astype(F32)
    return (q * d[:, None]).reshape(-1)


def nibbles(qs):
    """qs [nb, 16] -> codes [nb, 32]: low nibbles are elements 0..15, high 16..31"""
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)


def fifth_bits(qh):
    """qh [nb, 4] little-endian uint32; bit j belongs to element j"""
    word = qh.astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16, 1 << 24], dtype=np.uint32)
    return ((word[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)


def deq_q4_0(b):  # d, qs[16]
    d = half(b[:, 0:2])
    return ((nibbles(b[:, 2:18]) - 8).astype(F32) * d[:, None]).reshape(-1)


def deq_q4_1(b):  # d, m, qs[16]
    d, m = half(b[:, 0:2]), half(b[:, 2:4])
    return (nibbles(b[:, 4:20]).astype(F32) * d[:, None] + m[:, None]).reshape(-1)


def deq_q5_0(b):  # d, qh[4], qs[16]
    d = half(b[:, 0:2])
    q = nibbles(b[:, 6:22]) | fifth_bits(b[:, 2:6]) << 4
    return ((q - 16).astype(F32) * d[:, None]).reshape(-1)


def deq_q5_1(b):  # d, m, qh[4], qs[16]
    d, m = half(b[:, 0:2]), half(b[:, 2:4])
    q = nibbles(b[:, 8:24]) | fifth_bits(b[:, 4:8]) << 4
    return (q.astype(F32) * d[:, None] + m[:, None]).reshape(-1)


def k_scales(s):
    """scales[12] of Q4_K/Q5_K -> (scale[8], min[8]) of 6 bits each.

    Bytes 0..3: low 6 bits = scale 0..3, top 2 bits = high bits of scale 4..7.
    Bytes 4..7: low 6 bits = min 0..3, top 2 bits = high bits of min 4..7.
    Bytes 8..11: low nibble = low 4 bits of scale 4..7, high nibble = of min 4..7.
    """
    s = s.astype(np.int32)
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | (s[:, 0:4] >> 6) << 4], axis=1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | (s[:, 4:8] >> 6) << 4], axis=1)
    return sc, mn


def k4_codes(qs):
    """qs[128] -> 8 sub-blocks of 32 codes: chunk c of 32 bytes gives sub-block 2c (low nibbles)
    and 2c+1 (high nibbles)"""
    c = qs.reshape(-1, 4, 32).astype(np.int32)
    return np.stack([c & 15, c >> 4], axis=2).reshape(-1, 8, 32)


def k_combine(d, dmin, sc, mn, q):
    d1 = d[:, None] * sc.astype(F32)   # [nb, 8]
    m1 = dmin[:, None] * mn.astype(F32)
    return (d1[:, :, None] * q.astype(F32) - m1[:, :, None]).reshape(-1)


def deq_q4_K(b):  # d, dmin, scales[12], qs[128]
    sc, mn = k_scales(b[:, 4:16])
    return k_combine(half(b[:, 0:2]), half(b[:, 2:4]), sc, mn, k4_codes(b[:, 16:144]))


def deq_q5_K(b):  # d, dmin, scales[12], qh[32], qs[128]
    sc, mn = k_scales(b[:, 4:16])
    qh = b[:, 16:48].astype(np.int32)  # bit s of qh[l] is the fifth bit of element l of sub-block s
    high = (qh[:, None, :] >> np.arange(8)[None, :, None]) & 1
    return k_combine(half(b[:, 0:2]), half(b[:, 2:4]), sc, mn, k4_codes(b[:, 48:176]) | high << 4)


def deq_q6_K(b):  # ql[128], qh[64], scales[16] int8, d
    d = half(b[:, 208:210])
    sc = b[:, 192:208].view(np.int8).astype(F32)
    out = np.empty((b.shape[0], 256), dtype=F32)
    for h in range(2):  # two halves of 128 elements
        ql = b[:, 64 * h:64 * h + 64].astype(np.int32)
        qh = b[:, 128 + 32 * h:128 + 32 * h + 32].astype(np.int32)
        for k in range(4):  # quarter k of the half: 32 elements
            low = ql[:, 32 * (k & 1):32 * (k & 1) + 32]
            low = low & 15 if k < 2 else low >> 4
            q = (low | ((qh >> (2 * k)) & 3) << 4) - 32
            for g in range(2):  # 16 elements per scale
                s = sc[:, 8 * h + 2 * k + g]
                lo = 128 * h + 32 * k + 16 * g
                out[:, lo:lo + 16] = (d * s)[:, None] * q[:, 16 * g:16 * g + 16].astype(F32)
    return out.reshape(-1)


DEQ = {"f32": deq_f32, "f16": deq_f16, "bf16": deq_bf16, "q8_0": deq_q8_0, "q4_0": deq_q4_0,
       "q4_1": deq_q4_1, "q5_0": deq_q5_0, "q5_1": deq_q5_1, "q4_K": deq_q4_K, "q5_K": deq_q5_K,
       "q6_K": deq_q6_K}

# byte offsets of the fp16 fields of each format (everything else is random bytes)
HALF_FIELDS = {"q8_0": [0], "q4_0": [0], "q4_1": [0, 2], "q5_0": [0], "q5_1": [0, 2],
               "q4_K": [0, 2], "q5_K": [0, 2], "q6_K": [208]}


def random_blocks(name, nb):
    elems, size = LAYOUT[name]
    if name == "f32":
        return RNG.standard_normal(nb).astype("<f4").view(np.uint8).reshape(nb, 4)
    if name == "f16":
        return random_half(nb, -24, 16)
    if name == "bf16":  # any pattern but NaN (NaN payloads need not survive)
        u = RNG.integers(0, 1 << 16, nb, dtype=np.uint32)
        u[(u & 0x7f80) == 0x7f80] &= 0x3fff
        return u.astype("<u2").view(np.uint8).reshape(nb, 2)
    b = RNG.integers(0, 256, (nb, size), dtype=np.uint8)
    for off in HALF_FIELDS[name]:
        b[:, off:off + 2] = random_half(nb)
    return b


# ---- ggml's reference quantizers ------------------------------------------

def to_half(v):
    return v.astype(F32).astype("<f2")  # numpy rounds to nearest even


def round_away(v):
    """roundf: half away from zero (computed in float64 so v + 0.5 cannot round)"""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def inv(d):
    with np.errstate(divide="ignore"):
        return np.where(d != 0, F32(1) / d, F32(0)).astype(F32)


def signed_absmax(x):
    """the first element of largest magnitude, with its sign"""
    return x[np.arange(x.shape[0]), np.argmax(np.abs(x), axis=1)]


def pack_nibbles(q):
    return (q[:, :16] | q[:, 16:] << 4).astype(np.uint8)


def pack_fifth(q):
    bits = ((q >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
    return bits.sum(axis=1, dtype=np.uint32).astype("<u4").view(np.uint8).reshape(-1, 4)


def halves(*vals):
    return [to_half(v).view(np.uint8).reshape(-1, 2) for v in vals]


def quant_q8_0(x):
    d = np.abs(x).max(axis=1) / F32(127)
    q = round_away(x * inv(d)[:, None]).astype(np.int8).view(np.uint8)
    return np.concatenate(halves(d) + [q], axis=1)


def quant_q4_0(x):
    d = signed_absmax(x) / F32(-8)
    q = np.minimum(15, np.trunc(x * inv(d)[:, None] + F32(8.5)).astype(np.int32))
    return np.concatenate(halves(d) + [pack_nibbles(q)], axis=1)


def quant_q5_0(x):
    d = signed_absmax(x) / F32(-16)
    q = np.minimum(31, np.trunc(x * inv(d)[:, None] + F32(16.5)).astype(np.int32))
    return np.concatenate(halves(d) + [pack_fifth(q), pack_nibbles(q & 15)], axis=1)


def quant_q4_1(x):
    mn, mx = x.min(axis=1), x.max(axis=1)
    d = (mx - mn) / F32(15)
    q = np.minimum(15, np.trunc((x - mn[:, None]) * inv(d)[:, None] + F32(0.5)).astype(np.int32))
    return np.concatenate(halves(d, mn) + [pack_nibbles(q)], axis=1)


def quant_q5_1(x):
    mn, mx = x.min(axis=1), x.max(axis=1)
    d = (mx - mn) / F32(31)
    q = np.trunc((x - mn[:, None]) * inv(d)[:, None] + F32(0.5)).astype(np.int32)
    return np.concatenate(halves(d, mn) + [pack_fifth(q), pack_nibbles(q & 15)], axis=1)


QUANT = {"q8_0": quant_q8_0, "q4_0": quant_q4_0, "q4_1": quant_q4_1, "q5_0": quant_q5_0,
         "q5_1": quant_q5_1}


def random_activations(nb):
    """blocks of 32 with a spread of scales, plus all-zero blocks, blocks with
    exact ties (multiples of a power of two) and blocks of one repeated value"""
    x = RNG.standard_normal((nb, 32)) * np.exp2(RNG.integers(-8, 8, nb))[:, None]
    x[0] = 0
    x[1] = RNG.integers(-8, 8, 32) / 2.0
    x[2] = 3.0
    x[3] = -3.0
    x[4, 5], x[4, 6] = -10.0, 10.0  # equal magnitudes: the first one wins
    x[5] = np.arange(32) - 15.5  # with 127 below: q8_0 has d = 1 and ties at every code
    x[5, 0] = 127.0
    return x.astype(F32)


def run(mode, name, data, tmp):
    src, dst = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
    data.tofile(src)
    r = subprocess.run([BIN, mode, name, src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{mode} {name}: exit {r.returncode}: {r.stderr.strip()}")
    return np.fromfile(dst, dtype=np.uint8)


def main():
    if not os.access(BIN, os.X_OK):
        for name in DEQ:
            print(f"SKIP dequant_{name}: {BIN} not built")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, deq in DEQ.items():
            elems, _ = LAYOUT[name]
            nb = 4096 // elems * 8
            blocks = random_blocks(name, nb)
            want = deq(blocks).astype("<f4")
            got = run("--dequant", name, blocks, tmp).view("<f4")
            # compare bit patterns: NaN == NaN and -0 != +0 both matter here
            bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32)) if got.size == want.size else [0]
            ok = len(bad) == 0
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} dequant_{name}")
            if not ok:
                i = bad[0]
                print(f"  {len(bad)} of {want.size} differ; first at {i}: C {got[i]!r} numpy {want[i]!r}",
                      file=sys.stderr)
        for name, quant in QUANT.items():
            x = random_activations(512)
            want = quant(x).reshape(-1)
            got = run("--quant", name, x.reshape(-1), tmp)
            bad = np.flatnonzero(got != want) if got.size == want.size else [0]
            ok = len(bad) == 0
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} quant_{name}")
            if not ok:
                blk = bad[0] // LAYOUT[name][1]
                print(f"  {len(bad)} bytes differ; first in block {blk}: C {got.reshape(-1, LAYOUT[name][1])[blk]}"
                      f" numpy {want.reshape(-1, LAYOUT[name][1])[blk]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
