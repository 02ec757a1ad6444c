"""Paired differences between two models of `evaluate` output folders, with bootstrap
intervals over the images.

    python experiments/paired_bootstrap.py runs/eval --pair new:pretrained --pair M:control
        [--normalizer diagonal] [--resamples 10000] [--seed 0]

For each pair A:B (models named as in the folders' errors.csv; the first folder holding a
model wins): the mean over images of A's NME minus B's, clean, and noisy (each image's mean
over every noisy condition in the file, then over images), with a 95% percentile bootstrap
interval (the images resampled with replacement, the same draw for A and B, so the pairing
is kept). Negative: A is more accurate. Only images both models were scored on count.
Exit status 0, or 2 for a folder without errors.csv or an unknown model.
"""
import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_errors(folders, normalizer):
    """{model: {condition: {(image, frame): NME}}} from the folders' errors.csv."""
    out = {}
    for folder in folders:
        path = Path(folder) / "errors.csv"
        if not path.is_file():
            print(f"error: {path}: not found (give folders written by evaluate)",
                  file=sys.stderr)
            raise SystemExit(2)
        rows = defaultdict(lambda: defaultdict(dict))
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                value = r[f"nme_{normalizer}"]
                if value not in ("", "nan"):
                    rows[r["model"]][r["condition"]][(r["image"], r["frame"])] = float(value)
        for model, conds in rows.items():
            out.setdefault(model, conds)
    return out


def per_image(conds, keys, noisy):
    """(len(keys),) NME per image: clean, or the mean over the noisy conditions."""
    names = [c for c in conds if c != "clean"] if noisy else ["clean"]
    return np.array([[conds[c][k] for c in names] for k in keys]).mean(axis=1)


def paired_interval(diff, resamples, seed):
    """(mean, low, high): the mean of `diff` and its 95% percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="evaluate output folders (errors.csv)")
    ap.add_argument("--pair", action="append", required=True, metavar="A:B",
                    help="models to compare, A minus B (repeat for more pairs)")
    ap.add_argument("--normalizer", default="diagonal", choices=("diagonal", "box",
                                                                 "interocular"))
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    errors = read_errors(args.folders, args.normalizer)
    print(f"paired differences of {args.normalizer} NME (A minus B; negative: A is more "
          f"accurate), mean over images, 95% bootstrap interval ({args.resamples} "
          f"resamples, seed {args.seed}); noisy: each image's mean over the noisy "
          f"conditions")
    print("| A minus B | images | clean | noisy |")
    print("|---|---:|---|---|")
    for pair in args.pair:
        a, _, b = pair.partition(":")
        missing = [m for m in (a, b) if m not in errors]
        if missing or not b:
            ap.error(f"--pair {pair}: no model {missing or [pair]} in "
                     f"{', '.join(args.folders)} (models: {', '.join(errors)})")
        keys = sorted(set.intersection(*(set(c) for m in (a, b)
                                         for c in errors[m].values())))
        cells = []
        for noisy in (False, True):
            if noisy and len(errors[a]) < 2:
                cells.append("-")
                continue
            diff = per_image(errors[a], keys, noisy) - per_image(errors[b], keys, noisy)
            m, lo, hi = paired_interval(diff, args.resamples, args.seed)
            cells.append(f"{m:+.5f} ({lo:+.5f} to {hi:+.5f})")
        print(f"| {a} minus {b} | {len(keys)} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
