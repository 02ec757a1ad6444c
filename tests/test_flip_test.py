"""Test-time flip averaging (inference.flip_test) on a real (untrained) end-to-end model."""
import dataclasses

import numpy as np
import tensorflow as tf

from fadenn_tf.config import load_config
from fadenn_tf.data.augment import flip_points
from fadenn_tf.inference.flip_test import FlipAveraged, unflip_landmarks
from fadenn_tf.inference.model import LoadedModel
from fadenn_tf.inference.predictor import Predictor
from fadenn_tf.models import build_variant


def _model():
    cfg = load_config("cpu").model
    cfg = dataclasses.replace(cfg, fll=dataclasses.replace(cfg.fll, blocks=(1, 1, 1)))
    keras_model = build_variant(cfg, "fll")
    size = cfg.iid.input_size
    fn = tf.function(lambda x: keras_model(x, training=False), reduce_retracing=True)
    return LoadedModel(fn, size, "fadenn", "mem", "fll", keras_model)


def test_unflip_inverts_the_training_flip():
    pts = np.random.default_rng(0).uniform(0, 63, (3, 68, 2))
    flipped = flip_points(tf.constant(pts, tf.float32), 64).numpy()
    np.testing.assert_allclose(unflip_landmarks(flipped, 64), pts, atol=1e-4)


def test_flip_average_is_mirror_equivariant_and_between_the_two_fits():
    base = _model()
    avg = FlipAveraged(base)
    crops = np.random.default_rng(1).uniform(0, 255, (2, base.size, base.size, 3))
    out = avg(crops)
    mirrored = avg(crops[:, :, ::-1])
    # the averaged fit of the mirror image is the mirror of the averaged fit
    np.testing.assert_allclose(unflip_landmarks(mirrored["landmarks"], base.size),
                               out["landmarks"], atol=1e-3)
    direct = np.asarray(base(crops.astype(np.float32))["landmarks"])
    other = unflip_landmarks(base(crops[:, :, ::-1].astype(np.float32))["landmarks"], base.size)
    np.testing.assert_allclose(out["landmarks"], 0.5 * (direct + other), atol=1e-4)
    assert np.abs(direct - other).max() > 1e-3      # the two fits differ: averaging matters
    assert avg.size == base.size and avg.path == "mem" and avg.kind == "fadenn+flip-test"
    assert out["noise_probs"].shape == (2, 5)
    res = avg.predict_crops(crops, batch_size=1)
    np.testing.assert_allclose(res["landmarks"], out["landmarks"], atol=1e-4)


def test_predictor_one_face_path_uses_the_flip_average():
    """Predictor's single-crop fast path (a concrete function of the model's tf.function)
    must not bypass the flip averaging."""
    base = _model()
    crop = np.random.default_rng(2).uniform(0, 255, (1, base.size, base.size, 3))
    plain, flipped = Predictor(base, detector=None), Predictor(FlipAveraged(base), detector=None)
    lm_plain, _ = plain.run_crops(crop.astype(np.float32))
    lm_flip, _ = flipped.run_crops(crop.astype(np.float32))
    np.testing.assert_allclose(lm_flip, FlipAveraged(base)(crop)["landmarks"], atol=1e-4)
    assert np.abs(lm_flip - lm_plain).max() > 1e-3
