"""Landmark and denoiser evaluation on loaded crops, per noise condition.

The one evaluation engine behind training-time validation and `fadenn_tf.evaluate`:
predictions are made on crops, mapped back to IMAGE pixel coordinates through the crop's
inverse transform, and scored against the original annotations with `fadenn_tf.metrics`.

Noise protocol (`fadenn_tf.noise`): `eval_data` holds the clean crops at the REFERENCE side R
(load_eval_data(samples, R)); each condition is applied there and the crops are then resized
to the model's side `size` (default R), so models of any input size are validated on the
same noisy reference pixels.
"""
import numpy as np
import tensorflow as tf

from fadenn_tf import metrics, noise
from fadenn_tf.data.crop import CropTransform
from fadenn_tf.data.pipeline import as_loaded, load_eval_data
from fadenn_tf.models.pixels import PIXEL_RANGE
from fadenn_tf.noise import condition_name, noise_conditions

PEAK = PIXEL_RANGE[1] - PIXEL_RANGE[0]   # PSNR / SSIM dynamic range of the images


CACHE_BYTES = 64 * 2 ** 20     # per condition dataset (64-px crops of ~1300 images)


def make_eval_dataset(data, size, batch_size, noise_type=0, level=1, seed=0,
                      reference_size=None, keep_reference=False):
    """Evaluation batches at model side `size` from reference crops, fixed noise condition.

    data: EvalData loaded at the reference side R (its .size; load_eval_data(samples, R)), or
    a list of Samples (loaded at `reference_size`, default noise.REFERENCE_SIZE). The
    condition is applied to the R crops and the result resized to `size`
    (noise.noisy_model_input). Keys: image (noisy, 0..255 pixels), clean, landmarks (crop coords at
    `size`, NaN if unannotated), region [B, 4] float32 (image edge coords;
    CropTransform(region, size).invert maps predictions back; EvalData.regions has them in
    float64), index [B] int32 (position in the sample list), noise_type, noise_level [B]
    int32; reference [B, R, R, 3] (noisy crop at R, [0, 1]) if keep_reference. Noise of
    batch k is seeded by (seed, k), so a condition is reproducible. noise_type 0 = clean
    (level reported 0).
    """
    data = as_loaded(data, load_eval_data, int(reference_size or noise.REFERENCE_SIZE),
                     "make_eval_dataset")
    ref, size = int(data.size), int(size)
    ds = tf.data.Dataset.from_tensor_slices({
        "image": data.images, "landmarks": data.landmarks,
        "region": data.regions.astype(np.float32), "index": data.indices})
    ds = ds.batch(int(batch_size)).enumerate()

    noisy_input = noise.noisy_model_input_fn(ref, size)

    def degrade(k, batch):
        reference = tf.cast(batch["image"], tf.float32) / 255.0
        nb = tf.shape(reference)[0]
        ntype = tf.fill([nb], tf.constant(int(noise_type), tf.int32))
        lev = tf.fill([nb], tf.constant(int(level) if noise_type else 0, tf.int32))
        noisy, clean, noisy_ref = noisy_input(
            reference, ntype, lev, tf.stack([tf.constant(int(seed), tf.int64), k]))
        out = dict(batch)
        out.update(image=noisy * 255.0, clean=clean * 255.0,
                   noise_type=ntype, noise_level=lev)
        if ref != size:
            out["landmarks"] = noise.rescale_points(batch["landmarks"], ref, size)
        if keep_reference:
            out["reference"] = noisy_ref
        return out

    ds = ds.map(degrade, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _condition_dataset(eval_data, batch_size, noise_type, level, seed, size=None):
    """make_eval_dataset for one condition and model side `size` (default eval_data.size),
    built once per EvalData and reused: building it traces its map function (about half a
    second), and training evaluates the same conditions on the same crops again and again.
    The stream is a pure function of (data, condition, seed, size), so a reused dataset
    yields the same batches; when its float32 image + clean crops take at most
    CACHE_BYTES it is also kept in memory after the first pass (noise at the reference side
    is then computed once per condition, not at every validation)."""
    key = (int(size or eval_data.size), int(batch_size), int(noise_type), max(int(level), 1),
           int(seed))
    cache = getattr(eval_data, "__dict__", {}).setdefault("_condition_datasets", {})
    if key not in cache:
        ds = make_eval_dataset(eval_data, key[0], key[1], noise_type=key[2], level=key[3],
                               seed=key[4])
        if 2 * len(eval_data) * key[0] * key[0] * 3 * 4 <= CACHE_BYTES:
            ds = ds.cache()
        cache[key] = ds
    return cache[key]


def predict_crops(predict_fn, eval_data, batch_size=32, noise_type=0, level=0, seed=0,
                  keep=(), size=None):
    """Run predict_fn over every crop of `eval_data` under one noise condition.

    eval_data: EvalData of reference crops; size: the model's side S (default
    eval_data.size): the condition is applied at the reference side, then resized to S.
    predict_fn: [B,S,S,3] float32 pixels in 0..255 -> dict with "landmarks" [B,68,2] in crop pixels
    (and optionally "noise_probs", "denoised"). Returns a dict of NumPy arrays:
    "landmarks" (N,68,2) in IMAGE pixels, "crop_landmarks" (N,68,2) and any key in `keep`
    stacked over the data set, plus "noisy"/"clean" crops if asked for in `keep`.
    """
    size = int(size or eval_data.size)
    out = {"crop_landmarks": []}
    for k in keep:
        out[k] = []
    for batch in condition_batches(eval_data, batch_size, noise_type, level, seed, size):
        res = predict_fn(batch["image"])
        out["crop_landmarks"].append(np.asarray(res["landmarks"], np.float64))
        for k in keep:
            if k in ("noisy", "clean"):
                out[k].append(batch["image" if k == "noisy" else "clean"].numpy())
            else:
                out[k].append(np.asarray(res[k]))
    out = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}
    out["landmarks"] = image_points(eval_data, out["crop_landmarks"], size)
    return out


def condition_batches(eval_data, batch_size=32, noise_type=0, level=0, seed=0, size=None):
    """The crops of `eval_data` under one condition, in row order: a dataset of dicts with
    "image" [B,S,S,3] float32 0..255 (the condition applied at the reference side, then
    resized to the model side `size`, default eval_data.size) and "clean" (the same crops
    without it)."""
    return _condition_dataset(eval_data, batch_size, noise_type, level, seed,
                              int(size or eval_data.size))


def image_points(eval_data, crop_landmarks, size=None):
    """(N,68,2) points in the S x S crops of eval_data's rows (S = size, default
    eval_data.size) -> (N,68,2) image pixels through each crop's inverse transform."""
    size = int(size or eval_data.size)
    return np.stack([CropTransform(eval_data.regions[i], size).invert(p)
                     for i, p in enumerate(crop_landmarks)])


def ground_truth(eval_data):
    """(N,68,2) image-pixel annotations of the loaded crops, in eval_data's order."""
    return np.stack([np.asarray(s.landmarks, np.float64) for s in eval_data.samples])


def evaluate_landmarks(predict_fn, eval_data, conditions=None, batch_size=32, seed=0,
                       normalizer=metrics.DEFAULT_NORMALIZER,
                       threshold=metrics.DEFAULT_THRESHOLD, size=None):
    """Per-condition landmark figures.

    conditions: list of (type, level); default all 13 (clean + 4 types x 3 levels).
    size: the model's input side (default eval_data.size; see predict_crops).
    Returns {"per_condition": {name: summary}, "errors": {name: (N,) NME array},
    "clean": summary, "noisy": summary pooled over every noisy condition given}.
    """
    conditions = conditions or noise_conditions()
    gt = ground_truth(eval_data)
    per, errs = {}, {}
    for t, lv in conditions:
        name = condition_name(t, lv)
        pred = predict_crops(predict_fn, eval_data, batch_size, t, lv, seed,
                             size=size)["landmarks"]
        errs[name] = metrics.nme(pred, gt, normalizer)
        per[name] = metrics.summarize(errs[name], threshold, normalizer)
    result = {"per_condition": per, "errors": errs}
    if "clean" in errs:
        result["clean"] = per["clean"]
    noisy = [e for n, e in errs.items() if n != "clean"]
    if noisy:
        result["noisy"] = metrics.summarize(np.concatenate(noisy), threshold, normalizer)
    return result


def mean_shape_predictor(mean_shape):
    """A predict_fn returning the same (68,2) crop-pixel shape for every image: the
    mean-shape baseline every landmark model must beat."""
    ms = tf.constant(np.asarray(mean_shape, np.float32))

    def predict(images):
        n = tf.shape(images)[0]
        return {"landmarks": tf.tile(ms[None], [n, 1, 1])}
    return predict


def psnr(a, b):
    """PSNR in dB between image batches of 0..255 pixels (peak 255): [B,H,W,3] -> [B]."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2, 3))
    return 10.0 * np.log10(PEAK ** 2 / np.maximum(mse, PEAK ** 2 * 2.5e-13))


def ssim(a, b):
    """SSIM (tf.image.ssim: 11x11 gaussian window, sigma 1.5, k1 0.01, k2 0.03) between image
    batches of 0..255 pixels (max_val 255): [B,H,W,3] -> [B] NumPy float64; H, W >= 11."""
    a = tf.convert_to_tensor(np.asarray(a, np.float32))
    b = tf.convert_to_tensor(np.asarray(b, np.float32))
    return tf.image.ssim(a, b, max_val=PEAK).numpy().astype(np.float64)


def evaluate_denoiser(denoise_fn, eval_data, conditions=None, batch_size=32, seed=0,
                      size=None):
    """PSNR (dB) and SSIM (against the clean crop resized to S) of the noisy input and of
    denoise_fn's output per condition. denoise_fn: [B,S,S,3] pixels in 0..255 -> same; size: S
    (default eval_data.size; see predict_crops). Returns {name:
    {"psnr_input", "psnr_output", "ssim_input", "ssim_output"}} (means over images)."""
    conditions = conditions or noise_conditions()
    res = {}
    for t, lv in conditions:
        ds = _condition_dataset(eval_data, batch_size, t, lv, seed, size)
        pin, pout, sin, sout = [], [], [], []
        for batch in ds:
            den = np.asarray(denoise_fn(batch["image"]))
            pin.append(psnr(batch["image"].numpy(), batch["clean"].numpy()))
            pout.append(psnr(den, batch["clean"].numpy()))
            sin.append(ssim(batch["image"].numpy(), batch["clean"].numpy()))
            sout.append(ssim(den, batch["clean"].numpy()))
        res[condition_name(t, lv)] = {"psnr_input": float(np.concatenate(pin).mean()),
                                      "psnr_output": float(np.concatenate(pout).mean()),
                                      "ssim_input": float(np.concatenate(sin).mean()),
                                      "ssim_output": float(np.concatenate(sout).mean())}
    return res


def evaluate_classifier(logits_fn, eval_data, conditions=None, batch_size=32, seed=0,
                        size=None):
    """Noise-classifier accuracy over the conditions (each image once per condition).
    logits_fn: [B,S,S,3] -> [B,5]; size: S (default eval_data.size). Returns {"accuracy", "confusion" (5x5 counts, rows =
    true type), "n"}."""
    conditions = conditions or noise_conditions()
    conf = np.zeros((5, 5), np.int64)
    for t, lv in conditions:
        ds = _condition_dataset(eval_data, batch_size, t, lv, seed, size)
        for batch in ds:
            pred = np.argmax(np.asarray(logits_fn(batch["image"])), axis=-1)
            np.add.at(conf, (np.full_like(pred, t), pred), 1)
    n = int(conf.sum())
    return {"accuracy": float(np.trace(conf) / max(n, 1)), "confusion": conf.tolist(), "n": n}
