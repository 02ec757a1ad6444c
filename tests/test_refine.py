"""predict's second pass (refine=True, inference.refine): each face cut again on its first
fit's landmark box and fitted again."""
import json

import numpy as np
import pytest

import fadenn_tf
from fadenn_tf.data.crop import CropTransform, landmark_box
from fadenn_tf.data.pts import read_pts
from fadenn_tf.predict import main

from fixtures import write_image
from test_predict import SIZE, ContentDetector, _face, constant_shape_model, crop_shape


def _first_and_second(shape, box, hw):
    """The two passes by hand: the fit in `box`, then the fit in its landmark box."""
    first = CropTransform.from_box(box, hw, SIZE).invert(shape.astype(np.float64))
    second = CropTransform.from_box(landmark_box(first), hw, SIZE).invert(
        shape.astype(np.float64))
    return first, second


@pytest.fixture(scope="module")
def small_shape_model(tmp_path_factory):
    """A constant model whose points fill only the middle 60% of the crop's face box: the
    landmark box of a fit is smaller than the box it came from, so a second pass moves the
    points."""
    c = crop_shape()
    mid = c.mean(axis=0)
    shape = (mid + 0.6 * (c - mid)).astype(np.float32)
    return shape, constant_shape_model(tmp_path_factory.mktemp("m") / "small.keras", shape)


def test_refine_is_the_fit_in_the_first_fits_landmark_box(small_shape_model):
    shape, path = small_shape_model
    p = fadenn_tf.load(path, detector=None)
    img = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array([[20.0, 15.0, 70.0, 70.0], [80.0, 30.0, 140.0, 95.0]])
    plain = p.predict(img, boxes=boxes)[0]
    again = p.predict(img, boxes=boxes, refine=True)[0]
    for k, box in enumerate(boxes):
        first, second = _first_and_second(shape, box, img.shape[:2])
        np.testing.assert_allclose(plain.faces[k].landmarks, first, atol=1e-3)
        np.testing.assert_allclose(again.faces[k].landmarks, second, atol=1e-3)
        assert np.abs(second - first).max() > 1.0          # the second pass did move them
        np.testing.assert_allclose(again.faces[k].box, box)  # the box reported stays given
    # the same through predict_file and a batch of two images
    batch = p.predict([img, img[:, ::-1].copy()], boxes=[boxes[0], boxes[1]], refine=True)
    np.testing.assert_allclose(batch[0].landmarks,
                               _first_and_second(shape, boxes[0], img.shape[:2])[1], atol=1e-3)


def test_auto_refines_detector_faces_not_given_boxes(small_shape_model):
    shape, path = small_shape_model
    p = fadenn_tf.load(path, detector=ContentDetector())
    img, _ = _face((120, 150), 7)
    box = ContentDetector()(img)[0]
    first, second = _first_and_second(shape, box, img.shape[:2])
    found = p.predict(img)[0]                       # the default: refine="auto"
    np.testing.assert_allclose(found.box, box)
    np.testing.assert_allclose(found.landmarks, second, atol=1e-3)
    np.testing.assert_allclose(p.predict(img, refine=False)[0].landmarks, first, atol=1e-3)
    np.testing.assert_allclose(p.predict(img, boxes=box)[0].landmarks, first, atol=1e-3)
    np.testing.assert_allclose(p.predict(img, boxes=box, refine=True)[0].landmarks, second,
                               atol=1e-3)
    # one batch mixing a given box and a detected face: only the detected one is refined
    both = p.predict([img, img], boxes=[box, None])
    np.testing.assert_allclose(both[0].landmarks, first, atol=1e-3)
    np.testing.assert_allclose(both[1].landmarks, second, atol=1e-3)
    with pytest.raises(ValueError, match="refine must be"):
        p.predict(img, refine="yes")


def test_a_face_whose_landmark_box_is_unusable_keeps_its_first_fit(tmp_path):
    # points far outside the crop: their landmark box lies outside the image
    shape = np.full((68, 2), -40 * SIZE, np.float32) + np.arange(68)[:, None]
    path = constant_shape_model(tmp_path / "out.keras", shape)
    p = fadenn_tf.load(path, detector=None)
    img = np.zeros((100, 100, 3), np.uint8)
    box = [30.0, 30.0, 70.0, 70.0]
    np.testing.assert_allclose(p.predict(img, boxes=box, refine=True)[0].landmarks,
                               p.predict(img, boxes=box)[0].landmarks)


def test_cli_refine_writes_the_second_pass_and_records_it(small_shape_model, tmp_path):
    shape, path = small_shape_model
    img = np.full((120, 160, 3), 40, np.uint8)
    write_image(tmp_path / "in" / "a.png", img)
    box = [20.0, 15.0, 70.0, 70.0]
    (tmp_path / "boxes.json").write_text(json.dumps({"a.png": box}))
    out = tmp_path / "out"
    assert main([str(tmp_path / "in"), "--model", str(path), "--out", str(out), "--boxes",
                 str(tmp_path / "boxes.json"), "--refine", "on", "--no-overlay",
                 "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["refine"] is True
    np.testing.assert_allclose(read_pts(out / "a.pts"),
                               _first_and_second(shape, box, img.shape[:2])[1], atol=2e-3)
