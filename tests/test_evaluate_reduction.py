"""The one validation reduction (fadenn_tf.evaluation.reduction): per-batch logs and the
figures against values worked out here from their definitions, and training-time validation
(scoring.evaluate_*) against `evaluate` (engine.evaluate) on the same model and images."""
import math

import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf.evaluation.reduction import (aggregate_logs, reduce_aggregated_logs,
                                            validation_step)
from tests.fixtures import UNIT_FACE68

REGION = (10.0, 20.0, 110.0, 120.0)   # crop region in image edge coordinates: 100 x 100 px
R, S = 50, 25                         # reference crop side, model side


def _to_crop(points, side):
    """Image pixels -> crop pixels of the REGION crop resized to side^2, pixel centres:
    u = (x + 0.5 - x0) * side / width - 0.5."""
    x0, y0, x1, y1 = REGION
    scale = np.array([side / (x1 - x0), side / (y1 - y0)])
    return (points + 0.5 - np.array([x0, y0])) * scale - 0.5


def _batch(truth, b, side=S):
    return {"image": np.zeros((b, side, side, 3), np.float32),
            "clean": np.zeros((b, side, side, 3), np.float32),
            "region": np.array([REGION] * b), "reference_size": R, "truth": truth,
            "noise_type": np.array([2] * b)}


def test_validation_step_maps_points_back_and_scores_them():
    truth = np.stack([UNIT_FACE68 * 30 + (60, 70), UNIT_FACE68 * 40 + (55, 65)])
    shift = np.array([[3.0, 4.0], [6.0, -8.0]])            # 5 and 10 image pixels per point
    pred = truth + shift[:, None]
    logs = validation_step({"landmarks": _to_crop(pred, S)}, _batch(truth, 2),
                           ("diagonal", "box", "interocular"))
    np.testing.assert_allclose(logs["landmarks"], pred, atol=1e-9)
    np.testing.assert_allclose(logs["crop_landmarks"], _to_crop(pred, R), atol=1e-9)
    for i, err in enumerate((5.0, 10.0)):
        w, h = truth[i].max(0) - truth[i].min(0)
        assert logs["nme_diagonal"][i] == pytest.approx(err / math.hypot(w, h), rel=1e-9)
        assert logs["nme_box"][i] == pytest.approx(err / math.sqrt(w * h), rel=1e-9)
        eyes = np.linalg.norm(truth[i][36] - truth[i][45])
        assert logs["nme_interocular"][i] == pytest.approx(err / eyes, rel=1e-9)
    assert "noise_pred" not in logs and "psnr_input" not in logs


def test_validation_step_classifier_and_denoiser_logs():
    b, side = 2, 12
    batch = _batch(None, b, side)
    batch["image"] = np.full((b, side, side, 3), 10.0, np.float32)    # 10 grey levels off
    probs = np.array([[0.1, 0.2, 0.6, 0.05, 0.05], [0.7, 0.1, 0.1, 0.05, 0.05]])
    logs = validation_step({"noise_probs": probs,
                            "denoised": np.full((b, side, side, 3), 1.0, np.float32)}, batch)
    assert logs["noise_pred"].tolist() == [2, 0] and logs["noise_true"].tolist() == [2, 2]
    # PSNR = 10 log10(255^2 / MSE): MSE 100 for the input, 1 for the output
    np.testing.assert_allclose(logs["psnr_input"], 20 * math.log10(255 / 10), rtol=1e-9)
    np.testing.assert_allclose(logs["psnr_output"], 20 * math.log10(255), rtol=1e-9)
    # SSIM of a constant image m against black: the luminance term C1 / (m^2 + C1), with
    # C1 = (0.01 * 255)^2; the contrast-structure term is 1 (no variance)
    c1 = (0.01 * 255) ** 2
    np.testing.assert_allclose(logs["ssim_input"], c1 / (100 + c1), rtol=1e-4)
    np.testing.assert_allclose(logs["ssim_output"], c1 / (1 + c1), rtol=1e-4)
    assert "landmarks" not in logs
    small = _batch(None, b, 8)       # under the 11 px SSIM window: PSNR only
    logs = validation_step({"denoised": np.zeros((b, 8, 8, 3), np.float32)}, small)
    assert "psnr_output" in logs and "ssim_output" not in logs


def test_reduce_aggregated_logs_from_the_definitions():
    logs = {}
    for name, batches in (("clean", [([0.01, 0.05], [0, 0], [0, 2], [20, 30], [25, 35]),
                                     ([0.09], [0], [0], [40], [45])]),
                          ("blur-1", [([0.02], [2], [2], [10], [12]),
                                      ([0.2, np.nan], [2, 2], [2, 1], [14, 18], [20, 22])])):
        state = None
        for nme, true, pred, pin, pout in batches:
            state = aggregate_logs(state, {
                "nme_diagonal": np.array(nme), "noise_true": np.array(true),
                "noise_pred": np.array(pred), "psnr_input": np.array(pin, float),
                "psnr_output": np.array(pout, float)})
        logs[name] = state
    fig = reduce_aggregated_logs(logs, threshold=0.08, normalizer="diagonal", failures=1)
    # errors in batch order, the image no face was found in last (inf)
    assert fig["errors"]["clean"]["diagonal"].tolist() == [0.01, 0.05, 0.09, math.inf]
    clean = fig["clean"]
    assert clean["n"] == 4 and clean["n_nonfinite"] == 1
    assert clean["mean_nme"] == pytest.approx((0.01 + 0.05 + 0.09) / 3)
    # AUC@t = mean(max(0, t - e)) / t; FR@t = fraction with e > t (inf included)
    assert clean["auc"] == pytest.approx((0.07 + 0.03) / 4 / 0.08)
    assert clean["fr"] == pytest.approx(2 / 4)
    noisy = fig["noisy"]                     # blur-1 alone: 0.02, 0.2, NaN, inf
    assert noisy["n"] == 4 and noisy["n_nonfinite"] == 2
    assert noisy["mean_nme"] == pytest.approx(0.11)
    assert noisy["auc"] == pytest.approx(0.06 / 4 / 0.08)
    assert noisy["fr"] == pytest.approx(3 / 4)
    assert fig["per_condition"]["blur-1"] == noisy
    cl = fig["classifier"]
    want = np.zeros((5, 5), int)
    want[0, 0], want[0, 2], want[2, 2], want[2, 1] = 2, 1, 2, 1
    assert cl["confusion"] == want.tolist() and cl["n"] == 6
    assert cl["accuracy"] == pytest.approx(4 / 6)
    assert cl["per_condition_accuracy"] == pytest.approx({"clean": 2 / 3, "blur-1": 2 / 3})
    assert fig["denoiser"]["clean"] == {"psnr_input": 30.0, "psnr_output": 35.0,
                                        "ssim_input": None, "ssim_output": None}
    assert fig["denoiser"]["blur-1"]["psnr_output"] == pytest.approx((12 + 20 + 22) / 3)


def test_reduction_without_landmarks_or_images():
    """A denoiser-only pass gives no landmark figures; a run where no image was evaluated
    (every face missed) scores the misses alone."""
    fig = reduce_aggregated_logs({"clean": {"psnr_input": [np.array([30.0])],
                                            "psnr_output": [np.array([31.0])]}})
    assert set(fig) == {"denoiser"}
    fig = reduce_aggregated_logs({"clean": {"nme_box": []}}, normalizer="box", failures=3)
    assert fig["clean"]["fr"] == 1.0 and fig["clean"]["auc"] == 0.0 and fig["clean"]["n"] == 3


# --------------------------------------------------- training-time validation == evaluate


def _toy_model(side):
    """A model whose every output depends on the pixels it gets (so noise and resizing
    show): landmarks = a face shape in the crop moved by the image's mean colour, a
    "denoiser" that scales the image, class scores from its statistics."""
    base = tf.constant(UNIT_FACE68 * side / 4 + (side - 1) / 2, tf.float32)

    def model(images):
        x = tf.convert_to_tensor(images, tf.float32)
        mean = tf.reduce_mean(x, axis=[1, 2])                       # [B, 3]
        std = tf.math.reduce_std(x, axis=[1, 2])
        lm = base[None] + (mean[:, None, :2] - 128.0) * 0.05
        logits = tf.concat([std[:, :1], mean[:, :1] / 10, -std[:, 1:2], std[:, 2:],
                            mean[:, 2:] / 20], -1)
        return {"landmarks": lm, "noise_probs": tf.nn.softmax(logits),
                "denoised": x * 0.9 + 10.0}
    return model


def _assert_same(a, b, rel=1e-12):
    """Two figure dicts equal: numbers to `rel` relative, the rest exactly."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float):
            assert a[k] == pytest.approx(b[k], rel=rel), k
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("crop_scale", [2.0, 1.4])
def test_training_validation_and_evaluate_give_the_same_figures(faces, crop_scale):
    """The same model on the same crops: training's scoring.evaluate_* and `evaluate`'s
    engine give the same NME (every image, every condition), classifier confusion and
    denoiser PSNR / SSIM, with noise at the reference side R and the model at S < R, for a
    model cropping 2x the box (the reference crop resized) and 1.4x (its window of it: the
    same float32 ops in a tf.data map and eagerly, equal to float32 round-off)."""
    from fadenn_tf.config import EvalConfig
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.evaluation import scoring
    from fadenn_tf.evaluation.engine import EvalSet, ModelEntry, evaluate
    ref, side = 48, 32
    model = _toy_model(side)
    conds = [(0, 0), (2, 2), (3, 3), (4, 1)]
    data = load_eval_data(faces, ref)
    spec = scoring.ValidationSpec(size=side, batch_size=4, crop_scale=crop_scale)
    rel = 1e-12 if crop_scale == 2.0 else 1e-6
    lm = scoring.evaluate_landmarks(model, data, conds, spec)
    den = scoring.evaluate_denoiser(lambda x: model(x)["denoised"], data, conds, spec)
    cls = scoring.evaluate_classifier(lambda x: model(x)["noise_probs"], data, conds, spec)
    entry = ModelEntry("toy", "-", "test", side, lambda images, start: model(images),
                       classifier=True, denoiser=True, crop_scale=crop_scale)
    ev = evaluate([entry], EvalSet(faces, "fixture", faces[0].image_path, "folder", "all"),
                  conds, EvalConfig(batch_size=4, grid_images=0), crop_size=ref)
    names = ["clean", "blur-2", "gaussian_noise-3", "color_scale-1"]
    assert ev.conditions == names and list(lm["errors"]) == names
    for name in names:
        np.testing.assert_allclose(ev.errors["toy"][name]["diagonal"], lm["errors"][name],
                                   rtol=rel, atol=0)
        _assert_same(ev.summary("toy", name), lm["per_condition"][name], rel)
    _assert_same(ev.summary("toy", "noisy"), lm["noisy"], rel)
    # the comparison is not vacuous: the noise moves the fits, and they are not the truth
    assert len({round(float(e.mean()), 9) for e in lm["errors"].values()}) == len(names)
    assert min(float(e.min()) for e in lm["errors"].values()) > 0
    assert ev.iid["toy"]["classifier"]["confusion"] == cls["confusion"]
    assert ev.iid["toy"]["classifier"]["accuracy"] == cls["accuracy"]
    assert sum(map(sum, cls["confusion"])) == 6 * len(conds)
    for name in names:
        _assert_same(ev.iid["toy"]["denoiser"][name], den[name], rel)
    assert den["clean"]["psnr_input"] > 100 > den["blur-2"]["psnr_input"]
