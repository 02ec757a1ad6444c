"""An export crops as its model's metadata says: a model whose model.json has crop_scale 2.4
exports a predict_image_bytes signature, a SavedModel model.json, TFLite files (with
fadenn_<variant>.json beside them) and routed folders (with model.json) that all crop at
2.4, so every exported copy gives the landmarks of the Keras model's own fit_boxes.

The models are real tiny Keras models whose landmarks depend on the crop's pixels (a
random Dense on a 4x4 pooled map plus a face shape), so a crop at another scale gives
other landmarks both through the crop's pixels and through the inverse crop.
"""
import json
import shutil

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

import fadenn_tf
from fadenn_tf import models as M
from fadenn_tf.config import load_config
from fadenn_tf.data.crop import crop_region, landmark_box
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.deploy.signatures import BYTES_SIGNATURE
from fadenn_tf.export import main as export_main

SIZE = 16
LOGITS = np.array([0.1, 0.3, 2.0, -1.0, 0.5], np.float32)
WIDE = 2.4


def _pixel_model(seed=0):
    """A FADeNN-style dict model on SIZE x SIZE crops whose landmarks (about the crop's
    centre half) move by ~2 px with the crop's content."""
    rng = np.random.default_rng(seed)
    lo, hi = SIZE / 4, 3 * SIZE / 4
    base = np.concatenate([rng.uniform(lo, hi, 68), rng.uniform(lo, hi, 68)])
    inp = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.Flatten()(keras.layers.AveragePooling2D(4)(inp))   # 48 values
    flat = keras.layers.Dense(
        136, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=seed),
        bias_initializer=keras.initializers.Constant(base.astype(np.float32)))(pooled)
    pts = keras.layers.Permute((2, 1))(keras.layers.Reshape((2, 68))(flat))
    g = keras.layers.GlobalAveragePooling2D()(inp)
    z = keras.layers.Dense(5, kernel_initializer="zeros", name="classifier",
                           bias_initializer=keras.initializers.Constant(LOGITS))(g)
    return keras.Model(inp, {"landmarks": pts, "noise_probs": keras.layers.Softmax()(z),
                             "denoised": keras.layers.Activation("linear")(inp)})


def _with_scale(keras_file, folder, scale):
    """A copy of keras_file (+ its .json) in `folder` whose metadata says crop_scale
    `scale` -> the new .keras path."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / keras_file.name
    shutil.copy(keras_file, dst)
    meta = json.loads(keras_file.with_suffix(".json").read_text())
    meta["crop_scale"] = scale
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


def _keras_fits(keras_file, faces):
    """Landmarks (K, 68, 2) image pixels of the Keras model's own fit_boxes, one face per
    image of `faces` [(image, box)]."""
    model = fadenn_tf.load(keras_file, detector=None, backend="keras",
                           failure_detector=None).model
    return np.stack([model.fit_boxes(img, box[None]).landmarks[0] for img, box in faces])


def _export(model_file, out, *flags):
    """`python -m fadenn_tf.export --model model_file --out out flags...` in this process
    (its main releases the folder lock it takes) -> the exit status."""
    return export_main(["--model", str(model_file), "--out", str(out), "--no-progress",
                        *flags])


def _litert_fits(path, faces):
    model = fadenn_tf.load(path, detector=None, backend="litert", failure_detector=None).model
    assert model.crop_scale == WIDE
    return np.stack([model.fit_boxes(img, box[None]).landmarks[0] for img, box in faces])


@pytest.fixture(scope="module")
def faces():
    """Two synthetic faces [(image (H,W,3) uint8 RGB, landmark box (4,))]."""
    out = []
    for seed in (11, 12):
        img, lm, _ = render_face(np.random.default_rng(seed), image_size=(150, 200))
        out.append((img, landmark_box(lm)))
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(the .keras file saved at crop_scale 2.0, its copy whose model.json says 2.4)."""
    root = tmp_path_factory.mktemp("crop_scale_export")
    plain = M.save_model(_pixel_model(), root / "plain" / "model.keras")
    assert json.loads(plain.with_suffix(".json").read_text())["crop_scale"] == 2.0
    return plain, _with_scale(plain, root / "wide", WIDE)


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory):
    """The 2.4 model through `export --tflite float32` -> the export root."""
    out = tmp_path_factory.mktemp("exports") / "wide"
    assert _export(source[1], out, "--tflite", "float32") == 0
    return out


def test_keras_crops_differ_between_the_two_scales(source, faces):
    """The premise of the checks below: 2.0 and 2.4 give clearly different landmarks."""
    plain, wide = (_keras_fits(f, faces) for f in source)
    assert np.abs(plain - wide).max() > 5.0


def test_bytes_signature_and_saved_model_crop_at_the_model_scale(source, exported, faces):
    vdir = exported / "1"
    assert json.loads((vdir / "model.json").read_text())["crop_scale"] == WIDE
    sig = tf.saved_model.load(str(vdir)).signatures[BYTES_SIGNATURE]
    encoded = [cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()
               for img, _ in faces]
    out = sig(image_bytes=tf.constant(encoded),
              boxes=tf.constant(np.stack([b for _, b in faces]), tf.float32))
    assert out["valid"].numpy().all()
    got = out["landmarks"].numpy()
    want, plain = _keras_fits(source[1], faces), _keras_fits(source[0], faces)
    # the signature's TF crop differs from crop_image by a fraction of a crop pixel; one
    # crop pixel here is region / 16 ~ 6 image pixels
    region_px = [np.ptp(crop_region(b, img.shape[:2], WIDE).reshape(2, 2), axis=0) / SIZE
                 for img, b in faces]
    crop_px = np.abs(got - want) / np.asarray(region_px)[:, None, :]
    assert crop_px.max() < 0.15, crop_px.max()
    assert np.abs(got - plain).max() > 5.0           # not the 2.0 crop
    # the SavedModel loaded as a model crops at 2.4 too (its model.json)
    saved = fadenn_tf.load(vdir, detector=None, backend="keras", failure_detector=None).model
    assert saved.crop_scale == WIDE
    img, box = faces[0]
    np.testing.assert_allclose(saved.fit_boxes(img, box[None]).landmarks[0], want[0],
                               atol=1e-3)


def test_tflite_copies_carry_the_metadata_and_crop_at_the_model_scale(exported, source,
                                                                      faces):
    tfl = exported / "tflite-1" / "fadenn_float32.tflite"
    beside = tfl.with_suffix(".json")
    assert beside.is_file()
    assert json.loads(beside.read_text()) == json.loads((exported / "1" / "model.json")
                                                        .read_text())
    got = _litert_fits(tfl, faces)
    np.testing.assert_allclose(got, _keras_fits(source[1], faces), atol=1e-2)
    assert np.abs(got - _keras_fits(source[0], faces)).max() > 5.0
    # without its metadata the same file crops at the default 2.0
    alone = exported / "alone.tflite"
    shutil.copy(tfl, alone)
    assert fadenn_tf.load(alone, detector=None, backend="litert",
                          failure_detector=None).model.crop_scale == 2.0


def test_a_bad_crop_scale_stops_the_export_before_it_writes(source, tmp_path, capsys):
    bad = _with_scale(source[0], tmp_path / "bad", -1.0)
    assert _export(bad, tmp_path / "out") == 2
    assert f"{tmp_path / 'bad' / 'model.json'}: crop_scale must be a number > 0" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# a tiny FADeNN-M (routed parts convert in seconds)
TINY_M = load_config("cpu", overrides={"model": {
    "iid": {"input_size": 32, "filters": [4, 4, 4, 4, 4], "latent_dim": 16, "head_hidden": 8},
    "fll": {"input_size": 32, "width": 0.125, "blocks": [0, 0, 0]}}}).model


@pytest.mark.slow   # six routed parts to convert: ~30-45 s on 2 shared cores
def test_routed_folders_carry_the_metadata_and_crop_at_the_model_scale(tmp_path, faces):
    keras.utils.set_random_seed(4)
    plain = M.save_model(M.build_variant(TINY_M, "M"), tmp_path / "m" / "model.keras", "M")
    wide = _with_scale(plain, tmp_path / "wide", WIDE)
    out = tmp_path / "exports" / "m"
    assert _export(wide, out, "--tflite-routed", "float32") == 0
    folder = out / "tflite-1" / "routed-float32"
    assert json.loads((folder / "model.json").read_text()) == \
        json.loads((out / "1" / "model.json").read_text())
    got = _litert_fits(folder, faces)
    np.testing.assert_allclose(got, _keras_fits(wide, faces), atol=1e-2)
    assert np.abs(got - _keras_fits(plain, faces)).max() > 5.0
