"""Where a landmark model's error is: by landmark group, subset, yaw and face size, on the val
split and on training images (under- or over-fitting), clean and under the 12 noise conditions.

    python experiments/error_breakdown.py --model pretrained --data DIR_300W \
        [--config real128] [--train-images 300] [--out breakdown.json]

Protocol: the evaluation engine's (ground-truth landmark boxes, 224-px reference crops, noise
applied there, then resized to the model's input). NME: diagonal of the tight ground-truth
landmark box, per point averaged over a group's points. Yaw is a proxy from the annotation:
the nose tip's horizontal offset between the two jaw ends, (dl - dr) / (dl + dr), in [-1, 1]
(0 frontal). Face size: the longer side of the ground-truth landmark box in image pixels.
Prints Markdown tables; --out writes every figure as JSON.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from fadenn_tf import metrics, noise
from fadenn_tf.data.pipeline import load_eval_data
from fadenn_tf.evaluation.engine import select_samples
from fadenn_tf.evaluation.scoring import ValidationSpec, ground_truth, predict_crops
from fadenn_tf.inference.model import load_any

GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
          "eyes": range(36, 48), "mouth": range(48, 68)}
YAW_BINS = [(0.0, 0.15, "|yaw| < 0.15"), (0.15, 0.35, "0.15-0.35"), (0.35, 1.01, ">= 0.35")]
SIZE_BINS = [(0, 80, "< 80 px"), (80, 110, "80-110 px"), (110, 1e9, ">= 110 px")]


def point_errors(pred, gt):
    """(N,68) per-point Euclidean error / diagonal of each face's ground-truth box."""
    d = metrics.normalizer_values(gt, "diagonal")
    return np.linalg.norm(pred - gt, axis=-1) / d[:, None]


def yaw_proxy(gt):
    """(N,) nose-tip asymmetry between the jaw ends: 0 frontal, +-1 full profile."""
    dl = np.abs(gt[:, 30, 0] - gt[:, 0, 0])
    dr = np.abs(gt[:, 16, 0] - gt[:, 30, 0])
    return (dl - dr) / np.maximum(dl + dr, 1e-6)


def run(model, samples, conditions, seed=0):
    """{condition: (N,68) point errors}, and the (N,68,2) ground truth."""
    data = load_eval_data(samples, noise.REFERENCE_SIZE)
    gt = ground_truth(data)
    out = {}
    for t, lev in conditions:
        res = predict_crops(model, data, (t, lev), ValidationSpec(
            size=model.size, seed=seed, crop_scale=model.crop_scale))
        out[noise.condition_name(t, lev)] = point_errors(res["landmarks"], gt)
    return out, gt, data.samples


def table(rows, head):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def breakdown(errs, gt, samples):
    """Mean NME (diagonal) of the faces in each bin; errs (N,68) point errors."""
    per_face = errs.mean(axis=1)
    res = {"all": (float(per_face.mean()), len(per_face)),
           "median": (float(np.median(per_face)), len(per_face))}
    for g, idx in GROUPS.items():
        res[f"group:{g}"] = (float(errs[:, list(idx)].mean()), len(per_face))
    subsets = np.array([s.subset.split("/")[0] for s in samples])
    for sub in sorted(set(subsets)):
        m = subsets == sub
        res[f"subset:{sub}"] = (float(per_face[m].mean()), int(m.sum()))
    yaw = np.abs(yaw_proxy(gt))
    for lo, hi, name in YAW_BINS:
        m = (yaw >= lo) & (yaw < hi)
        if m.any():
            res[f"yaw:{name}"] = (float(per_face[m].mean()), int(m.sum()))
    side = np.max(gt.max(axis=1) - gt.min(axis=1), axis=1)
    for lo, hi, name in SIZE_BINS:
        m = (side >= lo) & (side < hi)
        if m.any():
            res[f"size:{name}"] = (float(per_face[m].mean()), int(m.sum()))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="pretrained")
    ap.add_argument("--data", required=True, help="300-W layout (e.g. the 2,012 training images)")
    ap.add_argument("--config", default="real128", help="config whose split defines val")
    ap.add_argument("--train-images", type=int, default=300,
                    help="training images scored too, evenly spread (0: none)")
    ap.add_argument("--no-noisy", action="store_true", help="clean only")
    ap.add_argument("--out", default=None, help="JSON of every figure")
    args = ap.parse_args(argv)
    model = load_any(args.model)
    clean = [(0, 0)]
    noisy = [(t, lev) for t in range(1, 5) for lev in (1, 2, 3)]
    sets = {"val": select_samples(args.data, split="val", config=args.config).samples}
    if args.train_images:
        from fadenn_tf.data.splits import load_splits
        from fadenn_tf.evaluation.engine import _val_config, subsample
        cfg = _val_config(args.config, "300w")
        sets["train"] = subsample(load_splits(cfg.data, args.data).train, args.train_images)
    report = {"model": args.model, "data": str(args.data), "normalizer": "diagonal",
              "protocol": "ground-truth boxes, 224-px reference crops", "sets": {}}
    for name, samples in sets.items():
        conds = clean + ([] if args.no_noisy or name != "val" else noisy)
        errs, gt, kept = run(model, samples, conds)
        rep = {"clean": breakdown(errs["clean"], gt, kept)}
        if len(conds) > 1:
            pooled = np.concatenate([errs[noise.condition_name(t, lev)] for t, lev in noisy])
            rep["noisy (12 pooled)"] = breakdown(pooled, np.concatenate([gt] * len(noisy)),
                                                 list(kept) * len(noisy))
            rep["per condition"] = {noise.condition_name(t, lev):
                                    float(errs[noise.condition_name(t, lev)].mean())
                                    for t, lev in noisy}
        report["sets"][f"{name} ({len(kept)} faces)"] = rep
    # Markdown: one row per bin, one column per (set, condition)
    cols = [(s, c) for s, r in report["sets"].items() for c in r if c != "per condition"]
    keys = list(next(iter(report["sets"].values()))["clean"].keys())
    rows = []
    for k in keys:
        row = [k]
        for s, c in cols:
            v = report["sets"][s][c].get(k)
            row.append("-" if v is None else f"{v[0]:.4f} (n={v[1]})")
        rows.append(row)
    print(f"NME (diagonal) of {args.model} on {args.data}; {report['protocol']}")
    print(table(rows, ["bin"] + [f"{s}, {c}" for s, c in cols]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
