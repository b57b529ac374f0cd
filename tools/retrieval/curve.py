#!/usr/bin/env python3
"""The learning curve of a training run, from its train_report.json (train_retrieval.py writes it
beside the checkpoint): a markdown table of the held-out checks and, with --csv, every check.

    curve.py out/retrieval/train_report.json [--every 250] [--csv curve.csv]

Columns: step, wall-clock minutes so far, tokens seen, the answer tokens' loss (smoothed), the
curriculum's longest document, and greedy exact answers on the held-out documents of that length.
A row is kept at every --every steps, where the curriculum grows, and at the end.
"""
import argparse
import csv
import json
import sys


def rows_to_show(history, every):
    keep = []
    for i, h in enumerate(history):
        grew = i + 1 < len(history) and history[i + 1]["longest"] != h["longest"]
        if h["step"] % every == 0 or grew or i == len(history) - 1:
            keep.append(h)
    return keep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--every", type=int, default=250, help="a row every N steps (default 250)")
    ap.add_argument("--csv", help="write every held-out check here")
    a = ap.parse_args(argv)
    with open(a.report) as fp:
        history = json.load(fp)["history"]
    if not history:
        sys.exit(f"{a.report}: no held-out checks recorded")
    print("| step | minutes | tokens | answer loss | longest lines | held-out exact |")
    print("|---|---|---|---|---|---|")
    for h in rows_to_show(history, a.every):
        print(f"| {h['step']:,} | {h['minutes']:.1f} | {h['tokens'] / 1e6:.1f}M | {h['loss']:.3f} | "
              f"{h['longest']} | {h['held_out']:.3f} |")
    if a.csv:
        with open(a.csv, "w", newline="") as fp:
            w = csv.DictWriter(fp, fieldnames=["step", "minutes", "tokens", "loss", "longest", "held_out"])
            w.writeheader()
            for h in history:
                w.writerow({k: h[k] for k in w.fieldnames})
    return 0


if __name__ == "__main__":
    sys.exit(main())
