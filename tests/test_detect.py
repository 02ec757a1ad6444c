"""Face box providers: Haar detector, fixed boxes, landmark boxes, registry, boxes files."""
import json

import cv2
import numpy as np
import pytest

from fadenn_tf import detect
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.errors import DataError

FRONTAL = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [], "others": [],
           "scale": 60.0, "center": [100.0, 100.0]}


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_haar_finds_frontal_synthetic_faces_and_correction_helps():
    det = detect.HaarFaceDetector()
    raw = detect.HaarFaceDetector(correction=None)
    found, corrected, uncorrected = 0, [], []
    for seed in range(20):
        img, lm, _ = render_face(seed, params=FRONTAL, image_size=200)
        boxes = det(img)
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and boxes.dtype == np.float64
        if len(boxes) == 0:
            continue
        found += 1
        target = detect.landmark_box(lm)
        corrected.append(iou(boxes[0], target))
        uncorrected.append(iou(detect.sort_boxes(raw.raw_boxes(img)[0])[0], target))
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert (np.diff(areas) <= 0).all()  # largest first
    # The cascade fires on about half of the frontal synthetic faces (not on all).
    assert found >= 6
    assert min(corrected) > 0.5
    assert np.mean(corrected) > np.mean(uncorrected) + 0.05


def test_haar_blank_and_noise_images_give_no_face():
    det = detect.HaarFaceDetector()
    assert det(np.full((120, 160, 3), 128, np.uint8)).shape == (0, 4)
    assert det(np.zeros((40, 40, 3), np.uint8)).shape == (0, 4)


def test_haar_parameters_are_validated_and_min_size_fraction():
    with pytest.raises(ValueError, match="scale_factor"):
        detect.HaarFaceDetector(scale_factor=1.0)
    det = detect.HaarFaceDetector(min_size=0.5)
    assert det._min_size_px((200, 300)) == (100, 100)
    img, _, _ = render_face(0, params=FRONTAL, image_size=200)
    # faces must be at least 190 px: none in a 200 px image with a 120 px face
    assert detect.HaarFaceDetector(min_size=190)(img).shape == (0, 4)


def test_missing_cascade_file_says_how_to_fix(tmp_path):
    with pytest.raises(detect.DetectorUnavailableError, match="opencv-python-headless"):
        detect.HaarFaceDetector(cascade=str(tmp_path / "nope.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(detect.DetectorUnavailableError, match="could not load"):
        detect.HaarFaceDetector(cascade=str(bad))


def test_opencv_without_cascade_classifier_is_reported(monkeypatch):
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(detect.DetectorUnavailableError, match="<5"):
        detect.HaarFaceDetector()


def test_clip_boxes():
    shape = (100, 200, 3)
    out = detect.clip_boxes([[-10, -5, 50, 60], [150, 80, 260, 140], [300, 0, 400, 50]], shape)
    np.testing.assert_allclose(out, [[0, 0, 50, 60], [150, 80, 200, 100]])
    assert detect.clip_boxes([], shape).shape == (0, 4)
    assert detect.clip_boxes([[-50, -50, -10, -10]], shape).shape == (0, 4)
    with pytest.raises(ValueError):
        detect.clip_boxes([[0, 0, 1]], shape)


def test_fixed_boxes_sorted_clipped_and_empty():
    img = np.zeros((100, 100, 3), np.uint8)
    prov = detect.FixedBoxes([[10, 10, 20, 20], [0, 0, 150, 50]])
    assert isinstance(prov, detect.BoxProvider)
    np.testing.assert_allclose(prov(img), [[0, 0, 100, 50], [10, 10, 20, 20]])
    assert detect.FixedBoxes([])(img).shape == (0, 4)
    np.testing.assert_allclose(detect.FixedBoxes([1, 2, 3, 4])(img), [[1, 2, 3, 4]])


def test_landmark_box_provider():
    img = np.zeros((100, 120, 3), np.uint8)
    prov = detect.LandmarkBoxProvider()
    assert prov(img).shape == (0, 4)
    lm = np.array([[10.0, 20.0], [50.0, 70.0], [30.0, 40.0]])
    prov.update(lm)
    np.testing.assert_allclose(prov(img), [[10.5, 20.5, 50.5, 70.5]])
    grown = detect.LandmarkBoxProvider(lm, margin=0.5)(img)
    np.testing.assert_allclose(grown, [[0.0, 0.0, 70.5, 95.5]])
    prov.update(lm + 500)  # box outside the image
    assert prov(img).shape == (0, 4)
    prov.update(None)
    assert prov(img).shape == (0, 4)
    with pytest.raises(ValueError):
        prov.update(np.array([[np.nan, 1.0]]))


def test_box_correction_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (10, 2))
    wh = rng.uniform(20, 80, (10, 2))
    det_boxes = np.hstack([xy, xy + wh])
    params = (0.05, 0.15, 0.9, 0.85)
    target = detect.apply_box_correction(det_boxes, params)
    np.testing.assert_allclose(detect.fit_box_correction(det_boxes, target), params, atol=1e-12)
    w = target[:, 2] - target[:, 0]
    np.testing.assert_allclose(w, 0.9 * wh[:, 0])


def test_registry(monkeypatch):
    from fadenn_tf.detect import registry
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert isinstance(detect.get_detector("haar", min_neighbors=3), detect.HaarFaceDetector)
    with pytest.raises(ValueError, match="haar"):
        detect.get_detector("nope")

    class Centre:
        def __init__(self, frac=0.5):
            self.frac = frac

        def __call__(self, image):
            h, w = image.shape[:2]
            return detect.clip_boxes([[w * (1 - self.frac) / 2, h * (1 - self.frac) / 2,
                                       w * (1 + self.frac) / 2, h * (1 + self.frac) / 2]],
                                     image.shape)

    detect.register_detector("centre", Centre)
    assert "centre" in detect.available_detectors()
    boxes = detect.get_detector("centre", frac=0.5)(np.zeros((100, 200, 3), np.uint8))
    np.testing.assert_allclose(boxes, [[50, 25, 150, 75]])
    with pytest.raises(ValueError, match="already registered"):
        detect.register_detector("centre", Centre)
    detect.register_detector("centre", lambda: detect.FixedBoxes([]), overwrite=True)
    assert detect.get_detector("centre")(np.zeros((9, 9, 3), np.uint8)).shape == (0, 4)
    with pytest.raises(TypeError):
        detect.register_detector("x", 3)


def test_load_boxes_json_and_csv(tmp_path):
    j = tmp_path / "boxes.json"
    j.write_text(json.dumps({"a.jpg": [1, 2, 30, 40], "b.png": [[0, 0, 5, 5], [1, 1, 9, 9]],
                             "c.jpg": []}))
    got = detect.load_boxes_file(j)
    np.testing.assert_allclose(got["a.jpg"], [[1, 2, 30, 40]])
    assert got["b.png"].shape == (2, 4) and got["c.jpg"].shape == (0, 4)

    c = tmp_path / "boxes.csv"
    c.write_text("image,x0,y0,x1,y1\n# comment\nimg/a.jpg,1,2,3,4\nimg/a.jpg,5,6,7,8\n"
                 "b.jpg, 0.5, 0.5, 10, 12\n")
    got = detect.load_boxes_file(c)
    np.testing.assert_allclose(got["img/a.jpg"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_allclose(got["b.jpg"], [[0.5, 0.5, 10, 12]])
    assert detect.lookup_boxes(got, "/data/b.jpg") is got["b.jpg"]
    assert detect.lookup_boxes(got, "img/a.jpg") is got["img/a.jpg"]
    assert detect.lookup_boxes(got, "zzz.jpg") is None


@pytest.mark.parametrize("name,text,match", [
    ("bad.json", "{not json", "not valid JSON"),
    ("list.json", "[1, 2, 3, 4]", "must be an object"),
    ("short.json", '{"a.jpg": [1, 2, 3]}', "'a.jpg'.*4 numbers"),
    ("flip.json", '{"a.jpg": [10, 0, 5, 5]}', "no area"),
    ("text.json", '{"a.jpg": ["x", 0, 5, 5]}', "numbers"),
    ("nan.json", '{"a.jpg": [NaN, 0, 5, 5]}', "finite"),
    ("cols.csv", "a.jpg,1,2,3\n", "line 1: expected 5 columns"),
    ("word.csv", "a.jpg,1,2,3,4\nb.jpg,1,x,3,4\n", "line 2: box values must be numbers"),
    ("area.csv", "a.jpg,5,5,5,9\n", "line 1.*no area"),
    ("empty.csv", "  \n", "empty boxes file"),
    ("header.csv", "image,x0,y0,x1,y1\n", "no boxes found"),
])
def test_load_boxes_bad_files_name_the_file(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        detect.load_boxes_file(path)
    assert info.value.path == str(path)


def test_load_boxes_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        detect.load_boxes_file(tmp_path / "none.json")


# ------------------------------------------------ downscaled detection, profile, chains, dlib

def test_detection_on_a_shrunk_image_returns_boxes_in_image_pixels():
    full_det = detect.HaarFaceDetector(detect_width=0, min_size=20, equalize=False,
                                       min_neighbors=5)
    small_det = detect.HaarFaceDetector(detect_width=200, min_size=20, equalize=False,
                                        min_neighbors=5)
    both = 0
    for seed in range(12):
        img, lm, _ = render_face(seed, params=dict(FRONTAL, scale=90.0,
                                                   center=[200.0, 150.0]),
                                 image_size=(300, 400))
        full, small = full_det(img), small_det(img)
        if len(full) and len(small):
            both += 1
            assert iou(full[0], small[0]) > 0.6                  # same face, image pixels
            assert iou(small[0], detect.landmark_box(lm)) > 0.5
    assert both >= 2
    # min_size is in pixels of the original image, also when detecting on a shrunk copy
    assert len(detect.HaarFaceDetector(detect_width=200, min_size=290)(img)) == 0
    with pytest.raises(ValueError, match="detect_width"):
        detect.HaarFaceDetector(detect_width=8)
    # "auto": shrunk so that min_size becomes the cascade's 24 px window
    auto = detect.HaarFaceDetector(detect_width="auto", min_size=48)
    gray, factor = auto._gray(np.zeros((360, 640, 3), np.uint8))
    assert factor == 2.0 and gray.shape == (180, 320)
    assert detect.HaarFaceDetector(detect_width="auto", min_size=20)._gray(
        np.zeros((360, 640, 3), np.uint8))[1] == 1.0                 # never enlarged


def test_profile_detector_mirror_side_maps_back_to_the_image():
    # The profile cascade rarely fires on synthetic faces: the frontal cascade exercises the
    # same two-sided code (image + mirror image, mirrored correction).
    prof = detect.ProfileFaceDetector(cascade=detect.DEFAULT_CASCADE, min_size=20,
                                      min_neighbors=3, equalize=False,
                                      correction=(0.1, 0.0, 1.0, 1.0))
    seen = 0
    for seed in range(10):
        img, _, _ = render_face(seed, params=FRONTAL, image_size=200)
        mirror = np.ascontiguousarray(img[:, ::-1])
        a, _ = prof.raw_boxes(img, mirrored=True)
        b, _ = prof.raw_boxes(mirror, mirrored=False)
        assert len(a) == len(b)
        if len(a):
            seen += 1
            w = img.shape[1]
            np.testing.assert_allclose(
                detect.sort_boxes(a), detect.sort_boxes(np.stack(
                    [w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)))
            # the correction moves image-side boxes right, mirror-side boxes left
            got = prof(img)
            want = detect.sort_boxes(np.concatenate([
                detect.apply_box_correction(prof.raw_boxes(img)[0], (0.1, 0, 1, 1)),
                detect.apply_box_correction(a, (-0.1, 0, 1, 1))]))
            np.testing.assert_allclose(got, detect.clip_boxes(want, img.shape))
    assert seen >= 2


class Fixed:
    def __init__(self, boxes):
        self.boxes, self.calls = detect.as_boxes(boxes), 0

    def __call__(self, image):
        self.calls += 1
        return self.boxes.copy()


def test_fallback_chain_and_registry_names():
    img = np.zeros((50, 60, 3), np.uint8)
    none, some = Fixed([]), Fixed([1, 2, 30, 40])
    chain = detect.FallbackDetector([none, some, Fixed([0, 0, 5, 5])])
    np.testing.assert_allclose(chain(img), [[1, 2, 30, 40]])
    assert chain.last_used == 1 and none.calls == 1
    assert detect.FallbackDetector([none])(img).shape == (0, 4)
    built = detect.get_detector("haar+profile", min_neighbors=2, equalize=True)
    assert isinstance(built, detect.FallbackDetector)
    assert isinstance(built.detectors[1], detect.ProfileFaceDetector)
    assert [(d.min_neighbors, d.equalize) for d in built.detectors] == [(2, True)] * 2
    if detect.dlib_available():   # each detector of a chain takes the options it knows
        chain = detect.get_detector("dlib+haar", equalize=True, upsample=1)
        assert chain.detectors[0].upsample == 1 and chain.detectors[1].equalize is True
    with pytest.raises(TypeError, match="colour"):
        detect.get_detector("haar+profile", colour=1)
    assert detect.get_detector("default")(img).shape == (0, 4)
    with pytest.raises(ValueError, match="'nope'"):
        detect.get_detector("haar+nope")
    with pytest.raises(ValueError, match="'\\+'"):
        detect.register_detector("a+b", Fixed)


def test_defaults_come_from_the_fitted_constants():
    det = detect.HaarFaceDetector()
    d = detect.HAAR_DEFAULTS
    assert (det.scale_factor, det.min_neighbors, det.min_size, det.equalize,
            det.detect_width) == (d["scale_factor"], d["min_neighbors"], d["min_size"],
                                  d["equalize"], d["detect_width"])
    assert det.correction == detect.HAAR_TO_LANDMARK_BOX
    assert detect.default_detector_name() == detect.DEFAULT_DETECTOR == "ultraface"


def test_dlib_detector_when_installed():
    if not detect.dlib_available():
        with pytest.raises(detect.DetectorUnavailableError, match=r"fadenn_tf\[dlib\]"):
            detect.get_detector("dlib")
        assert "dlib" not in detect.available_detectors()
        return
    det = detect.get_detector("dlib")
    assert det(np.full((120, 160, 3), 128, np.uint8)).shape == (0, 4)
    found = []
    for seed in range(10):
        img, lm, _ = render_face(seed, params=dict(FRONTAL, scale=70.0,
                                                   center=[150.0, 150.0]), image_size=300)
        boxes = det(img)
        if len(boxes):
            found.append(iou(boxes[0], detect.landmark_box(lm)))
    assert found and np.mean(found) > 0.5


def test_cli_detector_options(tmp_path):
    import argparse
    p = argparse.ArgumentParser()
    detect.add_detector_arguments(p)
    a = p.parse_args(["--detector", "haar", "--no-equalize", "--detect-width", "320",
                      "--min-neighbors", "3"])
    kw = detect.detector_kwargs_from_args(a)
    assert kw == {"equalize": False, "detect_width": 320, "min_neighbors": 3}
    det = detect.get_detector(a.detector, **kw)
    assert det.equalize is False and det.detect_width == 320 and det.min_neighbors == 3
    assert detect.detector_kwargs_from_args(p.parse_args([])) == {}
    assert p.parse_args([]).detector == "default"
