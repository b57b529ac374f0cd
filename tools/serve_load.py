#!/usr/bin/env python3
"""Load test of zipcache serve on 127.0.0.1 (standard library only).

Starts the server (--parallel slots, one --kv-budget), runs N concurrent
clients for S seconds, each in a loop: completions or chat, streamed or not,
some streams dropped after their first chunks. Checks, and prints as
PASS/FAIL lines:
  * every finished response is complete and well-formed (JSON with choices and
    usage; streams: only "data:" events of JSON, a finish_reason and usage in
    the last one, then "data: [DONE]"); refusals are 503 JSON errors
  * the server never crashed and still answers /health
  * its peak RSS stays under the KV budget + the stated overhead
  * /metrics agrees with what the clients counted (HTTP 200s and 503s,
    generated tokens at least those the finished responses report)
  * decode steps batch the active sessions (more than 1.5 per step on average)
Usage: serve_load.py --bin build/zipcache --model M [--clients 64] [--seconds 60]
                     [--parallel 8] [--kv zipcache] [--kv-budget 4M] [--queue 16] [--overhead-mb 96]
"""
import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

PROMPTS = ["Once upon a time", "The little dog", "Tom and Sue went", "One day a bird", "The sun was hot and"]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = {}
        self.tokens = 0
        self.finished = 0
        self.dropped = 0
        self.errors = []

    def add(self, status, tokens=0, dropped=False):
        with self.lock:
            self.status[status] = self.status.get(status, 0) + 1
            self.tokens += tokens
            self.finished += 1 if status == 200 and not dropped else 0
            self.dropped += 1 if dropped else 0

    def bad(self, what):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)


def check_completion(d, chat):
    c = d["choices"][0]
    text = c["message"]["content"] if chat else c["text"]
    assert isinstance(text, str) and c["finish_reason"] in ("stop", "length"), d
    u = d["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
    return u["completion_tokens"]


def one_request(port, rng, stats):
    chat = rng.random() < 0.5
    stream = rng.random() < 0.5
    drop = stream and rng.random() < 0.25
    body = {"max_tokens": rng.randint(4, 48), "temperature": 0.8, "stream": stream}
    if chat:
        body["messages"] = [{"role": "user", "content": rng.choice(PROMPTS)}]
    else:
        body["prompt"] = rng.choice(PROMPTS)
    path = "/v1/chat/completions" if chat else "/v1/completions"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            d = json.loads(r.read())
            if r.status != 503 or not d["error"]["message"]:
                stats.bad(f"status {r.status}: {d}")
            stats.add(r.status)
            return r.status
        if not stream:
            stats.add(200, check_completion(json.loads(r.read()), chat))
            return 200
        events, last = 0, None
        while True:
            line = r.readline()
            if not line:
                stats.bad("stream ended without [DONE]")
                stats.add(200)
                return 200
            line = line.decode()
            if line == "\n":
                continue
            assert line.startswith("data: "), line
            payload = line[6:].strip()
            if payload == "[DONE]":
                break
            last = json.loads(payload)
            assert "error" not in last, last
            events += 1
            if drop and events >= 2:
                conn.close()  # the client goes away mid-stream
                stats.add(200, dropped=True)
                return 200
        assert last["choices"][0]["finish_reason"] in ("stop", "length"), last
        stats.add(200, last["usage"]["completion_tokens"])
        return 200
    except Exception as e:  # a malformed response or a dropped connection
        stats.bad(f"{type(e).__name__}: {e}")
        stats.add(-1)
        return -1
    finally:
        conn.close()


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(zipcache_\w+)(\{[^}]*\})? (\S+)$', line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/zipcache")
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--kv", default="zipcache")
    ap.add_argument("--kv-budget", default="4M")
    ap.add_argument("--overhead-mb", type=float, default=96, help="RSS allowed beyond the KV budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--queue", type=int, default=16, help="the server's --queue: more waiting requests get 503")
    a = ap.parse_args()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    budget = int(a.kv_budget[:-1]) * units[a.kv_budget[-1]] if a.kv_budget[-1] in units else int(a.kv_budget)
    srv = subprocess.Popen([a.bin, "serve", "-m", a.model, "--port", "0", "-t", str(a.threads), "--parallel",
                            str(a.parallel), "-c", "256", "--chat-template", "chatml", "--kv", a.kv, "--kv-budget",
                            a.kv_budget, "--queue", str(a.queue)], stderr=subprocess.PIPE, text=True)
    port = None
    t_end = time.time() + 20
    log = ""
    while time.time() < t_end and port is None:
        line = srv.stderr.readline()
        log += line
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        print("FAIL serve_load_start")
        print(log, file=sys.stderr)
        srv.kill()
        return 1
    threading.Thread(target=lambda: srv.stderr.read(), daemon=True).start()
    stats = Stats()
    stop = time.time() + a.seconds
    peak = [0]

    def client(i):
        rng = random.Random(i)
        while time.time() < stop:
            if one_request(port, rng, stats) == 503:
                time.sleep(0.05)

    def sampler():
        while time.time() < stop + 1:
            peak[0] = max(peak[0], rss_kb(srv.pid))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alive = srv.poll() is None
    m = metrics(port) if alive else {}
    srv.terminate()
    try:
        srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
    ok = True

    def report(name, cond, detail):
        nonlocal ok
        print(f"{'PASS' if cond else 'FAIL'} {name}")
        if not cond:
            ok = False
            print(f"  {detail}", file=sys.stderr)

    n200, n503 = stats.status.get(200, 0), stats.status.get(503, 0)
    report("serve_load_well_formed", not stats.errors and stats.finished > 0, stats.errors[:5])
    report("serve_load_no_crash", alive and srv.returncode == 0, f"alive {alive}, exit {srv.returncode}")
    limit_kb = budget / 1024 + a.overhead_mb * 1024
    report("serve_load_rss_bounded", peak[0] <= limit_kb, f"peak RSS {peak[0]} kB > {limit_kb:.0f} kB")
    m200 = m.get('zipcache_requests_total{code="200"}', 0) - 0
    m503 = m.get('zipcache_requests_total{code="503"}', 0)
    mgen = m.get("zipcache_generated_tokens_total", 0)
    report("serve_load_metrics_agree", m200 == n200 and m503 == n503 and mgen >= stats.tokens,
           f"metrics 200/503/tokens {m200}/{m503}/{mgen}, clients {n200}/{n503}/{stats.tokens}")
    rows, steps = m.get("zipcache_decode_rows_total", 0), m.get("zipcache_decode_steps_total", 0)
    report("serve_load_batched_steps", steps > 0 and rows > 1.5 * steps,
           f"{rows:.0f} sessions decoded in {steps:.0f} steps: steps do not batch the active sessions")
    secs = m.get("zipcache_decode_seconds_total", 0)
    print(f"load: {a.clients} clients, {a.seconds:.0f} s, --parallel {a.parallel}, --kv {a.kv}, --kv-budget "
          f"{a.kv_budget}: {stats.finished} responses finished, {stats.dropped} streams dropped by their client, "
          f"{n503} refused 503 (queue), {stats.tokens} tokens in finished responses, server generated {mgen:.0f} "
          f"({m.get('zipcache_decode_rows_total', 0) / secs if secs else 0:.0f} tokens/s in decode steps, "
          f"{m.get('zipcache_decode_rows_total', 0) / max(1, m.get('zipcache_decode_steps_total', 1)):.1f} "
          f"sessions per step), peak RSS {peak[0] / 1024:.1f} MiB (limit {limit_kb / 1024:.0f} MiB)",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
