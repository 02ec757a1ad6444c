"""One Markdown table from one or more `evaluate` output folders (their errors.csv).

    python experiments/results_table.py runs/eval-a runs/eval-b [--threshold 0.08]

Per model (first appearance wins when two folders hold the same name): diagonal NME, AUC and
FR clean and pooled over the noisy conditions, AUC under blur-3 and downsample-3, the AUC
drop from clean to those two, and inter-ocular NME clean / noisy. NME = mean point error /
normaliser (per image, then averaged); AUC@t and FR@t from fadenn_tf.metrics (exact AUC).
"""
import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from fadenn_tf import metrics


def read_errors(folders):
    """{model: {condition: {normaliser: [NME, ...]}}} from the folders' errors.csv."""
    out = {}
    for folder in folders:
        rows = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        path = Path(folder) / "errors.csv"
        if not path.is_file():
            raise SystemExit(f"error: {path}: not found (give folders written by evaluate)")
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                for norm in ("diagonal", "interocular"):
                    value = r[f"nme_{norm}"]
                    if value not in ("", "nan"):
                        rows[r["model"]][r["condition"]][norm].append(float(value))
        for model, conds in rows.items():
            out.setdefault(model, conds)
    return out


def figures(errors, threshold):
    """(mean NME, AUC@t, FR@t) of a list of per-image NMEs (fadenn_tf.metrics)."""
    return float(np.mean(errors)), metrics.auc(errors, threshold), metrics.failure_rate(
        errors, threshold)


def table(data, threshold):
    head = ("| model | diag NME clean | AUC clean | FR clean | diag NME noisy | AUC noisy | "
            "FR noisy | AUC blur-3 (drop) | AUC downsample-3 (drop) | inter-ocular NME clean | "
            "inter-ocular NME noisy |")
    lines = [head, "|---" + "|---:" * 10 + "|"]
    for model, conds in data.items():
        noisy = [c for c in conds if c != "clean"]
        pooled = {k: [e for c in noisy for e in conds[c][k]] for k in ("diagonal", "interocular")}
        nme_c, auc_c, fr_c = figures(conds["clean"]["diagonal"], threshold)
        nme_n, auc_n, fr_n = figures(pooled["diagonal"], threshold)
        cells = [f"{nme_c:.4f}", f"{auc_c:.3f}", f"{fr_c:.3f}", f"{nme_n:.4f}", f"{auc_n:.3f}",
                 f"{fr_n:.3f}"]
        for cond in ("blur-3", "downsample-3"):
            auc = figures(conds[cond]["diagonal"], threshold)[1] if cond in conds else float("nan")
            cells.append(f"{auc:.3f} ({auc_c - auc:.3f})")
        cells += [f"{figures(conds['clean']['interocular'], threshold)[0]:.4f}",
                  f"{figures(pooled['interocular'], threshold)[0]:.4f}"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="evaluate output folders (with errors.csv)")
    p.add_argument("--threshold", type=float, default=0.08, help="AUC/FR cut-off (0.08)")
    a = p.parse_args(argv)
    print(table(read_errors(a.folders), a.threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
