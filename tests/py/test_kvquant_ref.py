"""The C quantizers against the independent numpy reference (kvquant_ref.py),
bit for bit: stored parameters, packed codes and reconstructions, on random
blocks with injected outlier channels and outlier tokens.

Runs $ZIPCACHE_BUILD/tests/test_kvquant --ref for each case, exchanging raw
float32 files in a temporary directory. Also prints (as '#' lines) which
CSTQuant normalizer reconstructs better on this data.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvquant_ref as ref  # noqa: E402

BIN = os.path.join(os.environ.get("ZIPCACHE_BUILD", "build"), "tests", "test_kvquant")


def block(rng, T, C, outlier_channels=True, outlier_tokens=True):
    """K/V-like data: a few channels with 20-50x scale and an offset, a few
    tokens 8x larger (attention-sink-like)."""
    x = rng.standard_normal((T, C)).astype(np.float32)
    if outlier_channels:
        ch = rng.choice(C, size=max(1, C // 16), replace=False)
        x[:, ch] = x[:, ch] * rng.uniform(20, 50, size=ch.size).astype(np.float32) + np.float32(3)
    if outlier_tokens:
        tk = rng.choice(T, size=max(1, T // 20), replace=False)
        x[tk] *= np.float32(8)
    return x


def run_c(tmp, x, fmt, bits, group, norm):
    T, C = x.shape
    inp, bl, yo = (os.path.join(tmp, n) for n in ("x.f32", "blob.bin", "y.f32"))
    x.astype(np.float32).tofile(inp)
    r = subprocess.run([BIN, "--ref", inp, str(T), str(C), fmt, str(bits), str(group), norm, bl, yo],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, None, r.stderr.strip()
    return open(bl, "rb").read(), np.fromfile(yo, dtype=np.float32).reshape(T, C), ""


def check_case(tmp, name, x, fmt, bits, group=32, norm="sqrt"):
    params, codes, y = ref.quantize(fmt, x, bits, group, norm)
    want = ref.blob(fmt, params, codes, bits)
    got, gy, err = run_c(tmp, x, fmt, bits, group, norm)
    if got is None:
        return f"{name}: C refused: {err}"
    if got != want:
        a, b = np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8)
        if a.size != b.size:
            return f"{name}: blob {a.size} bytes, reference {b.size}"
        i = int(np.argmax(a != b))
        return f"{name}: blob differs first at byte {i} of {a.size} (C {a[i]:#04x}, numpy {b[i]:#04x})"
    if not np.array_equal(gy.view(np.uint32), y.astype(np.float32).view(np.uint32)):
        i = np.unravel_index(np.argmax(gy != y), y.shape)
        return f"{name}: reconstruction differs at {i}: C {gy[i]!r}, numpy {y[i]!r}"
    return None


def main():
    if not os.path.exists(BIN):
        print(f"SKIP kvquant_ref: {BIN} not built")
        return 0
    rng = np.random.default_rng(2024)
    failures = {}
    cases = []
    shapes = [(50, 64), (13, 72), (33, 128), (7, 24)]
    for T, C in shapes:
        x = block(rng, T, C)
        for bits in (1, 2, 3, 4, 5, 8):
            for fmt, extra in (("channel", {}), ("cst", {"norm": "sqrt"}), ("cst", {"norm": "max"}), ("token", {}),
                               ("group-ch", {"group": 8}), ("group-ch", {"group": 32}), ("group-tok", {"group": 5}),
                               ("group-tok", {"group": 32})):
                cases.append((f"{fmt}{extra.get('group', '')}{extra.get('norm', '')} b{bits} {T}x{C}", x, fmt, bits,
                              extra))
        if C % 32 == 0:
            for fmt in ("q8_0", "q4_0"):
                cases.append((f"{fmt} {T}x{C}", x, fmt, 8, {}))
    # rows longer than the C code's CSTQuant row buffer (4096)
    wide = block(rng, 3, 4100)
    for norm in ("sqrt", "max"):
        cases.append((f"cst{norm} b3 3x4100", wide, "cst", 3, {"norm": norm}))
    # special values: exact zeros, a constant channel, ties at half steps
    z = block(rng, 20, 64)
    z[:, 5] = 0
    z[:, 9] = np.float32(-1.25)
    z[3] = 0
    z[4, :8] = np.float32([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
    for fmt in ("channel", "cst", "token", "group-ch", "group-tok"):
        for bits in (2, 3, 4):
            cases.append((f"special {fmt} b{bits}", z, fmt, bits, {"group": 8}))

    with tempfile.TemporaryDirectory() as tmp:
        for name, x, fmt, bits, extra in cases:
            err = check_case(tmp, name, x, fmt, bits, extra.get("group", 32), extra.get("norm", "sqrt"))
            group = "kvquant_ref_" + fmt.replace("-", "_")
            failures.setdefault(group, [])
            if err:
                failures[group].append(err)
        # refusals: NaN / inf input, values beyond fp16
        bad = block(rng, 8, 32)
        refused_ok = True
        for v in (np.nan, np.inf, -np.inf, 1e6):
            b = bad.copy()
            b[2, 3] = v
            got, _, err = run_c(tmp, b, "channel", 4, 32, "sqrt")
            refused_ok &= got is None and "kvquant" in err
        failures["kvquant_ref_refusals"] = [] if refused_ok else ["non-finite or huge input was accepted"]

    for group, errs in failures.items():
        if errs:
            print(f"FAIL {group}")
            for e in errs[:5]:
                print("  " + e, file=sys.stderr)
        else:
            print(f"PASS {group}")

    # Which CSTQuant normalizer reconstructs better (relative MSE, numpy)?
    xr = block(np.random.default_rng(7), 512, 128)
    for bits in (2, 3, 4):
        e = {}
        for label, fmt, norm in (("sqrt", "cst", "sqrt"), ("max", "cst", "max"), ("token", "token", "sqrt")):
            _, _, y = ref.quantize(fmt, xr, bits, 32, norm)
            e[label] = float(np.mean((y - xr) ** 2) / np.mean(xr ** 2))
        print(f"# cst normalizer, {bits} bits, 512x128 with outlier channels: relative MSE "
              f"sqrt(max|x|) {e['sqrt']:.3e}, max|x| {e['max']:.3e}, no normalizer {e['token']:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
