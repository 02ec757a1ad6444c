"""The failure detector shipped beside a model (used by default by predict and track), the
detector measurements of fadenn_tf.evaluation.detectors and the bench `detect` rows.
No test needs real faces: tiny synthetic 300-W trees and a constant-shape Keras model."""
import json
import shutil

import numpy as np
import pytest

from fadenn_tf import detect, pretrained
from fadenn_tf.benchmark import api_speed, machine, report
from fadenn_tf.data.crop import CropTransform, landmark_box
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.evaluation import detectors as dev
from fadenn_tf.fitcheck.detector import FailureDetector, failure_detector_from_spec
from fadenn_tf.fitcheck.features import FeatureConfig
from fadenn_tf.inference.predictor import load
from fadenn_tf.tracking.tracker import Tracker

from fixtures import make_300w
from test_predict import SIZE, constant_shape_model

FRONTAL = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [], "others": [],
           "scale": 40.0, "center": [90.0, 80.0]}


def _constant_fd(bias):
    """A fitted FailureDetector whose score is sigmoid(bias) for every estimate."""
    cfg = FeatureConfig()
    fd = FailureDetector(cfg)
    fd.weights, fd.bias = np.zeros(cfg.dim), float(bias)
    fd.mean, fd.std = np.zeros(cfg.dim), np.ones(cfg.dim)
    return fd


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    """A model folder (model.keras + failure_detector.npz) fitting the synthetic face
    exactly, the face image and its box; and the same model without a failure detector."""
    d = tmp_path_factory.mktemp("shipped")
    img, lm, _ = render_face(11, params=FRONTAL, image_size=(160, 180))
    box = landmark_box(lm)
    shape = CropTransform.from_box(box, img.shape[:2], SIZE).apply(lm).astype(np.float32)
    (d / "with").mkdir()
    (d / "without").mkdir()
    model = constant_shape_model(d / "with" / "model.keras", shape)
    shutil.copy(model, d / "without" / "model.keras")
    _constant_fd(2.0).save(d / "with" / pretrained.FAILURE_DETECTOR_FILE)
    return {"with": model, "without": d / "without" / "model.keras", "img": img,
            "box": box, "lm": lm}


def test_failure_detector_for_finds_the_file_beside_the_model(face_model, tmp_path):
    assert pretrained.failure_detector_for(face_model["with"]) == \
        face_model["with"].parent / "failure_detector.npz"
    assert pretrained.failure_detector_for(face_model["without"]) is None
    assert pretrained.failure_detector_for(tmp_path) is None           # a folder
    assert pretrained.failure_detector_for(None) is None
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"")
    assert pretrained.failure_detector_for(tfl) is None
    shutil.copy(face_model["with"].parent / "failure_detector.npz", tmp_path)
    assert pretrained.failure_detector_for(tfl) == tmp_path / "failure_detector.npz"


def test_shipped_models_carry_a_loadable_failure_detector():
    """Every shipped model present in this installation has its failure detector (package
    data), trained on real faces with that model."""
    assert pretrained.available(), "no shipped model in this installation"
    for name in pretrained.available():
        path = pretrained.failure_detector_for(name)
        assert path is not None and path.stat().st_size < 200_000, name
        fd = FailureDetector.load(path)
        assert fd.info["n_train_images"] > 1000 and fd.info["model"] == name
        assert fd.info["heldout"]["model_fits"]["accuracy"] > 0.9


def test_as_failure_detector_specs(face_model):
    fd = failure_detector_from_spec("auto", face_model["with"])
    assert isinstance(fd, FailureDetector) and fd.source.endswith("failure_detector.npz")
    assert failure_detector_from_spec("auto", face_model["without"]) is None
    assert failure_detector_from_spec("none", face_model["with"]) is None
    assert failure_detector_from_spec(None, face_model["with"]) is None
    path = face_model["with"].parent / "failure_detector.npz"
    assert failure_detector_from_spec(str(path)).source == str(path)


def test_predict_scores_fits_with_the_failure_detector_beside_the_model(face_model):
    img, box = face_model["img"], face_model["box"]
    face = load(face_model["with"], detector=None).predict(img, boxes=box)[0].faces[0]
    assert face.fit_score == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert json.loads(json.dumps(face.to_dict()))["fit_score"] == pytest.approx(0.8808, abs=1e-4)
    for kw in ({}, {"failure_detector": None}):  # no file beside it / switched off
        model = face_model["without"] if not kw else face_model["with"]
        face = load(model, detector=None, **kw).predict(img, boxes=box)[0].faces[0]
        assert face.fit_score is None and face.to_dict()["fit_score"] is None
    np.testing.assert_allclose(face.landmarks, face_model["lm"], atol=1e-3)


def test_tracker_uses_the_shipped_failure_detector_by_default(face_model, tmp_path):
    img, box = face_model["img"], face_model["box"]
    pred = load(face_model["with"], detector=None)
    tr = Tracker(pred, detect.FixedBoxes(box))
    assert isinstance(tr.fd, FailureDetector) and tr.threshold == 0.5
    rec = tr.step(img)
    assert rec.status == "re-detected" and rec.score == pytest.approx(0.8808, abs=1e-4)
    assert Tracker(pred, detect.FixedBoxes(box), failure_detector=None).fd is None
    assert Tracker(load(face_model["without"], detector=None), None).fd is None
    # a detector file that rejects every fit: the face is never reported
    bad = tmp_path / "model.keras"
    shutil.copy(face_model["with"], bad)
    _constant_fd(-2.0).save(tmp_path / "failure_detector.npz")
    tr = Tracker(load(bad, detector=None), detect.FixedBoxes(box))
    recs = [tr.step(img) for _ in range(3)]
    assert [r.status for r in recs] == ["lost"] * 3
    assert all("failure score" in r.failure for r in recs)


def test_make_canvas_places_the_face_and_can_hide_it():
    img, lm, _ = render_face(3, params=FRONTAL, image_size=(160, 180))
    canvas, lm2 = dev.make_canvas(img, lm, [0, 1])
    assert canvas.shape == (480, 640, 3) and canvas.dtype == np.uint8
    b = landmark_box(lm2)
    assert 63 <= b[2] - b[0] <= 193 and b[0] >= 0 and b[2] <= 640 and b[3] <= 480
    hidden, lm3 = dev.make_canvas(img, lm, [0, 1], hide_face=True)
    np.testing.assert_allclose(lm3, lm2)
    x0, y0, x1, y1 = (int(v) for v in b)
    inside = np.abs(hidden[y0:y1, x0:x1].astype(int) - canvas[y0:y1, x0:x1]).mean()
    outside = np.abs(hidden[:, :max(1, x0 - 40)].astype(int)
                     - canvas[:, :max(1, x0 - 40)]).mean() if x0 > 40 else 0.0
    assert inside > 3 and outside < 0.5
    assert dev.iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert dev.matches([10, 10, 30, 30], [0, 0, 40, 40]) and not dev.matches(
        [50, 50, 60, 60], [0, 0, 40, 40])


class _LandmarkOracle:
    """Finds the face of a canvas when told its landmarks (the canvases are seeded)."""

    def __init__(self):
        self.boxes = []

    def __call__(self, image):
        return np.asarray(self.boxes.pop(0), np.float64)[None]


def test_detector_table_and_frame_costs(tmp_path):
    make_300w(tmp_path, n_per_folder=2)
    from fadenn_tf.data.datasets import open_dataset
    samples, _ = open_dataset(tmp_path, split="train")
    oracle = _LandmarkOracle()
    oracle.boxes = [landmark_box(lm) for _, lm in dev.canvases(samples, 2)]
    row = dev.detector_table(oracle, samples)
    assert row["n"] == len(samples) and row["rate"] == 1.0
    assert row["mean_iou"] == pytest.approx(1.0) and row["nme_ratio"] is None
    nothing = dev.detector_table(lambda img: detect.empty_boxes(), samples)
    assert nothing["rate"] == 0.0 and nothing["mean_iou"] is None
    faces, empty = dev.cost_frames(samples, 3)
    assert len(faces) == len(empty) == 3 and faces[0].shape == (360, 640, 3)
    c = dev.frame_costs(lambda img: detect.empty_boxes(), faces, empty)
    assert c["ms_face"] >= 0 and c["cpu_ms_no_face"] >= 0 and c["hits_no_face"] == 0


def test_bench_detect_rows(tmp_path, monkeypatch):
    make_300w(tmp_path / "data", n_per_folder=4)
    detect.register_detector("everything", lambda: (lambda img: np.array(
        [[0.0, 0.0, img.shape[1], img.shape[0]]])), overwrite=True)
    rows = api_speed.bench_detect(tmp_path / "data", ("everything",), n_frames=2)
    (row,) = rows
    assert row["section"] == "detect" and row["model"] == "detector everything"
    assert row["rate"] == 0.0 and row["hits_no_face"] == 2 and row["latency_ms_b1"] >= 0
    assert "held-out" in row["path"] and "found 0.0%" in row["note"]
    md = report.format_markdown({"machine": machine.machine_info(), "rows": rows, "peak": None,
                                "settings": {"repeats": 1, "data": "x", "infer_batch": 1}})
    assert "| detect |" in md


def test_shipped_names_resolve_given_as_paths():
    """load_litert passes the name as a Path (fadenn_tf.load("pretrained-fll",
    backend="litert") used to fail with a KeyError)."""
    from pathlib import Path
    for name in pretrained.available():
        assert pretrained.resolve(Path(name)) == pretrained.resolve(name)
        assert pretrained.failure_detector_for(Path(name)) is not None


def test_predict_cli_reports_fit_scores_and_the_failure_detector(face_model, tmp_path):
    from fadenn_tf.cli.predict import main
    from fixtures import write_image
    write_image(tmp_path / "in" / "a.png", face_model["img"])
    box = ",".join(f"{v:.3f}" for v in face_model["box"])
    (tmp_path / "boxes.csv").write_text(f"a.png,{box}\n")
    for flag, expect in ((), True), (("--failure-detector", "none"), False):
        out = tmp_path / ("out" + "".join(flag))
        assert main([str(tmp_path / "in"), "--model", str(face_model["with"]), "--out",
                     str(out), "--boxes", str(tmp_path / "boxes.csv"), "--no-overlay",
                     "--no-progress", *flag]) == 0
        summary = json.loads((out / "summary.json").read_text())
        face = summary["images"][0]["faces"][0]
        if expect:
            assert summary["failure_detector"].endswith("failure_detector.npz")
            assert face["fit_score"] == pytest.approx(0.8808, abs=1e-4)
        else:
            assert summary["failure_detector"] is None and face["fit_score"] is None


def test_litert_int8_backend_and_tracker_backend(face_model):
    """backend="litert-int8" converts with int8 weights (dynamic range) and fits like the
    Keras model; the tracker takes the backend by name."""
    from fadenn_tf.tracking.tracker import _as_predictor
    img, box = face_model["img"], face_model["box"]
    pred = load(face_model["with"], detector=None, backend="litert-int8")
    assert pred.model.kind == "litert" and pred.failure_detector is not None
    face = pred.predict(img, boxes=box)[0].faces[0]
    np.testing.assert_allclose(face.landmarks, face_model["lm"], atol=0.05)
    tr = _as_predictor(face_model["with"], backend="litert-int8")
    assert tr.model.kind == "litert" and tr.failure_detector is None
    with pytest.raises(ValueError, match="backend"):
        load(face_model["with"], backend="tflite")
