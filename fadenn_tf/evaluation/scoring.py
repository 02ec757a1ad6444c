"""Validation passes: a model over the noisy crops of one condition, scored through the
shared reduction (`fadenn_tf.evaluation.reduction`).

`run_condition` is the one loop behind training-time validation (`evaluate_landmarks`,
`evaluate_denoiser`, `evaluate_classifier`, called by fadenn_tf.training.stages) and
`fadenn_tf.evaluate` (engine.evaluate): predictions are made on crops, mapped back to IMAGE
pixel coordinates through the crop's inverse transform and scored against the original
annotations with `fadenn_tf.metrics`.

Noise protocol (`fadenn_tf.noise`): `eval_data` holds the clean crops at the REFERENCE side R
(load_eval_data(samples, R)); each condition is applied there (the noisy crop clipped to
0..255 like an image) and the crops are then resized to the model's side `size` (default R),
so models of any input size are validated on the same noisy reference pixels. A model
that crops tighter than the reference (crop_scale below 2) is given its window of each noisy
crop instead (noise.model_windows), and its points come back through that window.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import tensorflow as tf

from fadenn_tf import metrics, noise
from fadenn_tf.data.crop import CROP_SCALE
from fadenn_tf.data.pipeline import as_loaded, load_eval_data
from fadenn_tf.evaluation.reduction import aggregate_logs, reduce_aggregated_logs, validation_step
from fadenn_tf.evaluation.reduction import psnr, ssim  # noqa: F401 (experiments import them here)
from fadenn_tf.noise import condition_name, noise_conditions

CACHE_BYTES = 64 * 2 ** 20     # per condition dataset (64-px crops of ~1300 images)


def make_eval_dataset(data, size, batch_size, condition=(0, 1), seed=0, *, reference_size=None,
                      keep_reference=False, crop_scale=CROP_SCALE):
    """Evaluation batches at model side `size` from reference crops, under one noise
    `condition` (type, level).

    data: EvalData loaded at the reference side R (its .size; load_eval_data(samples, R)), or
    a list of Samples (loaded at `reference_size`, default noise.REFERENCE_SIZE). The
    condition is applied to the R crops, the noisy crop clipped to 0..255, and the result
    resized to `size` (noise.to_model_size); "clean" is the uint8 crop resized the same way.
    crop_scale below 2 (a model cropping tighter): each crop's window (noise.model_windows
    of its face box) is resampled to `size` instead, and batches hold "window" [B, 4].
    Keys: image (noisy, float32 0..255 pixels), clean, landmarks (crop coords at `size`,
    NaN if unannotated), region [B, 4] float32 (image edge coords; CropTransform(region, R)
    maps back; EvalData.regions has them in float64), index [B] int32 (position in the
    sample list), noise_type, noise_level [B] int32; reference [B, R, R, 3] (noisy crop at R,
    [0, 1], before clipping) if keep_reference. Noise of batch k is seeded by (seed, k), so a
    condition is reproducible. noise_type 0 = clean (level reported 0).
    """
    data = as_loaded(data, load_eval_data, int(reference_size or noise.REFERENCE_SIZE),
                     "make_eval_dataset")
    noise_type, level = condition
    ref, size = int(data.size), int(size)
    windowed = noise.uses_window(crop_scale)
    ds = tf.data.Dataset.from_tensor_slices({
        "image": data.images, "landmarks": data.landmarks,
        "region": data.regions.astype(np.float32), "index": data.indices,
        "box": data.boxes.astype(np.float32)})
    ds = ds.batch(int(batch_size)).enumerate()

    noisy_input = noise.noisy_model_input_fn(ref, ref)    # the noise at R; resized below

    def degrade(k, batch):
        pixels = tf.cast(batch["image"], tf.float32)
        nb = tf.shape(pixels)[0]
        ntype = tf.fill([nb], tf.constant(int(noise_type), tf.int32))
        lev = tf.fill([nb], tf.constant(int(level) if noise_type else 0, tf.int32))
        noisy, _, noisy_ref = noisy_input(
            pixels / 255.0, ntype, lev, tf.stack([tf.constant(int(seed), tf.int64), k]))
        image, clean = noisy * 255.0, pixels
        out = dict(batch)
        windows = noise.model_windows(batch["box"], ref, crop_scale) if windowed else None
        if ref != size or windowed:
            image = noise.to_model_input(image, size, windows)
            clean = noise.to_model_input(clean, size, windows)
            out["landmarks"] = noise.window_points(batch["landmarks"], ref, size, windows)
        if windowed:
            out["window"] = windows
        out.update(image=image, clean=clean, noise_type=ntype, noise_level=lev)
        if keep_reference:
            out["reference"] = noisy_ref
        return out

    ds = ds.map(degrade, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def condition_batches(eval_data, batch_size=32, noise_type=0, level=0, seed=0, size=None,
                      crop_scale=CROP_SCALE):
    """The crops of `eval_data` under one condition, in row order (make_eval_dataset at the
    model side `size`, default eval_data.size, and its `crop_scale`), built once per EvalData
    and reused: building
    it traces its map function (about half a second), and training evaluates the same
    conditions on the same crops again and again. The stream is a pure function of (data,
    condition, seed, size), so a reused dataset yields the same batches; when its float32
    image + clean crops take at most CACHE_BYTES it is also kept in memory after the first
    pass (the noise is then computed once per condition, not at every validation)."""
    key = (int(size or eval_data.size), int(batch_size), int(noise_type), max(int(level), 1),
           int(seed), float(crop_scale))
    cache = getattr(eval_data, "__dict__", {}).setdefault("_condition_datasets", {})
    if key not in cache:
        ds = make_eval_dataset(eval_data, key[0], key[1], (key[2], key[3]), key[4],
                               crop_scale=key[5])
        if 2 * len(eval_data) * key[0] * key[0] * 3 * 4 <= CACHE_BYTES:
            ds = ds.cache()
        cache[key] = ds
    return cache[key]


def ground_truth(eval_data):
    """(N,68,2) image-pixel annotations of the loaded crops, in eval_data's order."""
    return np.stack([np.asarray(s.landmarks, np.float64) for s in eval_data.samples])


@dataclass(frozen=True)
class ValidationSpec:
    """How one validation pass runs: size: the side S of the batches given to the model
    (default: the data's reference side R); batch_size: crops per model call; seed: noise
    seed (batch k seeded by (seed, k)); normalizers: the NMEs logged (metrics.NORMALIZERS);
    crop_scale: the model's crop as a multiple of the face box (below 2: its window of each
    reference crop, make_eval_dataset)."""
    size: Optional[int] = None
    batch_size: int = 32
    seed: int = 0
    normalizers: tuple = (metrics.DEFAULT_NORMALIZER,)
    crop_scale: float = CROP_SCALE


def run_condition(predict, eval_data, condition, spec=ValidationSpec(), *, true_type=None,
                  clean=None):
    """Run `predict` over every crop of `eval_data` under one noise condition -> the
    aggregated per-example logs (reduction.validation_step; reduce_aggregated_logs turns
    the logs of several conditions into figures).

    predict(batch) -> outputs (see validation_step): batch holds "image" [B,S,S,3] float32
    0..255 noisy crops, "clean", and "start", the row of its first crop in eval_data.
    condition: (noise_type, level) synthesised on the reference crops. true_type: the noise
    type the classifier should name (default the condition's; 0 for crops degraded
    elsewhere). clean: an EvalData of the same rows at the batch side holding the clean
    crops and annotations to score against (default eval_data itself).
    """
    noise_type, level = condition
    if clean is not None and int(clean.size) != int(spec.size or eval_data.size):
        raise ValueError(f"clean crops of side {clean.size} for batches of side "
                         f"{spec.size or eval_data.size}")
    truth = ground_truth(clean if clean is not None else eval_data) \
        if spec.normalizers and len(eval_data) else None
    labelled = noise_type if true_type is None else true_type
    state, start = {}, 0
    for batch in condition_batches(eval_data, spec.batch_size, noise_type, level, spec.seed,
                                   spec.size, spec.crop_scale):
        b = int(batch["image"].shape[0])
        rows = slice(start, start + b)
        step = {"image": batch["image"], "start": start,
                "clean": batch["clean"] if clean is None
                else clean.images[rows].astype(np.float32),
                "region": eval_data.regions[rows], "reference_size": eval_data.size,
                "box": eval_data.boxes[rows], "window": batch.get("window"),
                "truth": None if truth is None else truth[rows],
                "noise_type": np.full(b, labelled, np.int64)}
        state = aggregate_logs(state, validation_step(predict(step), step, spec.normalizers))
        start += b
    return state


def _run_conditions(predict, eval_data, conditions, spec):
    """{condition name: aggregated logs} over `conditions` (default all 13)."""
    return {condition_name(t, lv): run_condition(predict, eval_data, (t, lv), spec)
            for t, lv in (conditions or noise_conditions())}


def predict_crops(predict_fn, eval_data, condition=(0, 0), spec=None, keep=()):
    """Run predict_fn over every crop of `eval_data` under one noise `condition` (type,
    level).

    eval_data: EvalData of reference crops; spec: ValidationSpec (the model's side S, default
    eval_data.size, and crop_scale; batch size; seed): the condition is applied at the
    reference side, then resized to S (the window of a model with crop_scale below 2:
    make_eval_dataset).
    predict_fn: [B,S,S,3] float32 pixels in 0..255 -> dict with "landmarks" [B,68,2] in crop pixels
    (and optionally "noise_probs", "denoised"). Returns a dict of NumPy arrays:
    "landmarks" (N,68,2) in IMAGE pixels, "crop_landmarks" (N,68,2) at side S and any key
    in `keep` stacked over the data set, plus "noisy"/"clean" crops if asked for in `keep`.
    """
    kept = {k: [] for k in ("crop_landmarks",) + tuple(keep)}

    def predict(batch):
        res = predict_fn(batch["image"])
        kept["crop_landmarks"].append(np.asarray(res["landmarks"], np.float64))
        for k in keep:
            value = batch["image" if k == "noisy" else k] if k in ("noisy", "clean") else res[k]
            kept[k].append(np.asarray(value))
        return {"landmarks": res["landmarks"]}
    spec = dataclasses.replace(spec or ValidationSpec(), normalizers=())
    logs = run_condition(predict, eval_data, tuple(condition), spec)
    out = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in kept.items()}
    out["landmarks"] = np.concatenate(logs["landmarks"]) if logs else np.zeros((0,))
    return out


def evaluate_landmarks(predict_fn, eval_data, conditions=None, spec=None,
                       threshold=metrics.DEFAULT_THRESHOLD):
    """Per-condition landmark figures.

    conditions: list of (type, level); default all 13 (clean + 4 types x 3 levels).
    spec: ValidationSpec (the model's side and crop_scale, batch size, seed; the figures
    are under its first normaliser); threshold: of AUC and FR.
    Returns {"per_condition": {name: summary}, "errors": {name: (N,) NME array},
    "clean": summary, "noisy": summary pooled over every noisy condition given}.
    """
    spec = spec or ValidationSpec()
    normalizer = spec.normalizers[0]
    spec = dataclasses.replace(spec, normalizers=(normalizer,))
    figures = reduce_aggregated_logs(
        _run_conditions(lambda b: {"landmarks": predict_fn(b["image"])["landmarks"]},
                        eval_data, conditions, spec), threshold, normalizer)
    result = {"per_condition": figures["per_condition"],
              "errors": {c: e[normalizer] for c, e in figures["errors"].items()}}
    result.update({k: figures[k] for k in ("clean", "noisy") if k in figures})
    return result


def mean_shape_predictor(mean_shape):
    """A predict_fn returning the same (68,2) crop-pixel shape for every image: the
    mean-shape baseline every landmark model must beat."""
    ms = tf.constant(np.asarray(mean_shape, np.float32))

    def predict(images):
        n = tf.shape(images)[0]
        return {"landmarks": tf.tile(ms[None], [n, 1, 1])}
    return predict


def evaluate_denoiser(denoise_fn, eval_data, conditions=None, spec=None):
    """PSNR (dB) and SSIM (against the clean crop resized to S) of the noisy input and of
    denoise_fn's output per condition. denoise_fn: [B,S,S,3] pixels in 0..255 -> same; spec:
    ValidationSpec (S, default eval_data.size; crop_scale; batch size; seed). Returns {name:
    {"psnr_input", "psnr_output", "ssim_input", "ssim_output"}} (means over images)."""
    spec = dataclasses.replace(spec or ValidationSpec(), normalizers=())
    logs = _run_conditions(lambda b: {"denoised": denoise_fn(b["image"])}, eval_data,
                           conditions, spec)
    return reduce_aggregated_logs(logs).get("denoiser", {})


def evaluate_classifier(logits_fn, eval_data, conditions=None, spec=None):
    """Noise-classifier accuracy over the conditions (each image once per condition).
    logits_fn: [B,S,S,3] -> [B,5]; spec: ValidationSpec (as evaluate_denoiser). Returns
    {"accuracy",
    "confusion" (5x5 counts, rows = true type), "n"}."""
    spec = dataclasses.replace(spec or ValidationSpec(), normalizers=())
    logs = _run_conditions(lambda b: {"noise_probs": logits_fn(b["image"])}, eval_data,
                           conditions, spec)
    cl = reduce_aggregated_logs(logs).get("classifier")
    if cl is None:   # no crop at all
        return {"accuracy": 0.0, "confusion": np.zeros((5, 5), np.int64).tolist(), "n": 0}
    return {k: cl[k] for k in ("accuracy", "confusion", "n")}
