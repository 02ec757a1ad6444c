"""UltraFace, the default face detector: anchors, decoding and NMS on known numbers, the
packaged TFLite files, detection of synthetic faces with scores, min_score, input sizes, the
registry and command-line options, and the default path importing no TensorFlow."""
import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from fadenn_tf import detect
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.detect import ultraface_decode as ud
from fadenn_tf.detect.ultraface import auto_input_size
from fadenn_tf.evaluation.detectors import iou

FRONTAL = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [], "others": [],
           "scale": 60.0, "center": [100.0, 100.0]}


@pytest.fixture(scope="module")
def rfb():
    return detect.UltraFaceDetector()


def frontal(seed, size=200):
    img, lm, _ = render_face(seed, params=FRONTAL, image_size=size)
    return img, detect.landmark_box(lm)


# ------------------------------------------------------------------ anchors, decoding, NMS

def test_anchor_counts_order_and_clipping():
    a = ud.make_anchors(320, 240)
    assert a.shape == (4420, 4) and a.dtype == np.float32
    assert ud.make_anchors(640, 480).shape == (17640, 4)
    assert ud.feature_map_sizes(320, 240) == [(40, 30), (20, 15), (10, 8), (5, 4)]
    # first cell of the first map: three sides, then the next column
    np.testing.assert_allclose(a[0], [0.5 / 40, 0.5 / 30, 10 / 320, 10 / 240], rtol=1e-6)
    np.testing.assert_allclose(a[2, 2:], [24 / 320, 24 / 240], rtol=1e-6)
    np.testing.assert_allclose(a[3, :2], [1.5 / 40, 0.5 / 30], rtol=1e-6)
    np.testing.assert_allclose(a[3 * 40, :2], [0.5 / 40, 1.5 / 30], rtol=1e-6)   # next row
    # the last anchor: last cell of the 5x4 map, side 256 px: its height (256/240) is clipped
    np.testing.assert_allclose(a[-1], [4.5 / 5, 3.5 / 4, 256 / 320, 1.0], rtol=1e-6)
    assert a.min() >= 0 and a.max() <= 1


def test_zero_regression_decodes_to_the_anchor_and_known_shifts():
    anchors = np.array([[0.5, 0.25, 0.2, 0.1], [0.1, 0.9, 0.05, 0.05]], np.float32)
    np.testing.assert_allclose(ud.decode_boxes(np.zeros((2, 4)), anchors),
                               [[0.4, 0.2, 0.6, 0.3], [0.075, 0.875, 0.125, 0.925]], atol=1e-7)
    # dx = 1 moves the centre by 0.1 anchor widths (dy = -2: up by 0.2 anchor heights);
    # dw = ln(2) / 0.2 doubles the width
    reg = np.array([[1.0, -2.0, np.log(2.0) / 0.2, 0.0]], np.float32)
    np.testing.assert_allclose(ud.decode_boxes(reg, anchors[:1]),
                               [[0.32, 0.18, 0.72, 0.28]], atol=1e-6)
    with pytest.raises(ValueError, match="2 regressions for 1 anchors"):
        ud.decode_boxes(np.zeros((2, 4)), anchors[:1])


def test_nms_keeps_the_best_of_overlapping_boxes_only():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 12]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    # box 1 (best) suppresses 0 (IoU 0.82) and 3 (IoU 0.69); 2 does not overlap
    assert ud.nms(boxes, scores, 0.3).tolist() == [1, 2]
    # with a threshold above every overlap nothing is suppressed, order by score
    assert ud.nms(boxes, scores, 0.95).tolist() == [1, 0, 2, 3]
    assert ud.nms(boxes, scores, 0.3, max_boxes=1).tolist() == [1]
    assert ud.nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    np.testing.assert_allclose(ud.box_iou(boxes[0], boxes[1:2]), [90 / 110])
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        ud.nms(boxes[:3], scores[:2])


def test_confident_boxes_come_first_then_the_largest():
    from fadenn_tf.detect.ultraface import CONFIDENT_SCORE, preferred_order
    boxes = np.array([[0, 0, 5, 5], [0, 0, 20, 20], [0, 0, 3, 3], [0, 0, 8, 8]], float)
    scores = np.array([0.95, 0.8, 0.99, CONFIDENT_SCORE])
    assert preferred_order(boxes, scores).tolist() == [3, 0, 2, 1]
    assert preferred_order(boxes, np.ones(4)).tolist() == [1, 3, 0, 2]   # all sure: by area


# --------------------------------------------------------------------------- the detector

def test_packaged_files_and_licence_are_present():
    for variant in ("rfb", "slim"):
        path = detect.ultraface_path(variant)
        assert path.is_file() and 1_000_000 < path.stat().st_size < 1_300_000
        assert path.read_bytes()[4:8] == b"TFL3"                 # a TFLite flatbuffer
    licence = detect.ultraface_path().parent / "LICENSE-ultraface.txt"
    assert "MIT License" in licence.read_text() and "linzai" in licence.read_text()
    with pytest.raises(ValueError, match="variant"):
        detect.ultraface_path("large")


def test_a_missing_or_broken_model_file_is_named(tmp_path):
    from fadenn_tf.errors import DataError
    with pytest.raises(DataError, match="nope.tflite.*not found"):
        detect.UltraFaceDetector(model_path=tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(DataError, match="bad.tflite.*not a TFLite model"):
        detect.UltraFaceDetector(model_path=bad)


def test_finds_synthetic_faces_with_scores_and_the_fitted_mapping(rfb):
    raw = detect.UltraFaceDetector(correction=None)
    fitted, unfitted = [], []
    for seed in range(8):
        img, target = frontal(seed)
        boxes, scores = rfb.detect(img)
        assert len(boxes) == 1, f"seed {seed}: {len(boxes)} boxes"
        assert rfb.min_score <= scores[0] <= 1.0
        np.testing.assert_array_equal(rfb(img), boxes)
        np.testing.assert_array_equal(rfb.last_scores, scores)
        fitted.append(iou(boxes[0], target))
        unfitted.append(iou(raw(img)[0], target))
    assert min(fitted) > 0.65
    assert np.mean(fitted) > np.mean(unfitted) + 0.05      # the mapping moves boxes closer


def test_blank_and_noise_images_give_no_face(rfb):
    rng = np.random.default_rng(0)
    for img in (np.full((120, 160, 3), 128, np.uint8), np.zeros((9, 9, 3), np.uint8),
                rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
                np.zeros((40, 40), np.uint8)):
        boxes, scores = rfb.detect(img)
        assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match="uint8"):
        rfb(np.zeros((40, 40, 3), np.float32))


def test_min_score_is_the_cut():
    grey = np.full((120, 160, 3), 128, np.uint8)
    _, all_scores = detect.UltraFaceDetector(min_score=0.0).raw_detect(grey)
    best = float(all_scores.max())
    assert 0.0 < best < 0.5                    # the network's best guess on a flat image
    below, above = (detect.UltraFaceDetector(min_score=best - 1e-3),
                    detect.UltraFaceDetector(min_score=min(1.0, best + 1e-3)))
    assert len(below.detect(grey)[1]) >= 1 and (below.detect(grey)[1] >= best - 1e-3).all()
    assert len(above.detect(grey)[1]) == 0
    with pytest.raises(ValueError, match="min_score"):
        detect.UltraFaceDetector(min_score=1.5)


def test_other_input_sizes(rfb):
    img, target = frontal(3, 240)
    big = detect.UltraFaceDetector(input_size=(640, 480))
    reg, prob, anchors = big.network_outputs(img)
    assert reg.shape == (17640, 4) and prob.shape == anchors.shape[:1] == (17640,)
    assert iou(big(img)[0], target) > 0.6
    fixed = detect.UltraFaceDetector(input_size=(320, 240))
    assert fixed.network_outputs(img)[0].shape == (4420, 4)
    # "auto" on this square image runs at 240x240: 30x30x3 + 15x15x2 + 8x8x2 + 4x4x3 anchors
    assert rfb.network_outputs(img)[0].shape == (3326, 4)
    # "auto" keeps the aspect ratio at about 320x240 pixels, sides multiples of 80
    assert auto_input_size((768, 1024)) == (320, 240)
    assert auto_input_size((1024, 768)) == (240, 320)
    assert auto_input_size((500, 500)) == (240, 240)
    tall = np.zeros((400, 300, 3), np.uint8)
    tall[100:340, 30:270] = frontal(4, 240)[0]
    assert len(rfb(tall)) == 1
    with pytest.raises(ValueError, match="multiples of 80"):
        detect.UltraFaceDetector(input_size=(300, 200))
    with pytest.raises(ValueError, match="input_size"):
        detect.UltraFaceDetector(input_size="big")


def test_slim_registry_default_and_command_line_options():
    assert detect.DEFAULT_DETECTOR == "ultraface"
    assert isinstance(detect.get_detector("default"), detect.UltraFaceDetector)
    slim = detect.get_detector("ultraface-slim", min_score=0.8)
    assert slim.variant == "slim" and slim.min_score == 0.8
    assert slim.correction == detect.ULTRAFACE_TO_LANDMARK_BOX["slim"]
    img, target = frontal(5)
    assert iou(slim(img)[0], target) > 0.6
    assert {"ultraface", "ultraface-slim"} <= set(detect.available_detectors())
    chain = detect.get_detector("ultraface+haar", min_score=0.9, min_neighbors=2)
    assert chain.detectors[0].min_score == 0.9 and chain.detectors[1].min_neighbors == 2
    assert len(chain(img)) == 1 and chain.last_used == 0 and chain.last_scores[0] >= 0.9
    p = argparse.ArgumentParser()
    detect.add_detector_arguments(p)
    args = p.parse_args(["--min-score", "0.6", "--detector-input", "640x480"])
    assert detect.detector_kwargs_from_args(args) == {"min_score": 0.6,
                                                      "input_size": (640, 480)}
    with pytest.raises(SystemExit):
        p.parse_args(["--detector-input", "big"])


def test_default_path_photo_to_landmarks_imports_no_tensorflow(tmp_path):
    """load("pretrained").predict(photo) with the default detector in a fresh process: the
    face is found, gets the detector's score, and neither TensorFlow nor Keras is imported."""
    img, target = frontal(6, 240)
    path = tmp_path / "face.npy"
    np.save(path, img)
    code = ("import json, sys\n"
            "import numpy as np, fadenn_tf\n"
            "from fadenn_tf import detect\n"
            "det = detect.get_detector('default')\n"
            "img = np.load(sys.argv[1])\n"
            "b = det(img)\n"
            "r = fadenn_tf.load('pretrained').predict(img)[0]\n"
            "faces = [f.to_dict(landmarks=False) for f in r.faces + r.rejected]\n"
            "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in "
            "sys.modules, 'det': type(det).__name__, 'boxes': b.tolist(), 'faces': faces}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["det"] == "UltraFaceDetector"
    assert got["tf"] is False and got["keras"] is False
    (face,) = got["faces"]
    assert face["box_source"] == "detector"
    np.testing.assert_allclose(face["box"], got["boxes"][0])
    assert iou(face["box"], target) > 0.6
    assert detect.ULTRAFACE_DEFAULTS["min_score"] <= face["detector_score"] <= 1.0
