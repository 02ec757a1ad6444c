"""Transfer learning (`--init-from`) and mixed-precision settings: weights copied by layer
path and shape, sources resolved from files, stage folders and workdirs, saved mixed-precision
models stored as float32."""
import json
import zipfile

import keras
import numpy as np
import pytest

from fadenn_tf.config import FLLConfig, IIDConfig, TrainConfig, precision_mode
from fadenn_tf.errors import ConfigError, DataError
from fadenn_tf.models import build_dae, build_fll, build_mtc, load_model, save_model
from fadenn_tf.training import transfer
from fadenn_tf.models.pixels import core_of

FLL = FLLConfig(input_size=64, width=0.25, blocks=(1, 1, 1))
IID = IIDConfig(input_size=32, filters=(4, 4, 8), latent_dim=16, head_hidden=8)


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_fll_copies_everything_from_the_same_architecture(tmp_path):
    keras.utils.set_random_seed(1)
    src = build_fll(FLL)
    keras.utils.set_random_seed(2)
    dst = build_fll(FLL)
    assert not _same(src, dst)
    save_model(src, tmp_path / "fll.keras")
    report = transfer.init_from(dst, tmp_path / "fll.keras", stage="fll")
    assert report.copied_layers == report.total_layers and not report.unmatched
    assert report.copied_params == src.count_params()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(dst(x, training=False), src(x, training=False), atol=1e-5)


def test_fll_with_another_head_keeps_the_backbone_and_reports_the_rest():
    src = build_fll(FLL)
    dst = build_fll(FLLConfig(input_size=64, width=0.25, blocks=(1, 1, 1), num_points=5))
    report = transfer.copy_matching(dst, src, "src")
    assert report.unmatched == ["landmarks"]
    back_src, back_dst = src.get_layer("backbone"), dst.get_layer("backbone")
    assert _same(back_src, back_dst)
    assert "kept their own initialisation: landmarks" in str(report)


def test_dae_initialises_every_expert_and_the_mtc_autoencoder(tmp_path):
    keras.utils.set_random_seed(3)
    dae = build_dae(IID)
    save_model(dae, tmp_path / "run" / "dae" / "model.keras")
    experts = [build_dae(IID, name=f"expert_{k}") for k in range(1, 5)]
    sources = transfer.resolve_sources(tmp_path / "run", "experts", 4)
    for e, (s, desc) in zip(experts, sources):
        assert desc.endswith("dae/model.keras")
        transfer.copy_matching(e, s, desc)
        assert _same(e, dae)
    mtc = build_mtc(IID)
    report = transfer.init_from(mtc, tmp_path / "run", stage="mtc")
    assert report.unmatched and all(u.startswith("head/") for u in report.unmatched)


def test_unrelated_model_and_missing_source_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no layer fits"):
        transfer.copy_matching(build_dae(IID), build_fll(FLL), "an FLL")
    with pytest.raises(DataError, match="not found"):
        transfer.init_from(build_fll(FLL), tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no model for stage 'fll'"):
        transfer.init_from(build_fll(FLL), tmp_path / "empty")


def test_precision_names_and_yaml_booleans():
    assert precision_mode(False) == precision_mode("off") == "none"
    assert precision_mode(True) == precision_mode("mixed_float16") == "fp16"
    assert precision_mode("bf16") == "bf16"
    with pytest.raises(ConfigError, match="train.mixed_precision"):
        TrainConfig(mixed_precision="int4").validate("x.yaml")
    with pytest.raises(ConfigError, match="train.landmark_loss"):
        TrainConfig(landmark_loss="huber").validate("x.yaml")


def test_model_trained_under_bf16_is_saved_as_float32(tmp_path):
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        model = build_fll(FLL)
        assert model.get_layer("backbone").get_layer("stem1").compute_dtype == "bfloat16"
        assert model.get_layer("landmarks").compute_dtype == "float32"
        save_model(model, tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert "mixed_bfloat16" not in z.read("config.json").decode()
    loaded = core_of(load_model(tmp_path / "m.keras"))
    assert {layer.compute_dtype for layer in loaded.get_layer("backbone").layers} == {"float32"}
    assert _same(loaded, model)
