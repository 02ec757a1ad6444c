"""A loaded model crops as its own metadata says: `crop_scale` and `input_size` in its
model.json (inference.crop_model.crop_geometry), for Keras and LiteRT models alike.

The model is a REAL tiny Keras model in model format 1 whose landmarks are a fixed shape in
crop pixels whatever the crop (a zero-kernel Dense), so its image landmarks are exactly that
shape mapped back through the crop the model made: a different crop_scale gives a different
crop region and different landmarks.
"""
import json
import shutil

import keras
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf import models as M
from fadenn_tf.data.crop import CropTransform, crop_image, crop_region
from fadenn_tf.errors import DataError
from fadenn_tf.inference.litert_load import load_litert
from fadenn_tf.inference.model import load_any
from fadenn_tf.noise import to_model_size

from test_predict import crop_shape

SIZE = 16
LOGITS = np.array([0.1, 0.3, 2.0, -1.0, 0.5], np.float32)
BOXES = np.array([[60.0, 50.0, 100.0, 96.0],      # inside the image at 2x and 2.4x
                  [100.5, 60.25, 150.0, 118.0]])   # 2.4x reaches past the bottom: clipped


def _shape_model():
    """A FADeNN-style model (landmarks, noise_probs, denoised) predicting crop_shape()."""
    shape = crop_shape(SIZE)
    inp = keras.Input((SIZE, SIZE, 3))
    g = keras.layers.GlobalAveragePooling2D()(inp)
    flat = np.concatenate([shape[:, 0], shape[:, 1]])
    out = keras.layers.Dense(136, kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(flat))(g)
    pts = keras.layers.Permute((2, 1))(keras.layers.Reshape((2, 68))(out))
    z = keras.layers.Dense(5, kernel_initializer="zeros", name="classifier",
                           bias_initializer=keras.initializers.Constant(LOGITS))(g)
    probs = keras.layers.Softmax()(z)
    return keras.Model(inp, {"landmarks": pts, "noise_probs": probs,
                             "denoised": keras.layers.Activation("linear")(inp)})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("crop_scale") / "model.keras"
    M.save_model(_shape_model(), path)
    assert json.loads(path.with_suffix(".json").read_text())["crop_scale"] == 2.0
    return path


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)


def _copy(src, folder, **changes):
    """src (.keras + .json) copied into `folder` with metadata `changes` (value None:
    the key removed) -> the new .keras path."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    shutil.copy(src, dst)
    meta = json.loads(src.with_suffix(".json").read_text())
    for k, v in changes.items():
        meta.pop(k) if v is None else meta.__setitem__(k, v)
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


def _expected(box, hw, scale):
    """The fixed crop shape mapped back through the crop at `scale`."""
    return CropTransform.from_box(box, hw, SIZE, scale=scale).invert(crop_shape(SIZE))


def test_crop_scale_in_model_json_changes_the_crop_and_the_landmarks(saved, image, tmp_path):
    hw = image.shape[:2]
    plain = load_any(saved)
    wide = load_any(_copy(saved, tmp_path / "wide", crop_scale=2.4))
    assert (plain.crop_scale, wide.crop_scale) == (2.0, 2.4) and wide.size == SIZE
    fits = {}
    for name, model, scale in (("plain", plain, 2.0), ("wide", wide, 2.4)):
        fit = model.fit_boxes(image, BOXES)
        for k, box in enumerate(BOXES):
            np.testing.assert_allclose(fit.regions[k], crop_region(box, hw, scale))
            np.testing.assert_allclose(fit.landmarks[k], _expected(box, hw, scale), atol=1e-3)
        np.testing.assert_allclose(fit.noise_probs, np.tile(np.exp(LOGITS) / np.exp(LOGITS)
                                                            .sum(), (2, 1)), atol=1e-5)
        crop, region = model.crop(image, BOXES[0])      # the pixels the model is given
        want = crop_image(image, CropTransform.from_box(BOXES[0], hw, SIZE, scale=scale))
        np.testing.assert_array_equal(crop, want.astype(np.float32))
        np.testing.assert_allclose(region, fit.regions[0])
        fits[name] = fit
    # 2.4 x the box is a larger region: the same crop shape spreads 1.2 x wider in the image
    spread = [np.ptp(fits[n].landmarks[0], axis=0) for n in ("plain", "wide")]
    np.testing.assert_allclose(spread[1] / spread[0], 1.2, rtol=1e-3)
    assert not np.array_equal(plain.crop(image, BOXES[0])[0], wide.crop(image, BOXES[0])[0])
    # the one-face convenience and the Predictor use the same crop
    lm, probs = wide.fit_box(image, BOXES[1])
    np.testing.assert_allclose(lm, fits["wide"].landmarks[1], atol=1e-6)
    p = fadenn_tf.load(wide.path, detector=None, backend="keras")
    r = p.predict(image, boxes=BOXES, all_faces=True)[0]
    np.testing.assert_allclose(np.stack([f.landmarks for f in r.faces]),
                               fits["wide"].landmarks, atol=1e-4)


def test_litert_copies_crop_as_their_metadata_says(saved, image, tmp_path):
    hw = image.shape[:2]
    wide_keras = _copy(saved, tmp_path / "wide", crop_scale=2.4)
    converted = load_litert(wide_keras)                 # metadata of the source .keras
    assert converted.kind == "litert" and converted.crop_scale == 2.4
    np.testing.assert_allclose(converted.fit_boxes(image, BOXES).landmarks,
                               np.stack([_expected(b, hw, 2.4) for b in BOXES]), atol=1e-3)
    # a .tflite file: NAME.json beside it, else the defaults
    tfl = tmp_path / "alone" / "m.tflite"
    tfl.parent.mkdir()
    tfl.write_bytes(converted.tflite_bytes)
    assert load_litert(tfl).crop_scale == 2.0
    tfl.with_suffix(".json").write_text(json.dumps({"crop_scale": 2.4, "input_size": SIZE}))
    beside = load_litert(tfl)
    assert beside.crop_scale == 2.4
    np.testing.assert_allclose(beside.fit_box(image, BOXES[0])[0], _expected(BOXES[0], hw, 2.4),
                               atol=1e-3)
    # the shipped layout: NAME/litert-int8/ whose shipped.json names NAME/model.keras
    shipped = _copy(saved, tmp_path / "shipped", crop_scale=2.6)
    (shipped.parent / "litert-int8").mkdir()
    (shipped.parent / "litert-int8" / "model.tflite").write_bytes(converted.tflite_bytes)
    (shipped.parent / "litert-int8" / "shipped.json").write_text('{"source": "model.keras"}')
    assert load_litert(shipped.parent / "litert-int8" / "model.tflite").crop_scale == 2.6
    # a bad value beside a .tflite is an error naming that file
    tfl.with_suffix(".json").write_text(json.dumps({"crop_scale": -1}))
    with pytest.raises(DataError, match=r"m\.json: crop_scale must be a number > 0"):
        load_litert(tfl)


def test_metadata_without_crop_scale_crops_at_2(saved, image, tmp_path):
    old = load_any(_copy(saved, tmp_path / "old", crop_scale=None))
    assert "crop_scale" not in old.metadata and old.crop_scale == 2.0
    np.testing.assert_allclose(old.fit_box(image, BOXES[0])[0],
                               _expected(BOXES[0], image.shape[:2], 2.0), atol=1e-3)


@pytest.mark.parametrize("bad", [0, -2.0, "2.4", None, True, [2.0]])
def test_a_bad_crop_scale_is_an_error_naming_the_file(saved, tmp_path, bad):
    path = _copy(saved, tmp_path / "bad", crop_scale=2.0)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["crop_scale"] = bad
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(DataError) as err:
        load_any(path)
    assert err.value.path == str(path.with_suffix(".json"))
    assert "crop_scale must be a number > 0" in str(err.value)


def test_an_input_size_the_graph_does_not_take_is_an_error(saved, tmp_path):
    with pytest.raises(DataError, match=r"model\.json: input_size 32 does not match the "
                                        r"model, whose input is 16 x 16"):
        load_any(_copy(saved, tmp_path / "size", input_size=32))


def test_reference_crops_resize_to_the_model_input_at_its_own_scale(saved, tmp_path):
    refs = np.random.default_rng(5).uniform(0, 255, (3, 40, 40, 3)).astype(np.float32)
    model = load_any(saved)
    got = model.from_reference(refs)
    assert got.shape == (3, SIZE, SIZE, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, to_model_size(refs, SIZE).numpy(), atol=1e-5)
    np.testing.assert_array_equal(model.from_reference(got), got)    # already at S
    wide = load_any(_copy(saved, tmp_path / "wide", crop_scale=2.4))
    with pytest.raises(ValueError, match=r"crops 2\.4 x the face box .* reference crops "
                                         r"are 2 x the box"):
        wide.from_reference(refs)
