"""Model format 1: the input scaling lives in the graph, metadata sits beside every saved
model, files saved before format 1 still load (wrapped) and upgrade without changing a
landmark, and one object (inference.LoadedModel) fits a face box."""
import dataclasses
import json
import warnings

import keras
import numpy as np
import pytest

from fadenn_tf import models as M
from fadenn_tf.config import load_config
from fadenn_tf.data.crop import CROP_SCALE, CropTransform
from fadenn_tf.errors import DataError
from fadenn_tf.inference import load_any
from fadenn_tf.models.layers import ArgMaxClass, CoordAffine, ResizeBilinear
from fadenn_tf.training.tasks.joint import load_parts


@pytest.fixture(scope="module")
def cfg():
    """cpu IID (64) with a small FLL (32), so the resize between them is used."""
    c = load_config("cpu").model
    return dataclasses.replace(c, fll=dataclasses.replace(c.fll, input_size=32,
                                                          blocks=(1, 1, 1)))


def pixels(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def old_style_fadenn(cfg, fll, classifier, experts, name="fadenn_m"):
    """FADeNN-S/M as build_fadenn built it before format 1: the graph takes images in
    [-1, 1] (callers scaled by hand) and returns "denoised" in [-1, 1]."""
    big, small = cfg.iid.input_size, cfg.fll.input_size
    image = keras.Input((big, big, 3), name="image")
    logits = M.logits_model(classifier)(image)
    den = experts([image, ArgMaxClass(name="noise_class")(logits)])
    flat = fll(ResizeBilinear(small, name="resize_to_fll")(den))
    pts = keras.layers.Permute((2, 1))(keras.layers.Reshape((2, cfg.fll.num_points))(flat))
    r = big / small
    return keras.Model(image, {"landmarks": CoordAffine(r, 0.5 * (r - 1.0))(pts),
                               "noise_probs": keras.layers.Softmax()(logits),
                               "denoised": den}, name=name)


# ---------------------------------------------------------------- the pixel interface
def test_pixel_model_scales_inside_the_graph(cfg):
    dae, fll = M.build_dae(cfg.iid), M.build_fll(cfg.fll)
    x = pixels(2, cfg.iid.input_size, seed=1)
    u = x / 127.5 - 1.0
    wrapped = M.pixel_model(dae)
    assert M.core_of(wrapped) is dae and M.is_pixel_model(wrapped)
    np.testing.assert_allclose(wrapped(x).numpy(), (dae(u).numpy() + 1.0) * 127.5, atol=1e-3)
    xs = pixels(2, cfg.fll.input_size, seed=2)
    np.testing.assert_allclose(M.pixel_model(fll)(xs).numpy(), fll(xs / 127.5 - 1.0).numpy(),
                               atol=1e-4)
    with pytest.raises(ValueError, match="twice"):
        M.pixel_model(wrapped)
    # A part given as a saved (pixel) model is unwrapped: no second scaling.
    a = M.build_fadenn(cfg, "D", fll=fll, dae=dae)(x)["landmarks"].numpy()
    b = M.build_fadenn(cfg, "D", fll=M.pixel_model(fll), dae=wrapped)(x)["landmarks"].numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["fll", "dae", "stc", "mtc", "D", "M"])
def test_every_saved_model_takes_pixels_and_has_metadata(cfg, kind, tmp_path):
    build = {"fll": lambda: M.build_fll(cfg.fll), "dae": lambda: M.build_dae(cfg.iid),
             "stc": lambda: M.build_stc(cfg.iid), "mtc": lambda: M.build_mtc(cfg.iid),
             "D": lambda: M.build_variant(cfg, "D"), "M": lambda: M.build_variant(cfg, "M")}
    model = build[kind]()
    path = M.save_model(model, tmp_path / "model.keras", config_name="cpu")
    meta = json.loads((tmp_path / "model.json").read_text())
    size = cfg.fll.input_size if kind == "fll" else cfg.iid.input_size
    assert meta["format_version"] == M.FORMAT_VERSION == 1
    assert meta["input_range"] == [0.0, 255.0] and meta["input_size"] == size
    assert meta["crop_scale"] == CROP_SCALE and meta["config_name"] == "cpu"
    assert meta["kind"] == ("fadenn" if kind in ("D", "M") else kind)
    assert meta["variant"] == {"fll": "fll", "D": "D", "M": "M"}.get(kind)
    assert meta["has_classifier"] == (kind in ("stc", "mtc", "M"))
    assert meta["has_denoiser"] == (kind in ("dae", "mtc", "D", "M"))
    if kind in ("fll", "D", "M"):
        assert meta["num_points"] == 68
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a format-1 file loads without a notice
        loaded = M.load_model(path)
    assert M.is_pixel_model(loaded)
    x = pixels(2, size, seed=3)
    a, b = keras.tree.flatten(model(x if M.is_pixel_model(model) else x / 127.5 - 1.0)), \
        keras.tree.flatten(loaded(x))
    if kind in ("dae", "mtc"):   # saved cores come back with image outputs in pixels
        a = [(t + 1.0) * 127.5 if tuple(t.shape) == x.shape else t for t in a]
    for p, q in zip(a, b):
        np.testing.assert_allclose(np.asarray(q), np.asarray(p), atol=2e-3)


def test_metadata_errors_name_the_file(cfg, tmp_path):
    fll = M.build_fll(cfg.fll)
    path = M.save_model(fll, tmp_path / "model.keras")
    meta_file = tmp_path / "model.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DataError, match=r"model\.json: model format_version 99 is unknown"):
        M.load_model(path)
    meta_file.write_text("{not json")
    with pytest.raises(DataError, match=r"model\.json: unreadable"):
        M.load_model(path)
    fll.save(tmp_path / "core.keras")           # a [-1, 1] graph with format-1 metadata
    (tmp_path / "core.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"core\.keras: .*no input scaling"):
        M.load_model(tmp_path / "core.keras")


# ---------------------------------------------------------------- files saved before format 1
def test_old_format_model_loads_and_upgrades_with_the_same_landmarks(cfg, tmp_path):
    keras.utils.set_random_seed(5)
    fll, mtc = M.build_fll(cfg.fll), M.build_mtc(cfg.iid)
    old = old_style_fadenn(cfg, fll, mtc, M.build_expert_bank(cfg.iid))
    work = tmp_path / "work"
    (work / "joint-M").mkdir(parents=True)
    (work / "fll").mkdir()
    old.save(work / "joint-M" / "model.keras")   # exactly what the pre-format-1 code wrote
    fll.save(work / "fll" / "model.keras")
    (work / "fll" / "config.yaml").write_text("name: cpu\n")   # a stage folder's config
    x = pixels(3, cfg.iid.input_size, seed=6)
    want = {k: v.numpy() for k, v in old(x / 127.5 - 1.0).items()}

    with pytest.warns(M.LegacyModelWarning, match="saved before model format 1"):
        legacy = load_any(work)
    got = legacy.predict_crops(x)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=1e-4)
    np.testing.assert_allclose(got["noise_probs"], want["noise_probs"], atol=1e-6)
    np.testing.assert_allclose(got["denoised"], (want["denoised"] + 1.0) * 127.5, atol=1e-3)
    assert legacy.has_classifier and legacy.has_denoiser

    done = M.upgrade(work)
    assert sorted(p.relative_to(work).as_posix() for p in done) == \
        ["fll/model.keras", "joint-M/model.keras"]
    meta = json.loads((work / "joint-M" / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["kind"] == "fadenn" and meta["variant"] == "M"
    assert json.loads((work / "fll" / "model.json").read_text())["config_name"] == "cpu"
    assert M.upgrade(work) == []                 # already format 1: left alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upgraded = load_any(work)
    np.testing.assert_allclose(upgraded.predict_crops(x)["landmarks"], want["landmarks"],
                               atol=1e-4)


@pytest.mark.parametrize("old_files", [True, False])
def test_stage_parts_compose_without_double_scaling(cfg, tmp_path, old_files):
    keras.utils.set_random_seed(7)
    fll, dae = M.build_fll(cfg.fll), M.build_dae(cfg.iid)
    for name, part in (("fll", fll), ("dae", dae)):
        (tmp_path / name).mkdir()
        if old_files:
            part.save(tmp_path / name / "model.keras")
        else:
            M.save_model(part, tmp_path / name / "model.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.LegacyModelWarning)
        parts = load_parts(tmp_path, "D")
    x = pixels(2, cfg.iid.input_size, seed=8)
    want = M.build_fadenn(cfg, "D", fll=fll, dae=dae)(x)
    got = M.build_fadenn(cfg, "D", **parts)(x)
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), atol=1e-4)


# ---------------------------------------------------------------- the loaded model object
def test_fit_box_maps_the_crop_prediction_back_to_the_image(cfg, tmp_path):
    s = cfg.fll.input_size
    shape = np.stack(np.meshgrid(np.linspace(8, s - 9, 17), np.linspace(6, s - 7, 4)),
                     -1).reshape(-1, 2)[:68]
    fll = M.build_fll(cfg.fll, mean_shape=shape)
    head = fll.get_layer("landmarks")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))   # always predicts `shape`
    M.save_model(fll, tmp_path / "fll.keras")
    model = load_any(tmp_path / "fll.keras")
    assert model.kind == "fll" and model.size == s
    image = np.random.default_rng(9).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = np.array([50.0, 40.0, 90.0, 80.0])
    lm, probs = model.fit_box(image, box)
    assert probs is None
    np.testing.assert_allclose(lm, CropTransform.from_box(box, (120, 160), s).invert(shape),
                               atol=1e-3)
    moved, _ = model.fit_box(image, box + [10, 5, 10, 5])      # the fit follows the box
    np.testing.assert_allclose(moved - lm, np.tile([10.0, 5.0], (68, 1)), atol=1e-3)
    crops = np.stack([model.crop(image, box)[0], model.crop(image, box + 3)[0]])
    for c in (crops, np.round(crops).astype(np.uint8)):             # float or uint8 pixels
        np.testing.assert_allclose(model.predict_crops(c, batch_size=1)["landmarks"],
                                   np.stack([shape, shape]), atol=1e-3)
    with pytest.raises(ValueError):
        model.fit_box(image, [500.0, 500.0, 540.0, 540.0])      # outside the image
