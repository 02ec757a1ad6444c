"""Routed FADeNN-S/M on LiteRT (models.routed_parts, deploy.routed, inference.routed):
classify, then only the chosen expert, then the landmark tail; the same answers as the
Keras model, a cached conversion, and exported folders."""
import json

import keras
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf.config import load_config
from fadenn_tf.data.crop import CropTransform, crop_image, landmark_box
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.errors import DataError
from fadenn_tf.models import build_variant, routed_parts, save_model
from tests.fixtures import walk_layers as _walk

# a tiny FADeNN-M: conversions take seconds, not a minute
CFG = load_config("cpu", overrides={"model": {
    "iid": {"input_size": 32, "filters": [4, 4, 4, 4, 4], "latent_dim": 16, "head_hidden": 8},
    "fll": {"input_size": 32, "width": 0.125, "blocks": [0, 0, 0]}}})
S = CFG.model.iid.input_size


def _crops(n, seed=0):
    out = []
    for i in range(n):
        img, lm, _ = render_face(np.random.default_rng(seed + i), image_size=(90, 110))
        out.append(crop_image(img, CropTransform.from_box(landmark_box(lm), img.shape[:2], S)))
    return np.stack(out).astype(np.float32)


def _keras(model, x):
    out = model(x, training=False)
    return {k: np.asarray(out[k]) for k in ("landmarks", "noise_probs", "denoised")}


def _route_to(model, noise_class):
    """Make the classifier pick `noise_class` for every input (logits = one-hot * 30)."""
    (layer,) = [la for la in _walk(model) if la.name == "logits"]
    layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    layer.bias.assign(30.0 * np.eye(5, dtype=np.float32)[noise_class])


def _m_model(noise_class, seed=0):
    """FADeNN-M whose classifier always picks `noise_class` (logits bias one-hot * 30) and
    whose landmarks depend on the image (random FLL head), so routing shows in the output."""
    keras.utils.set_random_seed(seed)
    model = build_variant(CFG.model, "M")
    rng = np.random.default_rng(seed)
    _route_to(model, noise_class)
    for layer in _walk(model):
        if layer.__class__.__name__ == "Dense" and layer.name == "landmarks":   # landmarks spread ~4 px over faces
            k = layer.kernel
            k.assign(rng.normal(0, 1.0, k.shape).astype(np.float32))
            spread = float(np.std(_keras(model, _crops(6, 100))["landmarks"], axis=0).mean())
            k.assign(k.numpy() * (4.0 / max(spread, 1e-6)))
    return model


def test_routed_parts_reproduce_the_model_and_only_fll_models_refuse():
    model, x = _m_model(2), _crops(3)
    parts = routed_parts(model)
    want = _keras(model, x)
    c = parts["classify"](x)
    assert np.asarray(c["noise_class"]).tolist() == [2, 2, 2]
    den = np.asarray(parts["expert_2"](x)["denoised"])
    np.testing.assert_allclose(den, want["denoised"], atol=1e-3)
    assert np.abs(den - x).max() > 1.0          # the expert changes the crop
    np.testing.assert_allclose(parts["landmarks"](den)["landmarks"], want["landmarks"],
                               atol=1e-3)
    with pytest.raises(ValueError, match="not a FADeNN-S/M"):
        routed_parts(build_variant(CFG.model, "fll"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A FADeNN-M routing every crop to expert 3, loaded with the LiteRT backend: converted
    to routed float32 parts, which the conversion cache keeps as a routed folder (the
    layout export --tflite-routed writes)."""
    from fadenn_tf.inference.litert_load import load_litert
    d = tmp_path_factory.mktemp("routed")
    model = _m_model(3)
    save_model(model, d / "m.keras")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FADENN_TF_CACHE_DIR", str(d / "cache"))
        first = load_litert(d / "m.keras")
    (folder,) = (d / "cache" / "litert").iterdir()
    return {"model": model, "file": d / "m.keras", "cache": d / "cache", "first": first,
            "folder": folder}


def test_litert_backend_routes_each_crop_through_the_chosen_expert(exported):
    from fadenn_tf.deploy.litert import load_tflite
    from fadenn_tf.deploy.routed import convert_parts
    from fadenn_tf.inference.routed import RoutedLiteRTModel
    folder, x = exported["folder"], _crops(3, seed=5)
    meta = json.loads((folder / "routed.json").read_text())
    assert meta["variant"] == "float32" and set(meta["parts"]) == {
        "classify", "expert_1", "expert_2", "expert_3", "expert_4", "landmarks"}
    pred = fadenn_tf.load(folder, detector=None, backend="litert")
    assert pred.model.kind == "litert-routed" and pred.size == S
    got, want = pred.model(x), _keras(exported["model"], x)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=2e-3)
    np.testing.assert_allclose(got["noise_probs"], want["noise_probs"], atol=1e-5)
    np.testing.assert_allclose(got["denoised"], want["denoised"], atol=1e-2)
    assert np.abs(got["denoised"] - x).max() > 1.0      # expert 3 changed the crops
    r = pred.predict(np.clip(x[0], 0, 255).astype(np.uint8),
                     boxes=[S / 4, S / 4, 3 * S / 4, 3 * S / 4])[0]
    assert r.landmarks.shape == (68, 2) and r.noise_class == 3
    # the same weights with a classifier picking class 0: no expert runs, other landmarks
    clean = build_variant(CFG.model, "M")
    clean.set_weights(exported["model"].get_weights())
    _route_to(clean, 0)
    interpreters = {k: run.interpreter for k, run in pred.model.parts.runners.items()}
    interpreters["classify"] = load_tflite(
        convert_parts({"classify": routed_parts(clean)["classify"]})["classify"])
    skip = RoutedLiteRTModel(interpreters)(x)
    np.testing.assert_array_equal(skip["denoised"], x)   # class 0 skips denoising
    np.testing.assert_allclose(skip["landmarks"], _keras(clean, x)["landmarks"], atol=2e-3)
    assert np.abs(skip["landmarks"] - got["landmarks"]).max() > 1e-2


def test_conversion_is_cached(exported, monkeypatch):
    from fadenn_tf.inference.litert_load import load_litert
    x, first = _crops(2), exported["first"]
    assert first.kind == "litert-routed" and first.tflite_bytes is not None  # converted
    monkeypatch.setenv("FADENN_TF_CACHE_DIR", str(exported["cache"]))
    second = load_litert(exported["file"])
    assert second.tflite_bytes is None                  # read from the cache
    np.testing.assert_allclose(second(x)["landmarks"], first(x)["landmarks"], atol=1e-5)


def test_cache_entries_follow_the_file_content_and_can_be_turned_off(tmp_path, monkeypatch):
    from fadenn_tf.deploy import conversion_cache
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    a.write_bytes(b"one model")
    b.write_bytes(b"another model")
    monkeypatch.setenv("FADENN_TF_CACHE_DIR", str(tmp_path / "c"))
    ea, eb = (conversion_cache.entry(f, "float32", "routed") for f in (a, b))
    assert ea.parent == tmp_path / "c" / "litert" and ea != eb
    assert ea != conversion_cache.entry(a, "dynamic_int8", "routed")
    assert conversion_cache.entry(a, "float32", "graph").suffix == ".tflite"
    monkeypatch.setenv("FADENN_TF_CACHE_DIR", "off")
    assert conversion_cache.entry(a, "float32", "routed") is None
    monkeypatch.delenv("FADENN_TF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert conversion_cache.cache_root() == tmp_path / "xdg" / "fadenn_tf"


def test_bad_routed_folders_are_named(exported, tmp_path):
    import shutil
    from fadenn_tf.cli.export import main
    folder = tmp_path / "routed"
    shutil.copytree(exported["folder"], folder)
    (folder / "expert_3.tflite").unlink()
    with pytest.raises(DataError, match="expert_3.tflite"):
        fadenn_tf.load(folder, detector=None, backend="litert")
    (folder / "routed.json").write_text("{not json")
    with pytest.raises(DataError, match="routed.json"):
        fadenn_tf.load(folder, detector=None, backend="litert")
    assert main(["--model", str(exported["file"]), "--out", str(tmp_path / "e2"),
                 "--tflite-routed", "int8"]) == 2      # a bad argument (exit-status table)


def test_the_test_run_shares_one_conversion_cache(conversion_cache_dir, tmp_path):
    """Every test (and every command a test starts, through the environment) uses the one
    session cache of conftest.py, never the user's ~/.cache: a model converted by one test
    is read back by the next."""
    from pathlib import Path
    from fadenn_tf.deploy import conversion_cache
    assert conversion_cache.cache_root() == conversion_cache_dir
    model = tmp_path / "m.keras"
    model.write_bytes(b"a model")
    assert conversion_cache.entry(model, "float32", "graph").parent == \
        conversion_cache_dir / "litert"
    assert Path.home() not in conversion_cache_dir.parents
