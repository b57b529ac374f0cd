#!/usr/bin/env python3
"""The table of tools/compare_llamacpp.sh: tokens/s of llama.cpp's caches and zipcache's policies
for each test (ppN, tgN) and depth, means over the repetitions, and zipcache's best over
llama.cpp's best as the ratio.

    compare_table.py DIR      reads DIR/llamacpp-*.json (llama-bench -o json) and DIR/zipcache-*.json
"""
import glob
import json
import os
import statistics
import sys


def llamacpp_rows(path):
    for r in json.load(open(path)):
        if r.get("type_k") != r.get("type_v"):
            continue
        test = f"pp{r['n_prompt']}" if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0 else f"tg{r['n_gen']}"
        yield test, int(r.get("n_depth", 0)), "llama.cpp " + r["type_k"], float(r["avg_ts"])


FLOORS = {}  # (test, depth, "zipcache POLICY") -> [(floor tok/s, what limits it)]


def zipcache_rows(path):
    for r in json.load(open(path))["rows"]:
        key = (r["test"], int(r["depth"]), "zipcache " + r["policy"])
        if r.get("floor_tokens_per_s", 0) > 0:
            FLOORS.setdefault(key, []).append((float(r["floor_tokens_per_s"]), r.get("limited_by", "")))
        yield r["test"], int(r["depth"]), "zipcache " + r["policy"], float(r["tokens_per_s"])


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    runs = {}
    for pattern, reader in (("llamacpp-*.json", llamacpp_rows), ("zipcache-*.json", zipcache_rows)):
        files = sorted(glob.glob(os.path.join(argv[1], pattern)))
        if not files:
            print(f"compare_table.py: no {pattern} in {argv[1]}", file=sys.stderr)
            return 1
        for f in files:
            for test, depth, cache, ts in reader(f):
                runs.setdefault((test, depth), {}).setdefault(cache, []).append(ts)
    commits = set()
    for f in sorted(glob.glob(os.path.join(argv[1], "llamacpp-*.json"))):
        for r in json.load(open(f)):
            if r.get("build_commit"):
                commits.add(f"{r['build_commit']} (build {r.get('build_number', '?')})")
    if commits:
        print("llama.cpp commit " + ", ".join(sorted(commits)) + "\n")
    caches = sorted({c for per in runs.values() for c in per})
    print("| test | depth | " + " | ".join(caches) + " | zipcache best / llama.cpp best | zipcache best: floor, limited by |")
    print("|---|---:|" + "---:|" * len(caches) + "---:|---|")
    for (test, depth) in sorted(runs, key=lambda k: (k[0][:2], k[1], k[0])):
        per = {c: statistics.mean(v) for c, v in runs[(test, depth)].items()}
        cells = [f"{per[c]:.2f}" if c in per else "" for c in caches]
        lc = {c: v for c, v in per.items() if c.startswith("llama.cpp")}
        zc = {c: v for c, v in per.items() if c.startswith("zipcache")}
        ratio = floor = ""
        if lc and zc:
            bl, bz = max(lc, key=lc.get), max(zc, key=zc.get)
            ratio = f"{zc[bz] / lc[bl]:.2f}x ({bz[9:]} vs {bl[10:]})"
            fl = FLOORS.get((test, depth, bz))
            if fl:
                f = statistics.mean(v for v, _ in fl)
                floor = f"{f:.1f} tok/s ({fl[0][1]}): {100 * zc[bz] / f:.0f}% of it"
        print(f"| {test} | {depth} | " + " | ".join(cells) + f" | {ratio} | {floor} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
