"""Evaluation reports: results.json, per-image CSV, Markdown tables, the stdout table.

Every figure written carries its context: data set, split, noise type and level, normaliser,
threshold, model label and path (results.json rows), or names them in the caption (tables).
"""
import csv
import math
from pathlib import Path

import numpy as np

from fadenn_tf import metrics
from fadenn_tf.noise import parse_condition, NOISE_NAMES
from fadenn_tf.utils.atomic import atomic_path, write_json_atomic, write_text_atomic


def _finite(x):
    """JSON-safe float (NaN / inf -> None)."""
    return float(x) if x is not None and math.isfinite(x) else None


def _clean_summary(s):
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in s.items()}


def _condition_fields(name):
    if name == "noisy":
        return {"condition": "noisy", "noise_type": "all 4 types pooled", "noise_type_id": None,
                "level": None}
    t, lv = parse_condition(name)
    return {"condition": name, "noise_type": NOISE_NAMES[t], "noise_type_id": t, "level": lv}


def result_rows(ev):
    """One dict per (model, condition) plus the pooled "noisy" condition: every figure with
    its context. Figures under the other normalisers are under "other_normalizers"."""
    models = {m["label"]: m for m in ev.models}
    conds = list(ev.conditions) + (["noisy"] if ev.has_noisy() else [])
    rows = []
    for label in ev.errors:
        for c in conds:
            s = _clean_summary(ev.summary(label, c))
            row = {"model": label, "model_path": models[label]["path"],
                   "dataset": ev.meta["dataset"], "split": ev.meta["split"],
                   **_condition_fields(c), "boxes": ev.meta["boxes"], **s}
            row["other_normalizers"] = {
                n: {k: _finite(v) for k, v in ev.summary(label, c, n).items()
                    if k in ("mean_nme", "median_nme", "auc", "fr")}
                for n in metrics.NORMALIZERS if n != ev.normalizer}
            rows.append(row)
    return rows


def results_dict(ev, command=None):
    """The content of results.json."""
    iid = {}
    for label, d in ev.iid.items():
        ctx = {"model": label, "dataset": ev.meta["dataset"], "split": ev.meta["split"]}
        out = {}
        if "classifier" in d:
            out["classifier"] = {**ctx, **d["classifier"],
                                 "confusion_rows": "true noise type",
                                 "confusion_cols": "predicted noise type"}
        if "denoiser" in d:
            out["denoiser"] = [
                {**ctx, **_condition_fields(c), **{k: _finite(v) for k, v in v.items()},
                 "psnr_unit": "dB, peak 255 on 0..255 crops, vs the clean crop",
                 "ssim_info": "tf.image.ssim, max_val 2, vs the clean crop"}
                for c, v in d["denoiser"].items()]
        iid[label] = out
    timing = {label: {"seconds_per_condition": {c: round(t, 3) for c, t in d.items()},
                      "seconds_total": round(sum(d.values()), 3),
                      "images_per_second": (round(ev.meta["n_evaluated"] * len(d)
                                                  / max(sum(d.values()), 1e-9), 1))}
              for label, d in ev.timing.items()}
    return {"meta": {**ev.meta, **({"command": command} if command else {})},
            "models": ev.models, "conditions": ev.conditions, "results": result_rows(ev),
            "iid_diagnostics": iid, "timing": timing,
            "skipped": [{"path": p, "problem": why} for p, why in ev.problems],
            "detector_missed": [s.image_path + ("" if s.frame is None else f"#{s.frame}")
                                for s in ev.samples[ev.meta["n_evaluated"]:]]}


def write_results_json(ev, path, command=None):
    write_json_atomic(path, results_dict(ev, command))
    return Path(path)


CSV_FIELDS = ["image", "frame", "subset", "model", "condition", "noise_type", "level",
              "detected"] + [f"nme_{n}" for n in metrics.NORMALIZERS]


def write_errors_csv(ev, path):
    """One row per (image, model, condition): NME under all three normalisers ("inf" for a
    detector miss)."""
    n_eval = ev.meta["n_evaluated"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_FIELDS)
            for label, per in ev.errors.items():
                for c in ev.conditions:
                    t, lv = parse_condition(c)
                    for i, s in enumerate(ev.samples):
                        w.writerow([s.image_path, "" if s.frame is None else s.frame, s.subset,
                                    label, c, NOISE_NAMES[t], lv, int(i < n_eval)]
                                   + [f"{per[c][n][i]:.6g}" for n in metrics.NORMALIZERS])
    return Path(path)


def _caption(ev):
    m = ev.meta
    t = f"{m['threshold']:g}"
    return (f"Data set: {m['dataset']} ({m['format']}), split {m['split']}, "
            f"{m['n_images']} images. Boxes: {m['boxes']}. Noise: {m['noise']}. "
            f"NME normalised by the {metrics.NORMALIZER_INFO[m['normalizer']]} "
            f"(\"{m['normalizer']}\"); AUC@{t} = area under the CED on [0, {t}] / {t}; "
            f"FR@{t} = fraction of images with NME > {t}.")


def markdown(ev):
    """results.md: the landmark table (rows = conditions, AUC and FR per model), then the
    IID diagnostics tables."""
    t = f"{ev.threshold:g}"
    labels = list(ev.errors)
    conds = list(ev.conditions) + (["noisy"] if ev.has_noisy() else [])
    lines = [f"# Landmark localisation: AUC@{t} and FR@{t} ({ev.normalizer} NME)", "",
             _caption(ev), "",
             "| condition | " + " | ".join(f"{m} AUC@{t} | {m} FR@{t}" for m in labels) + " |",
             "|---|" + "---:|---:|" * len(labels)]
    for c in conds:
        cells = []
        for m in labels:
            s = ev.summary(m, c)
            cells += [f"{s['auc']:.3f}", f"{s['fr']:.3f}"]
        name = "noisy (12 pooled)" if c == "noisy" else c
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Mean NME ({ev.normalizer}):", "",
              "| condition | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for c in conds:
        lines.append(f"| {c} | " + " | ".join(
            f"{ev.summary(m, c)['mean_nme']:.4f}" for m in labels) + " |")
    for label, d in ev.iid.items():
        if "classifier" in d:
            cl = d["classifier"]
            lines += ["", f"## {label}: noise classifier", "",
                      f"Accuracy {cl['accuracy']:.3f} over {cl['n']} crops (each image once "
                      "per condition). Confusion matrix, rows = true type, columns = "
                      "predicted:", "",
                      "| true \\ predicted | " + " | ".join(cl["classes"]) + " |",
                      "|---|" + "---:|" * len(cl["classes"])]
            for name, row in zip(cl["classes"], cl["confusion"]):
                lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        if "denoiser" in d:
            lines += ["", f"## {label}: denoiser (against the clean crop)", "",
                      "| condition | PSNR in (dB) | PSNR out (dB) | SSIM in | SSIM out |",
                      "|---|---:|---:|---:|---:|"]
            for c, v in d["denoiser"].items():
                f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
                lines.append(f"| {c} | {v['psnr_input']:.2f} | {v['psnr_output']:.2f} | "
                             f"{f(v['ssim_input'])} | {f(v['ssim_output'])} |")
    return "\n".join(lines) + "\n"


def write_markdown(ev, path):
    write_text_atomic(path, markdown(ev))
    return Path(path)


def stdout_table(ev):
    """Compact text table for the terminal, normaliser and threshold named."""
    t = f"{ev.threshold:g}"
    labels = list(ev.errors)
    conds = list(ev.conditions) + (["noisy"] if ev.has_noisy() else [])
    w = max(12, *(len(m) for m in labels))
    head = f"{'condition':<16}" + "".join(f" | {m:>{w}}" for m in labels)
    lines = [f"AUC@{t} / FR@{t}, NME normalised by the "
             f"{metrics.NORMALIZER_INFO[ev.normalizer]}",
             f"{ev.meta['dataset']} split {ev.meta['split']}: {ev.meta['n_images']} images; "
             f"boxes: {ev.meta['boxes']}", head, "-" * len(head)]
    for c in conds:
        cells = []
        for m in labels:
            s = ev.summary(m, c)
            cells.append(f"{s['auc']:.3f} / {s['fr']:.3f}".rjust(w))
        lines.append(f"{c:<16}" + "".join(f" | {x}" for x in cells))
    for label, d in ev.iid.items():
        if "classifier" in d:
            lines.append(f"{label}: noise-classifier accuracy {d['classifier']['accuracy']:.3f}")
        if "denoiser" in d:
            noisy = [x for c, x in d["denoiser"].items() if c != "clean"]
            if noisy:
                lines.append(f"{label}: denoiser PSNR on noisy crops (mean over conditions) "
                             f"{np.mean([x['psnr_input'] for x in noisy]):.2f} -> "
                             f"{np.mean([x['psnr_output'] for x in noisy]):.2f} dB")
            elif "clean" in d["denoiser"]:
                lines.append(f"{label}: denoiser on clean crops: PSNR(output, input) "
                             f"{d['denoiser']['clean']['psnr_output']:.2f} dB")
    return "\n".join(lines)
