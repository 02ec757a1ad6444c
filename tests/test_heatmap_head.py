"""The FLL's heatmap head (fll.head: heatmap): soft-argmax readout, grid alignment, training,
saving, mixed precision, TFLite and the FADeNN models built around it."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf.config import FLLConfig, ModelConfig, load_config
from fadenn_tf.errors import ConfigError
from fadenn_tf.models import (build_fll, build_variant, core_of, load_model, routed_parts,
                              save_model, to_points)
from fadenn_tf.models.fll_backbone import build_fll_backbone, fll_feature_grids
from fadenn_tf.models.layers import GridResample, SoftArgmax2D
from fadenn_tf.training.transfer import copy_matching
from tests.fixtures import walk_layers as _walk

TINY = FLLConfig(input_size=32, width=0.125, blocks=(0, 0, 0), head="heatmap",
                 heatmap_stride=4, heatmap_channels=8)


def _images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def _spread(model, seed=0):
    """Redraw the heatmap logits conv so landmarks depend on the image. Returns the model."""
    (layer,) = [la for la in _walk(model) if la.name == "heatmap_logits"]
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(0, 30.0, layer.kernel.shape).astype(np.float32))
    return model


def test_soft_argmax_of_a_one_hot_map_is_that_cells_pixel_centre():
    g, stride, n = 8, 4, 3
    cells = [(0, 0), (5, 2), (7, 6)]                     # (row, col) per landmark
    logits = np.zeros((1, g, g, n), np.float32)
    for k, (r, c) in enumerate(cells):
        logits[0, r, c, k] = 1e4
    out = SoftArgmax2D(stride)(logits).numpy()[0]
    # cell c covers crop pixels stride*c .. stride*c + stride-1 (0-based pixel centres,
    # data.crop): its centre is their mean
    want_x = [np.mean(np.arange(stride * c, stride * c + stride)) for _, c in cells]
    want_y = [np.mean(np.arange(stride * r, stride * r + stride)) for r, _ in cells]
    np.testing.assert_array_equal(out, np.array(want_x + want_y, np.float32))
    assert want_x[0] == 1.5 and want_y[2] == 29.5
    flat = SoftArgmax2D(stride)(np.zeros((2, g, g, n), np.float32)).numpy()
    np.testing.assert_allclose(flat, (g * stride - 1) / 2.0, atol=1e-5)   # uniform: the centre


def test_grid_resample_aligns_grids_and_matches_a_plain_resize():
    # a map holding each cell's own crop-pixel x coordinate, on a valid-padded grid
    side, offset, step = 6, 21.0, 16.0
    ramp = (offset + step * np.arange(side, dtype=np.float32))
    x = np.broadcast_to(ramp[None, None, :, None], (1, side, side, 2)).copy()
    out = GridResample(offset, step, 32, 1.5, 4.0)(x).numpy()[0, 0, :, 0]
    centres = 1.5 + 4.0 * np.arange(32)
    np.testing.assert_allclose(out, np.clip(centres, ramp[0], ramp[-1]), atol=1e-4)
    # the grids of a half-pixel bilinear resize 5 -> 10: the same numbers as tf.image.resize
    img = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    got = GridResample(0.5, 2.0, 10, 0.0, 1.0)(img).numpy()
    want = tf.image.resize(img, (10, 10), method="bilinear", antialias=False).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("size", [32, 64])
def test_feature_grids_are_the_taps_cells(size):
    grids = fll_feature_grids(128)
    # hand-derived: stem5 cell i sits on crop pixel 4i + 9, block35 on 8i + 13
    assert grids["stem5"] == (28, 9.0, 4.0) and grids["block35"] == (13, 13.0, 8.0)
    taps = ("stem5", "block35", "block17", "block8")
    backbone = build_fll_backbone(dataclasses.replace(TINY, input_size=size), taps=taps)
    sides = [int(o.shape[1]) for o in backbone.outputs]
    assert sides == [fll_feature_grids(size)[t][0] for t in taps]


def test_heatmap_fll_outputs_crop_pixels_and_starts_at_the_mean_shape():
    keras.utils.set_random_seed(0)
    mean = np.random.default_rng(1).uniform(10, 22, (68, 2)).astype(np.float32)
    x = _images(3, 32)
    start = build_fll(TINY, mean_shape=mean)(x).numpy()    # the prior (logits near zero)
    np.testing.assert_allclose(to_points(start), np.broadcast_to(mean, (3, 68, 2)), atol=0.2)
    for stride in (4, 8):
        model = build_fll(dataclasses.replace(TINY, heatmap_stride=stride), mean_shape=mean)
        out = _spread(model)(x).numpy()
        assert out.shape == (3, 136) and np.all(np.isfinite(out))
        assert out.min() >= stride / 2 - 0.5 - 1e-4 and out.max() <= 32 - stride / 2 - 0.5 + 1e-4
        assert np.std(out, axis=0).mean() > 0.1        # depends on the image
    with pytest.raises(ValueError, match="mean_shape"):
        build_fll(TINY, mean_shape=np.zeros((5, 2)))


def test_gradients_reach_backbone_head_and_prior_and_a_tiny_model_learns():
    keras.utils.set_random_seed(2)
    model = build_fll(TINY)
    x = tf.constant(_images(8, 32, seed=3))
    y = tf.constant(np.random.default_rng(4).uniform(6, 26, (8, 136)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables)))
    for part in ("stem1", "heatmap_lateral_stem5", "heatmap_conv2", "heatmap_logits", "prior"):
        g = [v for k, v in grads.items() if part in k]
        assert g and all(np.all(np.isfinite(v)) for v in g), part
        assert max(float(tf.reduce_max(tf.abs(v))) for v in g) > 0, part
    # a few eager steps (tracing a train step costs more than they do) towards a shape
    target = tf.broadcast_to(y[:1], y.shape)
    opt, losses = keras.optimizers.Adam(3e-2), []
    for _ in range(6):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - target))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables))
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0], losses


def test_keras_file_round_trip_is_bit_exact_and_transfer_keeps_the_backbone(tmp_path):
    keras.utils.set_random_seed(5)
    model = _spread(build_fll(TINY))
    save_model(model, tmp_path / "fll.keras")
    loaded = core_of(load_model(tmp_path / "fll.keras"))    # the saved file takes pixels
    x = _images(4, 32, seed=6)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.get_layer("landmarks").__class__ is SoftArgmax2D
    # a regression FLL's backbone goes into the heatmap FLL; the head keeps its own
    reg = build_fll(dataclasses.replace(TINY, head="regression"))
    report = copy_matching(model, reg)
    back = model.get_layer("backbone")
    assert report.copied_layers == len([la for la in back.layers if la.weights])
    assert all(np.array_equal(a, b) for a, b in
               zip(back.get_weights(), reg.get_layer("backbone").get_weights()))
    assert "landmarks" in report.unmatched
    assert any(u.startswith("heatmap_") for u in report.unmatched)


def test_mixed_bfloat16_reads_out_in_float32(tmp_path):
    keras.utils.set_random_seed(7)
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        model = _spread(build_fll(TINY))
        assert model.get_layer("heatmap_conv1").compute_dtype == "bfloat16"
        assert model.get_layer("heatmap_logits").compute_dtype == "float32"
        assert model.get_layer("landmarks").compute_dtype == "float32"
        x = _images(2, 32, seed=8)
        low = model(x).numpy()
        save_model(model, tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    full = load_model(tmp_path / "m.keras")((x + 1) * 127.5).numpy()
    assert low.dtype == np.float32 and np.all(np.isfinite(low))
    assert np.abs(low - full).max() < 2.0            # bf16 features, float32 readout


def test_config_checks_the_head_keys():
    for bad, key in (({"head": "dense"}, "fll.head"), ({"heatmap_stride": 2}, "fll.heatmap_stride"),
                     ({"input_size": 36, "heatmap_stride": 8}, "fll.heatmap_stride"),
                     ({"heatmap_channels": 0}, "fll.heatmap_channels")):
        with pytest.raises(ConfigError, match=key):
            dataclasses.replace(TINY, **bad).validate("x.yaml")
    for name in ("paper", "cpu", "real128"):
        assert load_config(name).model.fll.head == "regression"
    cfg = load_config("cpu", sets=["model.fll.head=heatmap", "model.fll.heatmap_stride=8"])
    assert (cfg.model.fll.head, cfg.model.fll.heatmap_stride) == ("heatmap", 8)


@pytest.mark.slow
def test_fadenn_m_with_the_heatmap_fll_exports_and_routes_through_litert(tmp_path):
    from fadenn_tf.deploy import saved_model, tflite
    from fadenn_tf.deploy.litert import check_builtin_only, load_tflite, run_tflite
    from fadenn_tf.deploy.routed import convert_parts
    cpu = load_config("cpu").model
    cfg = ModelConfig(iid=dataclasses.replace(cpu.iid, input_size=32, filters=(4, 4, 4, 4, 4),
                                              latent_dim=16, head_hidden=8), fll=TINY)
    keras.utils.set_random_seed(9)
    model = build_variant(cfg, "M")
    _spread(model)
    (logits,) = [la for la in _walk(model) if la.name == "logits"]   # route every crop to 2
    logits.kernel.assign(np.zeros(logits.kernel.shape, np.float32))
    logits.bias.assign(30.0 * np.eye(5, dtype=np.float32)[2])
    x = np.random.default_rng(10).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    want = model(x, training=False)
    assert want["landmarks"].shape == (3, 68, 2)
    # SavedModel + builtins-only float32 TFLite of the whole model
    vdir = saved_model.export_saved_model(model, tmp_path / "m")
    paths = tflite.write_tflite_variants(vdir, tmp_path / "tfl", ["float32"])
    it = load_tflite(paths["float32"])
    ops = check_builtin_only(it, paths["float32"])
    assert "SOFTMAX" in ops
    got = run_tflite(it, x, batch_size=2)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"].numpy(), atol=2e-3)
    # routed parts: classify -> expert 2 -> landmarks, in Keras and as LiteRT parts
    parts = routed_parts(model)
    den = np.asarray(parts["expert_2"](x)["denoised"])
    np.testing.assert_allclose(parts["landmarks"](den)["landmarks"], want["landmarks"],
                               atol=1e-3)
    lite = load_tflite(convert_parts({"landmarks": parts["landmarks"]})["landmarks"])
    check_builtin_only(lite)
    np.testing.assert_allclose(run_tflite(lite, den)["landmarks"], want["landmarks"],
                               atol=2e-3)
    assert np.std(want["landmarks"].numpy(), axis=0).mean() > 0.1
    assert core_of(model).get_layer("fll").get_layer("landmarks").__class__ is SoftArgmax2D
