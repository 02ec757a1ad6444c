"""The weights shipped inside the package (fadenn_tf.pretrained): they load by name through
the public API and the commands, and find landmarks on built-in synthetic faces far better
than the mean shape (a check that the file is the trained model, not a random one)."""
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf import metrics, pretrained
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.datasets import open_dataset
from fadenn_tf.data.pipeline import load_eval_data
from fadenn_tf.errors import DataError
from fadenn_tf.inference import load_any

SHIPPED = pretrained.available()


def test_every_name_resolves_or_says_what_ships():
    assert "pretrained-fll" in SHIPPED, "the package must ship the real-face FLL"
    for name in pretrained.NAMES:
        if name in SHIPPED:
            assert pretrained.resolve(name).is_file()
        else:
            with pytest.raises(DataError, match="not in this installation"):
                pretrained.resolve(name)
    with pytest.raises(DataError, match="not a shipped model name"):
        pretrained.resolve("pretrained-xl")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_beats_the_mean_shape_on_synthetic_faces(name):
    model = load_any(name)
    assert model.metadata["format_version"] == 1 and model.metadata["input_range"] == [0, 255]
    samples, _ = open_dataset(resolve_data(None), split="test")
    data = load_eval_data(samples[:48], model.size)
    out = model.predict_crops(data.images.astype(np.float32))
    lm = out["landmarks"]
    assert lm.shape == (48, 68, 2) and np.isfinite(lm).all()
    err = metrics.nme(lm, data.landmarks).mean()
    mean_shape = np.broadcast_to(np.nanmean(data.landmarks, axis=0), lm.shape)
    base = metrics.nme(mean_shape, data.landmarks).mean()
    assert err < 0.6 * base, f"{name}: NME {err:.4f} vs mean shape {base:.4f} (diagonal)"


@pytest.mark.parametrize("name", SHIPPED)
def test_public_api_fits_a_photo_sized_image(name):
    samples, _ = open_dataset(resolve_data(None), split="test")
    from fadenn_tf.data.images import read_image
    from fadenn_tf.data.crop import landmark_box
    image = read_image(samples[0].image_path)
    box = landmark_box(samples[0].landmarks)
    faces = fadenn_tf.load(name, detector=None).predict(image, boxes=[box])
    lm = faces[0].landmarks
    assert lm.shape == (68, 2) and np.isfinite(lm).all()
    assert metrics.nme(lm, samples[0].landmarks) < 0.1
