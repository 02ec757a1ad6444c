"""Parity of the exports: the Keras model, its SavedModel and TFLite variants on the same
crops (landmark differences, NME, latency) -> parity.json and parity.md."""
from pathlib import Path

import numpy as np
import tensorflow as tf

from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.crop import CROP_SCALE
from fadenn_tf.data.datasets import open_dataset
from fadenn_tf.data.pipeline import load_eval_data
from fadenn_tf.deploy.litert import (load_tflite, median_latency_ms, op_names, run_tflite,
                                     tflite_latency_ms)
from fadenn_tf.deploy.signatures import SERVING_SIGNATURE, serving_function
from fadenn_tf.evaluation.reduction import validation_step
from fadenn_tf.evaluation.scoring import ground_truth
from fadenn_tf.noise import apply_noise
from fadenn_tf.utils.atomic import write_json_atomic, write_text_atomic


def _noisy_half(crops, seed=0):
    """Degrade every other crop with a random paper noise condition (0..255 float32)."""
    n = len(crops)
    rng = np.random.default_rng(seed)
    t = np.where(np.arange(n) % 2 == 1, rng.integers(1, 5, n), 0).astype(np.int32)
    lv = rng.integers(1, 4, n).astype(np.int32)
    x = apply_noise(tf.constant(crops / 255.0, tf.float32), t, lv, tf.constant([seed, 1]))
    return np.clip(x.numpy() * 255.0, 0, 255).astype(np.float32)


def load_crops(data, size, split, max_images, noisy=False, scale=CROP_SCALE):
    """Evaluation crops of a dataset split: (crops [N,S,S,3] float32 0..255, EvalData).
    data: a dataset folder or None for the synthetic default (fadenn_tf.data.cache);
    scale: the crop region as a multiple of the face box (the model's crop_scale)."""
    root = resolve_data(data)
    samples, _ = open_dataset(root, split=split)
    if max_images:
        step = max(1, len(samples) // max_images)
        samples = samples[::step][:max_images]
    ev = load_eval_data(samples, size, scale)
    crops = ev.images.astype(np.float32)
    return (_noisy_half(crops) if noisy else crops), ev


def _image_nme(pred_crop, ev, normalizer):
    """Mean NME on image coordinates of landmarks predicted on the crops of EvalData `ev`,
    computed as `evaluate` computes it (evaluation.reduction.validation_step maps the crop
    landmarks back to the images)."""
    batch = {"image": ev.images, "region": ev.regions, "reference_size": ev.size,
             "truth": ground_truth(ev)}
    logs = validation_step({"landmarks": pred_crop}, batch, (normalizer,))
    return float(np.nanmean(logs[f"nme_{normalizer}"]))


def parity_report(model, tflite_paths, crops, ev=None, normalizer="diagonal", repeats=20,
                  saved_model_dir=None):
    """Compare TFLite variants (and the reloaded SavedModel) with the Keras model.

    crops [N,S,S,3] 0..255; ev: the EvalData they came from (for the NME on original-image
    coordinates; None skips the NME). Returns a dict with one row per variant:
    max_landmark_diff_px (crop pixels, max over images and points), mean_landmark_diff_px,
    nme, nme_change (absolute) and nme_change_rel (relative to Keras), size_bytes,
    latency_ms_b1 (median of `repeats` batch-1 calls), ops."""
    serve = serving_function(model)
    x = np.asarray(crops, dtype=np.float32)
    ref = np.concatenate([serve(tf.constant(x[i:i + 16]))["landmarks"].numpy()
                          for i in range(0, len(x), 16)])
    ref_nme = _image_nme(ref, ev, normalizer) if ev is not None else None
    one = tf.constant(x[:1])
    rows = [{"variant": "keras", "max_landmark_diff_px": 0.0, "mean_landmark_diff_px": 0.0,
             "nme": ref_nme, "nme_change": 0.0 if ref_nme is not None else None,
             "nme_change_rel": 0.0 if ref_nme is not None else None, "size_bytes": None,
             "latency_ms_b1": median_latency_ms(lambda: serve(one), repeats)}]

    def row(name, pred, size, lat, extra=None):
        d = np.abs(pred - ref)
        r = {"variant": name, "max_landmark_diff_px": float(d.max()),
             "mean_landmark_diff_px": float(d.mean()), "nme": None, "nme_change": None,
             "nme_change_rel": None, "size_bytes": size, "latency_ms_b1": lat}
        if ev is not None:
            r["nme"] = _image_nme(pred, ev, normalizer)
            r["nme_change"] = r["nme"] - ref_nme
            r["nme_change_rel"] = r["nme_change"] / ref_nme if ref_nme else None
        r.update(extra or {})
        rows.append(r)

    if saved_model_dir is not None:
        sig = tf.saved_model.load(str(saved_model_dir)).signatures[SERVING_SIGNATURE]
        pred = np.concatenate([sig(images=tf.constant(x[i:i + 16]))["landmarks"].numpy()
                               for i in range(0, len(x), 16)])
        size = sum(f.stat().st_size for f in Path(saved_model_dir).rglob("*") if f.is_file())
        row("saved_model", pred, size, median_latency_ms(lambda: sig(images=one), repeats))
    for name, path in tflite_paths.items():
        it = load_tflite(path)
        pred = run_tflite(it, x, batch_size=1)["landmarks"]
        row(f"tflite_{name}", pred, Path(path).stat().st_size,
            tflite_latency_ms(it, x[0], repeats), {"ops": op_names(it)})
    return {"normalizer": normalizer, "n_images": int(len(x)), "crop_size": int(x.shape[1]),
            "landmark_units": "pixels of the S x S crop", "rows": rows}


def format_report_markdown(report, title="Parity"):
    """Markdown table of a parity_report."""
    lines = [f"# {title}", "",
             f"{report['n_images']} test crops of {report['crop_size']} px; landmark "
             f"differences in {report['landmark_units']}; NME normaliser: "
             f"{report['normalizer']} (on original-image coordinates); latency: median, "
             "batch 1, this machine.", "",
             "| variant | max diff px | mean diff px | NME | NME change (rel) | size MB "
             "| latency ms |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        nme_s = "-" if r["nme"] is None else f"{r['nme']:.5f}"
        ch = ("-" if r["nme_change"] is None else
              f"{r['nme_change']:+.5f} ({100 * (r['nme_change_rel'] or 0):+.2f}%)")
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f}"
        lines.append(f"| {r['variant']} | {r['max_landmark_diff_px']:.4f} | "
                     f"{r['mean_landmark_diff_px']:.4f} | {nme_s} | {ch} | {size} | "
                     f"{r['latency_ms_b1']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(report, folder, title="Parity"):
    """Write parity.json and parity.md into `folder`; returns the Markdown text."""
    md = format_report_markdown(report, title)
    write_json_atomic(Path(folder) / "parity.json", report)
    write_text_atomic(Path(folder) / "parity.md", md)
    return md


def smooth_check_crops(size, n=4, seed=0):
    """n smooth random crops [n,size,size,3] float32 0..255 (upsampled noise): inputs for a
    quick parity check when no real crops are given."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (n, max(2, size // 8), max(2, size // 8), 3)).astype(np.float32)
    return tf.image.resize(small, (size, size)).numpy()
