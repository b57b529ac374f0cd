"""The eval scoring (perplexity, KL(base || run), top-1 agreement, median and
99th percentile) against an independent numpy reference on random logits.

Runs $ZIPCACHE_BUILD/tests/test_eval --score, which writes the base logits
into a KL base file (fp16 log-probabilities), reads it back and scores the
run logits exactly as `eval ppl --kl-base` does. Two references:
  - exact: float64 log-softmax of the float32 logits; agreement within what
    fp16 storage of the base costs: KL within 5% + 2e-6 (the "close" case, KL
    ~3e-5 over 2048 tokens, shows ~4%: that is the KL noise floor of the
    fp16 base file), perplexity within 1e-6;
  - storage-aware: the same fp16 rounding of the base log-probs (numpy's
    float16 is IEEE round-to-nearest-even), then float64: agreement to 1e-9.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.path.join(os.environ.get("ZIPCACHE_BUILD", "build"), "tests", "test_eval")


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def reference(base, run, targets, fp16_storage):
    n = base.shape[0]
    lq = log_softmax(run)
    if fp16_storage:
        # C: (float)(logit - lse) with lse in double, then to fp16; renormalized when read.
        m = base.astype(np.float64).max(axis=-1, keepdims=True)
        lse = m + np.log(np.exp(base.astype(np.float64) - m).sum(axis=-1, keepdims=True))
        lp = (base.astype(np.float64) - lse).astype(np.float32).astype(np.float16).astype(np.float64)
        lp = lp - (lp.max(axis=-1, keepdims=True) +
                   np.log(np.exp(lp - lp.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)))
        # the base NLL is stored as float32
        base_nll = (-log_softmax(base)[np.arange(n), targets]).astype(np.float32).astype(np.float64)
    else:
        lp = log_softmax(base)
        base_nll = -lp[np.arange(n), targets]
    kl = np.maximum((np.exp(lp) * (lp - lq)).sum(axis=-1), 0.0)
    return {
        "ppl": float(np.exp(-lq[np.arange(n), targets].mean())),
        "base_ppl": float(np.exp(base_nll.mean())),
        "kl_mean": float(kl.mean()),
        "kl_median": float(np.median(kl)),
        "kl_p99": float(np.percentile(kl, 99)),
        "kl_max": float(kl.max()),
        "top1": float((base.argmax(axis=-1) == run.argmax(axis=-1)).mean()),
    }


def run_c(tmp, base, run, targets):
    paths = [os.path.join(tmp, n) for n in ("base.f32", "run.f32", "t.i32")]
    base.astype("<f4").tofile(paths[0])
    run.astype("<f4").tofile(paths[1])
    targets.astype("<i4").tofile(paths[2])
    r = subprocess.run([BIN, "--score", *paths, str(base.shape[0]), str(base.shape[1])], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return {k: float(v) for k, v in (line.split() for line in r.stdout.splitlines())}


def cases(rng):
    # (name, n_tokens, vocab, logit scale, run noise): flat, peaked (LM-like) and nearly identical runs
    for name, n, v, scale, noise in [("flat", 40, 64, 1.0, 0.3), ("peaked", 200, 512, 6.0, 0.5),
                                     ("close", 100, 2048, 4.0, 0.01), ("far", 60, 300, 3.0, 3.0)]:
        base = (rng.standard_normal((n, v)) * scale).astype(np.float32)
        run = (base + rng.standard_normal((n, v)) * noise).astype(np.float32)
        targets = rng.integers(0, v, size=n).astype(np.int32)
        yield name, base, run, targets


def main():
    if not os.path.exists(BIN):
        print(f"FAIL eval_ref: {BIN} not built")
        return 1
    rng = np.random.default_rng(7)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, base, run, targets in cases(rng):
            try:
                c = run_c(tmp, base, run, targets)
            except RuntimeError as e:
                print(f"FAIL eval_ref_{name}: {e}")
                failed += 1
                continue
            for fp16, tol_kl, abs_kl, tol_ppl, label in [(True, 1e-9, 1e-15, 1e-9, "fp16"),
                                                         (False, 5e-2, 2e-6, 1e-6, "exact")]:
                ref = reference(base, run, targets, fp16)
                bad = []
                for k, want in ref.items():
                    tol = tol_kl if k.startswith("kl") else tol_ppl
                    if k == "top1":
                        tol = 0
                    if abs(c[k] - want) > tol * abs(want) + (abs_kl if k.startswith("kl") else 0):
                        bad.append(f"{k}: C {c[k]:.12g} numpy {want:.12g}")
                if bad:
                    print(f"FAIL eval_ref_{name}_{label}: " + "; ".join(bad))
                    failed += 1
                else:
                    print(f"PASS eval_ref_{name}_{label}")
            print(f"# {name}: kl_mean {c['kl_mean']:.4g} p99 {c['kl_p99']:.4g} top1 {c['top1']:.3f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
