#!/usr/bin/env python3
"""Sessions in one KV budget, measured through zipcache serve (standard library only).

For each KV policy: start the server with --parallel P slots, one --kv-budget
and a --slot-save-path; prefill one session of ~N tokens (timed), save it
(file size), restore it into the other slots until the budget refuses one
(sessions that fit; restore time), then decode with 1, 4 and 16 of those
sessions at once (aggregate decode tokens/s from the server's /metrics:
one batched forward pass per step serves every active session). Prints a
Markdown table for BENCHMARKS.md.
Usage: bench_serve.py --bin build/zipcache --model M.gguf [--tokens 8192] [--budget 36M]
                      [--policies fp16,zipcache,q4_0] [--parallel 24] [--gen 32] [-t 2]
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WORDS = ("once upon a time there was a little girl named lily she loved to play outside in the park with her "
         "friends one day she saw a big red ball under a tree and ran to get it").split()


def call(port, method, path, body=None, timeout=3600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if path != "/metrics" else data.decode())


def metrics(port):
    out = {}
    for line in call(port, "GET", "/metrics")[1].splitlines():
        m = re.match(r"^(zipcache_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def count_tokens(binary, model, text):
    out = subprocess.run([binary, "tokenize", "-m", model, "-p", text], capture_output=True, text=True, check=True)
    return len(out.stdout.split())


def make_prompt(binary, model, n):
    """Text of about n - 8 tokens (the session leaves room to go on)."""
    sample = " ".join(WORDS[i % len(WORDS)] for i in range(400))
    per_word = count_tokens(binary, model, sample) / 400
    words = int((n - 8) / per_word)
    while True:
        text = " ".join(WORDS[i % len(WORDS)] for i in range(words))
        got = count_tokens(binary, model, text)
        if got <= n - 8:
            return text, got
        words -= max(1, int((got - (n - 8)) / per_word) + 1)


def start(a, policy, slot_dir):
    cmd = [a.bin, "serve", "-m", a.model, "--port", "0", "-t", str(a.threads), "--parallel", str(a.parallel), "-c",
           str(a.tokens + a.gen + 64), "--kv", policy, "--kv-budget", a.budget, "--slot-save-path", slot_dir,
           "--queue", "64"]
    srv = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    log = ""
    while True:
        line = srv.stderr.readline()
        if not line:
            raise RuntimeError("server did not start: " + log)
        log += line
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=srv.stderr.read, daemon=True).start()
            return srv, int(m.group(1))


def run_policy(a, policy, prompt):
    slot_dir = tempfile.mkdtemp(prefix="zc-bench-serve-")
    srv, port = start(a, policy, slot_dir)
    res = {"policy": policy}
    try:
        t0 = time.time()
        st, r = call(port, "POST", "/v1/completions", {"prompt": prompt, "max_tokens": 1, "temperature": 0})
        res["prefill_s"] = time.time() - t0
        assert st == 200, r
        res["n_tokens"] = r["usage"]["prompt_tokens"]
        st, r = call(port, "POST", "/slots/0?action=save", {"filename": "s.bin"})
        assert st == 200, r
        res["file_bytes"] = os.path.getsize(os.path.join(slot_dir, "s.bin"))
        m = metrics(port)
        res["kv_bytes"] = m.get('zipcache_kv_session_bytes{slot="0",policy="%s"}' % policy, 0)
        restores = []
        fit = 1
        for s in range(1, a.parallel):
            st, r = call(port, "POST", f"/slots/{s}?action=restore", {"filename": "s.bin"})
            if st != 200:
                res["refused"] = r["error"]["message"][:120]
                break
            restores.append(r["timings"]["restore_ms"] / 1e3)
            fit += 1
        res["fit"] = fit
        res["restore_s"] = statistics.median(restores) if restores else float("nan")
        # decode: k sessions at once, each prompt extends the cached one (nothing but the new word is prefilled)
        for k in (1, 4, 16):
            if k > fit:
                res[f"tps{k}"] = None
                continue
            before = metrics(port)
            threads = [threading.Thread(target=call, args=(port, "POST", "/v1/completions",
                                                           {"prompt": prompt + " and", "max_tokens": a.gen,
                                                            "temperature": 0}))
                       for _ in range(k)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = metrics(port)
            rows = after["zipcache_decode_rows_total"] - before["zipcache_decode_rows_total"]
            secs = after["zipcache_decode_seconds_total"] - before["zipcache_decode_seconds_total"]
            steps = after["zipcache_decode_steps_total"] - before["zipcache_decode_steps_total"]
            res[f"tps{k}"] = rows / secs if secs > 0 else 0
            res[f"rows_per_step{k}"] = rows / steps if steps else 0
    finally:
        srv.terminate()
        srv.wait(timeout=60)
        for f in os.listdir(slot_dir):
            os.remove(os.path.join(slot_dir, f))
        os.rmdir(slot_dir)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/zipcache")
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--budget", default="36M")
    ap.add_argument("--policies", default="fp16,zipcache,q4_0")
    ap.add_argument("--parallel", type=int, default=24)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    prompt, n = make_prompt(a.bin, a.model, a.tokens)
    print(f"prompt: {n} tokens", file=sys.stderr)
    rows = []
    for p in a.policies.split(","):
        r = run_policy(a, p, prompt)
        print(json.dumps(r), file=sys.stderr)
        rows.append(r)
    fp16 = next((r for r in rows if r["policy"] == "fp16"), None)
    print(f"| KV policy | session | file | vs fp16 | sessions in {a.budget} | restore | re-prefill | "
          "decode tok/s, 1 session | 4 sessions | 16 sessions |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{fp16['file_bytes'] / r['file_bytes']:.2f}x smaller" if fp16 and r is not fp16 else "1x"
        tps = [f"{r[f'tps{k}']:.1f}" if r[f"tps{k}"] is not None else f"(only {r['fit']} fit)" for k in (1, 4, 16)]
        print(f"| {r['policy']} | {r['n_tokens']} tokens | {r['file_bytes'] / 2**20:.2f} MiB (cache "
              f"{r['kv_bytes'] / 2**20:.2f} MiB) | {ratio} | {r['fit']} | {r['restore_s'] * 1e3:.0f} ms | "
              f"{r['prefill_s']:.1f} s | {tps[0]} | {tps[1]} | {tps[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
