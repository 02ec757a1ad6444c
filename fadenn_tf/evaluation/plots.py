"""PNG figures of an Evaluation (matplotlib, Agg backend: no display needed).

- auc_vs_level: the paper's Figure 4: one subplot per noise type, AUC against the level
  (0 = clean), one line per model.
- ced: cumulative error distributions, clean and pooled noisy, one line per model.
- landmark_grid: the paper's Figures 5-6: rows = conditions, columns = a few images; the
  noisy crop with the ground truth (green) and the prediction (red) drawn on it.
- confusion: the noise classifier's confusion matrix.
Every figure names the data set, split, normaliser and threshold.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fadenn_tf import metrics  # noqa: E402
from fadenn_tf.evaluation.reduction import condition_errors  # noqa: E402
from fadenn_tf.noise import LEVELS, NOISE_NAMES, condition_name  # noqa: E402
from fadenn_tf.utils.atomic import save_figure_atomic  # noqa: E402

TITLES = {1: "down-sampling", 2: "gaussian blur", 3: "gaussian noise", 4: "colour scaling"}


def _context(ev):
    """Short data description for titles: the data set's folder name (no machine path), the
    split's name (its long description is in results.json) and the image count."""
    m = ev.meta
    name = str(m["dataset"]).rstrip("/").split("/")[-1] or str(m["dataset"])
    return f"{name} [{str(m['split']).split(' ')[0]}], {m['n_images']} images"


def _save(fig, path):
    """Write the figure atomically (a failed write raises WriteError naming `path`)."""
    try:
        return save_figure_atomic(fig, path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def auc_vs_level(ev, path):
    """Figure 4: 2x2 subplots (noise types), x = level 0..3, y = AUC@threshold."""
    t = ev.threshold
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharey=True,
                             layout="constrained")
    for k, ax in zip(range(1, 5), axes.ravel()):
        for label in ev.errors:
            xs, ys = [], []
            for lv in (0,) + LEVELS:
                name = "clean" if lv == 0 else condition_name(k, lv)
                if name in ev.conditions:
                    xs.append(lv)
                    ys.append(ev.summary(label, name)["auc"])
            if xs:
                ax.plot(xs, ys, marker="o", label=label)
        ax.set_title(TITLES[k])
        ax.set_xticks([0, 1, 2, 3])
        ax.set_xlabel("noise level (0 = clean)")
        ax.set_ylabel(f"AUC@{t:g}")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"AUC@{t:g} vs noise level ({ev.normalizer} NME) - {_context(ev)}", fontsize=10)
    return _save(fig, path)


def ced(ev, path, x_max=None):
    """CED curves, clean and pooled noisy (one subplot each), threshold marked."""
    t = ev.threshold
    x_max = x_max or 2 * t
    x = np.linspace(0, x_max, 401)
    parts = [("clean", "clean")] if "clean" in ev.conditions else []
    if ev.has_noisy():
        parts.append(("noisy", "noisy (12 conditions pooled)" if len(ev.conditions) >= 13
                      else "noisy (pooled)"))
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4.5), squeeze=False,
                             layout="constrained")
    for ax, (cond, title) in zip(axes[0], parts):
        for label in ev.errors:
            errs = condition_errors(ev.errors[label], cond, ev.normalizer)
            auc = ev.summary(label, cond)["auc"]
            ax.plot(x, metrics.ced(errs, x), label=f"{label} (AUC@{t:g} {auc:.3f})")
        ax.axvline(t, color="grey", ls="--", lw=1)
        ax.set_xlim(0, x_max)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"NME ({ev.normalizer})")
        ax.set_ylabel("fraction of images")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Cumulative error distribution - {_context(ev)}", fontsize=10)
    return _save(fig, path)


def landmark_grid(ev, label, path):
    """Rows = conditions, columns = the grid images: the noisy crop (as the model saw it,
    at the evaluation crop size) with ground truth (green) and `label`'s prediction (red)."""
    g = ev.grid
    rows, conds = g["rows"], g["conditions"]
    n_r, n_c = len(conds), max(len(rows), 1)
    fig, axes = plt.subplots(n_r, n_c, figsize=(1.9 * n_c + 1.2, 1.9 * n_r + 0.4),
                             squeeze=False, layout="constrained")
    for i, c in enumerate(conds):
        for j in range(n_c):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(rows):
                continue
            ax.imshow(g["crops"][c][j], interpolation="nearest")
            true, pred = g["true"][j], g["pred"][label][c][j]
            ax.scatter(true[:, 0], true[:, 1], s=3, c="lime", linewidths=0)
            ax.scatter(pred[:, 0], pred[:, 1], s=3, c="red", linewidths=0)
            e = ev.errors[label][c][ev.normalizer][rows[j]]
            ax.set_title(f"NME {e:.3f}", fontsize=7, pad=2)
            if j == 0:
                ax.set_ylabel(c, fontsize=8)
    fig.suptitle(f"{label}: prediction (red) vs ground truth (green)\n{ev.normalizer} NME; "
                 f"{_context(ev)}", fontsize=8)
    return _save(fig, path)


def confusion(conf, label, path, classes=NOISE_NAMES):
    """Confusion matrix image (rows = true type, columns = predicted), counts annotated."""
    conf = np.asarray(conf)
    fig, ax = plt.subplots(figsize=(5.5, 4.8), layout="constrained")
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted noise type")
    ax.set_ylabel("true noise type")
    acc = np.trace(conf) / max(conf.sum(), 1)
    ax.set_title(f"{label}: noise classifier, accuracy {acc:.3f}", fontsize=9)
    return _save(fig, path)


def write_all(ev, out_dir):
    """Every figure of `ev` into out_dir; returns the written paths."""
    out = Path(out_dir)
    paths = []
    if ev.has_noisy():
        paths.append(auc_vs_level(ev, out / "auc_vs_level.png"))
    paths.append(ced(ev, out / "ced.png"))
    for label in ev.errors:
        if ev.grid.get("rows"):
            paths.append(landmark_grid(ev, label, out / f"landmarks_{_safe(label)}.png"))
        if "classifier" in ev.iid.get(label, {}):
            paths.append(confusion(ev.iid[label]["classifier"]["confusion"], label,
                                   out / f"confusion_{_safe(label)}.png"))
    return paths


def _safe(label):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(label))
