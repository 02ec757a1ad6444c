"""One validation reduction: model outputs on a batch of crops -> per-example logs ->
the validation figures. Shared by training-time validation (`scoring.evaluate_landmarks`,
`evaluate_denoiser`, `evaluate_classifier`) and `fadenn_tf.evaluate` (`engine.evaluate`).

In TF Model Garden's terms:

    logs = {}                                         # one noise condition
    for batch in batches:                             # scoring.run_condition drives this
        logs = aggregate_logs(logs, validation_step(model(batch["image"]), batch))
    figures = reduce_aggregated_logs({"clean": logs, ...}, threshold=0.08)

Per-example logs (validation_step), each an array over the batch:
  crop_landmarks (B,68,2) reference-crop pixels; landmarks (B,68,2) image pixels;
  nme_<normaliser> (B,) NME against the annotations (fadenn_tf.metrics);
  noise_true, noise_pred (B,) int noise types (0 clean .. 4, fadenn_tf.noise.NOISE_NAMES);
  psnr_input, psnr_output (B,) dB and ssim_input, ssim_output (B,) of the noisy model input
  and of the denoised crop against the clean crop at the model side.
Figures (reduce_aggregated_logs): errors per condition and normaliser, metrics.summarize per
condition (mean / median NME, AUC and FR at the threshold; the CED is metrics.ced of the
same errors), clean and pooled noisy summaries, the noise classifier's confusion matrix and
accuracy, and the denoiser's mean PSNR / SSIM in and out.
"""
import numpy as np
import tensorflow as tf

from fadenn_tf import metrics
from fadenn_tf.data.crop import CropTransform
from fadenn_tf.models.pixels import PIXEL_RANGE
from fadenn_tf.noise import NOISE_NAMES, reference_points

PEAK = PIXEL_RANGE[1] - PIXEL_RANGE[0]   # PSNR / SSIM dynamic range of the images
SSIM_MIN_SIDE = 11                       # tf.image.ssim's window: smaller crops get no SSIM


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


def validation_step(outputs, batch, normalizers=(metrics.DEFAULT_NORMALIZER,)):
    """Per-example logs of one batch (see the module docstring for their names).

    outputs: the model's dict on the batch, every key optional: "landmarks" [B,68,2] crop
    pixels of the batch side S; "noise_probs" (or logits) [B,5]; "denoised" [B,s,s,3] 0..255
    at the model side s, with "input" and "clean" [B,s,s,3] when the model resized the batch
    (default: the batch's own). batch: "image" [B,S,S,3] 0..255 noisy crops; "clean" the
    same without noise; "window" (optional) [B,4] the model's windows of the reference crops
    (noise.model_windows: the batch crops are those windows); "region" [B,4] float64
    image-edge crop regions at the reference side
    "reference_size" R (CropTransform(region, R) maps back); "truth" [B,68,2] image-pixel
    annotations; "noise_type" [B] true noise type. normalizers: the NMEs logged.
    """
    logs = {}
    if outputs.get("landmarks") is not None:
        crop = np.asarray(outputs["landmarks"], np.float64)
        side, ref = int(np.shape(batch["image"])[1]), int(batch["reference_size"])
        window = batch.get("window")
        if side != ref or window is not None:
            crop = reference_points(crop, side, ref,
                                    None if window is None else np.asarray(window))
        image = np.stack([CropTransform(r, ref).invert(p)
                          for r, p in zip(batch["region"], crop)]) if len(crop) else crop
        logs["crop_landmarks"], logs["landmarks"] = crop, image
        for norm in normalizers:
            logs[f"nme_{norm}"] = metrics.nme(image, batch["truth"], norm) if len(crop) \
                else np.zeros(0)
    if outputs.get("noise_probs") is not None:
        logs["noise_pred"] = np.argmax(np.asarray(outputs["noise_probs"]), axis=-1)
        logs["noise_true"] = np.asarray(batch["noise_type"]).astype(logs["noise_pred"].dtype)
    if outputs.get("denoised") is not None:
        den = np.asarray(outputs["denoised"], np.float32)
        noisy = np.asarray(outputs.get("input", batch["image"]))
        clean = np.asarray(outputs.get("clean", batch["clean"]))
        logs["psnr_input"], logs["psnr_output"] = psnr(noisy, clean), psnr(den, clean)
        if den.shape[1] >= SSIM_MIN_SIDE:
            logs["ssim_input"], logs["ssim_output"] = ssim(noisy, clean), ssim(den, clean)
    return logs


def aggregate_logs(state, step_logs):
    """Add one batch's logs to the accumulated ones: state {name: [arrays]} (None or {} to
    start) -> state."""
    state = {} if state is None else state
    for name, value in step_logs.items():
        state.setdefault(name, []).append(value)
    return state


def _stacked(state, name):
    parts = state.get(name) or []
    return np.concatenate(parts) if parts else None


def condition_errors(errors, condition, normalizer=metrics.DEFAULT_NORMALIZER):
    """The NMEs of one condition, or of every noisy condition pooled ("noisy"), in
    condition order. errors: {condition: {normaliser: (N,) NME}}."""
    if condition == "noisy":
        return np.concatenate([e[normalizer] for c, e in errors.items() if c != "clean"])
    return errors[condition][normalizer]


def condition_summary(errors, condition, threshold=metrics.DEFAULT_THRESHOLD,
                      normalizer=metrics.DEFAULT_NORMALIZER):
    """metrics.summarize of condition_errors(errors, condition, normalizer)."""
    return metrics.summarize(condition_errors(errors, condition, normalizer), threshold,
                             normalizer)


def reduce_aggregated_logs(logs, threshold=metrics.DEFAULT_THRESHOLD,
                           normalizer=metrics.DEFAULT_NORMALIZER, failures=0):
    """The validation figures of one model: logs {condition name: aggregated logs} -> dict.

    failures: images that were not run (a detector found no face): they count as failures,
    NME inf, under every normaliser logged. Keys, each present when its logs are:
      "errors": {condition: {normaliser: (N + failures,) NME}};
      "per_condition": {condition: summary} (metrics.summarize under `normalizer`);
      "clean", "noisy": the clean summary and the noisy conditions pooled;
      "classifier": {"accuracy", "confusion" (5x5 counts, rows = true type), "classes", "n",
      "per_condition_accuracy"};
      "denoiser": {condition: {"psnr_input", "psnr_output", "ssim_input", "ssim_output"}}
      (dB / SSIM means over images; SSIM None for crops under 11 px).
    """
    errors, confusion, accuracy, denoiser = {}, np.zeros((5, 5), np.int64), {}, {}
    for name, state in logs.items():
        norms = [k[4:] for k in state if k.startswith("nme_")]
        if norms:
            errors[name] = {n: np.concatenate((state[f"nme_{n}"] or [np.zeros(0)])
                                              + [np.full(failures, np.inf)]) for n in norms}
        pred = _stacked(state, "noise_pred")
        if pred is not None:
            np.add.at(confusion, (_stacked(state, "noise_true"), pred), 1)
            accuracy[name] = float(np.mean(pred == _stacked(state, "noise_true")))
        if _stacked(state, "psnr_input") is not None:
            ssim_in, ssim_out = _stacked(state, "ssim_input"), _stacked(state, "ssim_output")
            denoiser[name] = {
                "psnr_input": float(_stacked(state, "psnr_input").mean()),
                "psnr_output": float(_stacked(state, "psnr_output").mean()),
                "ssim_input": float(ssim_in.mean()) if ssim_in is not None else None,
                "ssim_output": float(ssim_out.mean()) if ssim_out is not None else None}
    figures = {}
    if errors:
        figures["errors"] = errors
        figures["per_condition"] = {c: condition_summary(errors, c, threshold, normalizer)
                                    for c in errors}
        if "clean" in errors:
            figures["clean"] = figures["per_condition"]["clean"]
        if any(c != "clean" for c in errors):
            figures["noisy"] = condition_summary(errors, "noisy", threshold, normalizer)
    if accuracy:
        n = int(confusion.sum())
        figures["classifier"] = {"accuracy": float(np.trace(confusion) / max(n, 1)),
                                 "confusion": confusion.tolist(), "classes": list(NOISE_NAMES),
                                 "n": n, "per_condition_accuracy": accuracy}
    if denoiser:
        figures["denoiser"] = denoiser
    return figures
