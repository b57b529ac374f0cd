"""Independent numpy reference of the zipcache KV quantizers.

Written from the formulas in src/quant/kvquant.h and the ggml block
definitions, not from the C code. Every operation is float32 with
round-to-nearest-even, like the C: subtract, divide, rint (half to even),
clip; decode multiplies, then adds (then multiplies by the CSTQuant
normalizer). fp16 parameters: min rounded down, step rounded up.

quantize(fmt, x, bits, group, norm) returns (params, codes, y):
  params: list of float16 arrays in stored order
  codes:  uint8 [T, C] codes (None for q8_0 / q4_0)
  y:      float32 reconstruction
pack_rows(codes, bits) gives the packed bytes of each row, and blob() the
whole stored block, both laid out as kvquant.h / pack.h specify.
"""
import numpy as np

F32 = np.float32


def fp16_down(v):
    """Largest float16 <= v (elementwise)."""
    v = np.asarray(v, dtype=F32)
    with np.errstate(over="ignore"):
        h = v.astype(np.float16)
    up = h.astype(F32) > v
    h[up] = np.nextafter(h[up], np.float16(-np.inf))
    return h


def fp16_up(v):
    """Smallest float16 >= v."""
    return -fp16_down(-np.asarray(v, dtype=F32))


class Refused(Exception):
    pass


def fit(lo, hi, bits):
    """(min16, step16) for ranges [lo, hi] (arrays)."""
    lo = np.asarray(lo, F32) + F32(0)  # -0 -> +0
    hi = np.asarray(hi, F32) + F32(0)
    m = fp16_down(lo)
    with np.errstate(over="ignore", invalid="ignore"):
        s = fp16_up((hi - m.astype(F32)) / F32(2**bits - 1))
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s))):
        raise Refused("parameters outside fp16")
    return m, s


def encode(x, m, s, bits):
    """Codes of x against broadcastable fp16 parameters (m, s)."""
    m = np.broadcast_to(m.astype(F32), x.shape)
    s = np.broadcast_to(s.astype(F32), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint((x - m) / s)
    q = np.where(q > 0, q, F32(0))  # NaN -> 0
    q = np.minimum(q, F32(2**bits - 1))
    q = np.where(s == 0, F32(0), q)
    return q.astype(np.uint8)


def decode(codes, m, s):
    return codes.astype(F32) * s.astype(F32) + m.astype(F32)


def cst_norms(x, norm):
    a = np.max(np.abs(x), axis=0)
    n = (np.sqrt(a) if norm == "sqrt" else a).astype(F32)
    with np.errstate(over="ignore"):
        h = n.astype(np.float16)
    if not np.all(np.isfinite(h)):
        raise Refused("normalizer overflows fp16")
    h[h == 0] = np.float16(1)
    return h


def roundf(v):
    """C roundf: half away from zero, exact in float32."""
    r = np.trunc(v)
    frac = v - r
    return r + np.where(np.abs(frac) >= F32(0.5), np.sign(v), F32(0))


def q8_0(x):
    T, C = x.shape
    b = x.reshape(T, C // 32, 32)
    amax = np.max(np.abs(b), axis=2, keepdims=True)
    d = amax / F32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    q = roundf(b * inv).astype(np.int8)
    d16 = d.astype(np.float16)
    y = (q.astype(F32) * d16.astype(F32)).reshape(T, C)
    raw = np.concatenate([d16.view(np.uint8).reshape(T, C // 32, 2), q.view(np.uint8)], axis=2)
    return raw.reshape(T, -1), y


def q4_0(x):
    T, C = x.shape
    b = x.reshape(T, C // 32, 32)
    i = np.argmax(np.abs(b), axis=2)[..., None]  # first index of the largest |x|
    mx = np.take_along_axis(b, i, axis=2)
    d = mx / F32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    q = np.minimum(np.trunc(b * inv + F32(8.5)), F32(15)).astype(np.uint8)
    d16 = d.astype(np.float16)
    y = ((q.astype(F32) - F32(8)) * d16.astype(F32)).reshape(T, C)
    packed = q[..., :16] | (q[..., 16:] << 4)
    raw = np.concatenate([d16.view(np.uint8).reshape(T, C // 32, 2), packed], axis=2)
    return raw.reshape(T, -1), y


def quantize(fmt, x, bits=4, group=32, norm="sqrt"):
    x = np.asarray(x, F32)
    if not np.all(np.isfinite(x)):
        raise Refused("non-finite input")
    T, C = x.shape
    if fmt == "channel":
        m, s = fit(x.min(0), x.max(0), bits)
        c = encode(x, m, s, bits)
        return [m, s], c, decode(c, m, s)
    if fmt in ("cst", "token"):
        n = cst_norms(x, norm) if fmt == "cst" else None
        xn = x / n.astype(F32) if n is not None else x
        m, s = fit(xn.min(1), xn.max(1), bits)
        c = encode(xn, m[:, None], s[:, None], bits)
        y = decode(c, m[:, None], s[:, None])
        if n is not None:
            y = y * n.astype(F32)
            return [n, m, s], c, y
        return [m, s], c, y
    if fmt == "group-ch":
        ng = -(-C // group)
        ms, ss, c, y = np.empty((T, ng), np.float16), np.empty((T, ng), np.float16), np.empty((T, C), np.uint8), np.empty((T, C), F32)
        for g in range(ng):
            sl = slice(g * group, min(C, (g + 1) * group))
            xs = x[:, sl]
            ms[:, g], ss[:, g] = fit(xs.min(1), xs.max(1), bits)
            c[:, sl] = encode(xs, ms[:, g:g + 1], ss[:, g:g + 1], bits)
            y[:, sl] = decode(c[:, sl], ms[:, g:g + 1], ss[:, g:g + 1])
        return [ms, ss], c, y
    if fmt == "group-tok":
        ng = -(-T // group)
        ms, ss, c, y = np.empty((ng, C), np.float16), np.empty((ng, C), np.float16), np.empty((T, C), np.uint8), np.empty((T, C), F32)
        for g in range(ng):
            sl = slice(g * group, min(T, (g + 1) * group))
            xs = x[sl]
            ms[g], ss[g] = fit(xs.min(0), xs.max(0), bits)
            c[sl] = encode(xs, ms[g], ss[g], bits)
            y[sl] = decode(c[sl], ms[g], ss[g])
        return [ms, ss], c, y
    if fmt in ("q8_0", "q4_0"):
        raw, y = (q8_0 if fmt == "q8_0" else q4_0)(x)
        return [raw], None, y
    raise ValueError(fmt)


def pack_rows(codes, bits):
    """Dense little-endian bitstream per row: code i at bits [i*b, (i+1)*b)."""
    T, C = codes.shape
    bitplanes = (codes[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1  # [T, C, bits], LSB first
    return np.packbits(bitplanes.reshape(T, C * bits), axis=1, bitorder="little")


def blob(fmt, params, codes, bits):
    """The stored block: fp16 parameters in order, then packed code rows."""
    if codes is None:
        return params[0].tobytes()
    return b"".join(p.astype(np.float16).tobytes() for p in params) + pack_rows(codes, bits).tobytes()
