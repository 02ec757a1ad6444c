"""The export signatures declare noise_probs as [B, 5], also for an FLL wrapped as the
baseline (whose uniform probabilities have a dynamic shape inside the model)."""
import pytest

from fadenn_tf.deploy import signatures
from fadenn_tf.config import load_config
from fadenn_tf.models import build_fll, build_fll_baseline, build_variant


@pytest.mark.parametrize("kind", ["fll", "D"])
def test_noise_probs_has_five_classes_in_both_signatures(kind):
    cfg = load_config("demo").model
    model = (build_fll_baseline(cfg, build_fll(cfg.fll)) if kind == "fll"
             else build_variant(cfg, "D"))
    serve = signatures.serving_function(model).get_concrete_function()
    assert serve.structured_outputs["noise_probs"].shape.as_list() == [None, 5]
    fixed = signatures.serving_function(model, batch_size=2).get_concrete_function()
    assert fixed.structured_outputs["noise_probs"].shape.as_list() == [2, 5]
    from_bytes = signatures.bytes_function(model).get_concrete_function()
    assert from_bytes.structured_outputs["noise_probs"].shape.as_list() == [None, 5]


def test_bytes_signature_empty_batch_tiny_images_and_tiny_boxes():
    """An empty request gives empty outputs; a 1x1 image, a 1-px box and a box whose part
    inside the image is under MIN_FACE_PX come back invalid (NaN), the good row unaffected."""
    import cv2
    import numpy as np
    import tensorflow as tf
    from fadenn_tf.deploy.image_bytes import MIN_FACE_PX
    cfg = load_config("demo").model
    sig = signatures.bytes_function(build_fll_baseline(cfg, build_fll(cfg.fll)))
    out = sig(tf.constant([], tf.string), tf.zeros([0, 4]))
    assert {k: v.shape.as_list() for k, v in out.items()} == {
        "landmarks": [0, 68, 2], "noise_probs": [0, 5], "valid": [0]}

    def png(h, w):
        return cv2.imencode(".png", np.full((h, w, 3), 120, np.uint8))[1].tobytes()
    rows = [(png(1, 1), [0, 0, 1, 1]),                          # a 1x1 image
            (png(100, 100), [10, 10, 11, 11]),                  # a 1-px box
            (png(100, 100), [95, 10, 140, 60]),                 # 5 px inside the image
            (png(100, 100), [20, 20, 20 + MIN_FACE_PX, 20 + MIN_FACE_PX]),   # just enough
            (png(100, 100), [20, 20, 80, 80])]
    out = sig(tf.constant([r[0] for r in rows]), tf.constant([r[1] for r in rows], tf.float32))
    assert out["valid"].numpy().tolist() == [False, False, False, True, True]
    lm = out["landmarks"].numpy()
    assert np.isnan(lm[:3]).all() and np.isnan(out["noise_probs"].numpy()[:3]).all()
    assert np.isfinite(lm[3:]).all()
    alone = sig(tf.constant([rows[4][0]]), tf.constant([rows[4][1]], tf.float32))
    np.testing.assert_allclose(lm[4], alone["landmarks"].numpy()[0], atol=1e-3)
