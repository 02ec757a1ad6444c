"""The LiteRT copies shipped with the pretrained models (fadenn_tf.pretrained, litert-int8/):
fadenn_tf.load(name) runs them by default without importing TensorFlow, they agree with
the shipped Keras models, and the faces of a photo go through one invoke per part with the
same results as one face at a time. Fits that are not faces (fit_score below
min_fit_score) come back rejected, in the API and in the predict command's files."""
import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf import pretrained
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import open_dataset
from fadenn_tf.data.images import read_image
from fadenn_tf.fitcheck.detector import DEFAULT_MIN_FIT_SCORE

SHIPPED = [n for n in pretrained.available() if pretrained.litert_path(n) is not None]
RED = np.array([235, 40, 40])


def test_both_shipped_models_have_a_litert_copy():
    assert SHIPPED == list(pretrained.NAMES), "run experiments/ship_pretrained.py --litert"


@pytest.fixture(scope="module")
def face():
    """(RGB image, its 68 landmarks, their box) of a built-in synthetic test face."""
    samples, _ = open_dataset(resolve_data(None), split="test")
    s = samples[0]
    return read_image(s.image_path), np.asarray(s.landmarks), landmark_box(s.landmarks)


def _corner_box(box):
    """A box half the face's width in the image's top-left corner: no face there."""
    w = 0.5 * (box[2] - box[0])
    return np.array([2.0, 2.0, 2.0 + w, 2.0 + w])


@pytest.mark.parametrize("name", SHIPPED)
def test_default_load_and_predict_import_no_tensorflow(name, face, tmp_path):
    image, _, box = face
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    code = (
        "import json, sys\n"
        "import cv2, fadenn_tf\n"
        f"m = fadenn_tf.load({name!r})\n"
        "img = cv2.imread(sys.argv[1])\n"
        "r = m.predict(img, boxes=json.loads(sys.argv[2]), color='bgr')[0]\n"
        "faces = [f.to_dict() for f in r.faces + r.rejected]\n"
        "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in "
        "sys.modules, 'kind': m.model.kind, 'faces': faces}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path), json.dumps(box.tolist())],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tf"] is False and got["keras"] is False
    assert got["kind"] in ("litert-routed", "litert")
    (f,) = got["faces"]
    assert f["fit_score"] is not None and f["detector_score"] is None
    assert np.isfinite(np.asarray(f["landmarks"])).all()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_copy_was_made_from_the_shipped_keras_file(name):
    """shipped.json names the .keras file's sha256 and a parity within the limits."""
    info = json.loads((pretrained.litert_dir(name) / pretrained.SHIPPED_JSON).read_text())
    digest = hashlib.sha256(pretrained.resolve(name).read_bytes()).hexdigest()
    assert info["source_sha256"] == digest, "model.keras changed: regenerate the LiteRT copy"
    assert info["variant"] == "dynamic_int8" and info["parity"]["n_crops"] >= 100
    assert info["parity"]["mean_px"] < 0.5 and info["parity"]["max_px"] < 4.0


@pytest.mark.slow   # loads the Keras model: 12-28 s on a loaded 2-core machine
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_copy_matches_its_keras_model(name, face):
    """The same landmarks as the Keras model on synthetic crops, clean and blurred: int8
    weights move them by at most 4 crop px, 0.5 px on average."""
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.inference import load_any, load_litert
    keras_model, lite = load_any(name), load_litert(pretrained.litert_path(name))
    samples, _ = open_dataset(resolve_data(None), split="test")
    clean = load_eval_data(samples[:6], keras_model.size).images.astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(c, (0, 0), 3.0) for c in clean])
    crops = np.concatenate([clean, blurred])
    a, b = keras_model.predict_crops(crops), lite.predict_crops(crops)
    d = np.linalg.norm(a["landmarks"] - b["landmarks"], axis=-1)
    assert d.mean() < 0.5 and d.max() < 4.0, (d.mean(), d.max())
    if a["noise_probs"] is not None and b["noise_probs"] is not None:
        agree = np.mean(a["noise_probs"].argmax(1) == b["noise_probs"].argmax(1))
        assert agree >= 10 / 12


class _Counting:
    """Wraps a runner and counts its calls (the model itself runs unchanged)."""

    def __init__(self, run):
        self.run, self.calls = run, 0

    def __call__(self, x):
        self.calls += 1
        return self.run(x)

    def __getattr__(self, name):
        return getattr(self.run, name)


@pytest.mark.parametrize("name", SHIPPED)
def test_faces_of_a_photo_run_in_one_invoke_with_per_face_results(name, face):
    image, _, box = face
    w = box[2] - box[0]
    boxes = np.stack([box, box + [0.08 * w, -0.05 * w, 0.12 * w, 0.02 * w],
                      box + [-0.1 * w, 0.05 * w, -0.05 * w, 0.0]])
    pred = fadenn_tf.load(name, detector=None, min_fit_score=0)
    one = [pred.predict(image, boxes=b)[0].faces[0] for b in boxes]
    m = pred.model
    if m.kind == "litert-routed":
        counter = m.parts.runners["landmarks"] = _Counting(m.parts.runners["landmarks"])
    else:
        counter = m._run = _Counting(m._run)
    many = pred.predict(image, boxes=boxes)[0].faces
    assert counter.calls == 1
    assert len(many) == len(one) == 3
    for a, b in zip(one, many):
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
        assert a.noise_class == b.noise_class
        assert a.fit_score == pytest.approx(b.fit_score, abs=1e-4)


def test_routed_batch_groups_crops_by_expert_with_per_crop_results():
    """Clean, blurred and darkened crops in one call: one classify and one landmarks
    invoke, one invoke per expert needed, the same outputs as one crop at a time."""
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.inference import load_litert
    model = load_litert(pretrained.litert_path("pretrained"))
    samples, _ = open_dataset(resolve_data(None), split="test")
    clean = load_eval_data(samples[:3], model.size).images.astype(np.float32)
    crops = np.concatenate([clean, np.stack([cv2.GaussianBlur(c, (0, 0), 4.0) for c in clean]),
                            clean * 0.2])
    single = [model(crops[i:i + 1]) for i in range(len(crops))]
    counters = {k: _Counting(r) for k, r in model.parts.runners.items()}
    model.parts.runners.update(counters)
    batch = model(crops)
    classes = batch["noise_probs"].argmax(1)
    assert len(set(classes.tolist())) >= 2, classes
    assert counters["classify"].calls == counters["landmarks"].calls == 1
    for k in range(1, 5):
        assert counters[f"expert_{k}"].calls == int(k in classes)
    for i, one in enumerate(single):
        np.testing.assert_allclose(batch["landmarks"][i], one["landmarks"][0], atol=1e-3)
        np.testing.assert_allclose(batch["denoised"][i], one["denoised"][0], atol=1e-2)
        assert classes[i] == one["noise_probs"].argmax(1)[0]


def test_fits_below_the_floor_are_rejected_not_faces(face):
    image, _, box = face
    pred = fadenn_tf.load("pretrained", detector=None)
    assert pred.min_fit_score == DEFAULT_MIN_FIT_SCORE
    r = pred.predict(image, boxes=[box, _corner_box(box)])[0]
    assert len(r.faces) == 1 and len(r.rejected) == 1
    assert r.faces[0].status == "ok" and r.faces[0].fit_score >= DEFAULT_MIN_FIT_SCORE
    bad = r.rejected[0]
    assert bad.status == "rejected" and bad.fit_score < DEFAULT_MIN_FIT_SCORE
    assert bad.to_dict(landmarks=False)["status"] == "rejected"
    np.testing.assert_allclose(r.landmarks, r.faces[0].landmarks)
    kept = pred.predict(image, boxes=[box, _corner_box(box)], min_fit_score=0)[0]
    assert len(kept.faces) == 2 and not kept.rejected
    with pytest.raises(ValueError, match="min_fit_score"):
        pred.predict(image, boxes=[box], min_fit_score=1.5)


class _ScoredBoxes:
    """A detector giving fixed boxes with scores, the way UltraFace reports them (`last_scores`
    after each call)."""

    def __init__(self, boxes, scores):
        self.boxes, self.scores = np.asarray(boxes), np.asarray(scores)

    def __call__(self, image):
        self.last_scores = self.scores
        return self.boxes


def test_detector_scores_reach_every_face_and_given_boxes_have_none(face):
    image, _, box = face
    det = _ScoredBoxes([box, _corner_box(box)], [0.97, 0.61])
    pred = fadenn_tf.load("pretrained-fll", detector=det, min_fit_score=0)
    r = pred.predict(image, all_faces=True)[0]
    assert [f.detector_score for f in r.faces] == [0.97, 0.61]
    assert pred.predict(image)[0].faces[0].detector_score == 0.97   # largest only
    assert pred.predict(image, boxes=box)[0].faces[0].detector_score is None
    assert fadenn_tf.load("pretrained-fll", detector=lambda img: det.boxes).predict(
        image)[0].faces[0].detector_score is None                     # a detector without


def _red_on_border(overlay_rgb, box):
    """Pixels close to the overlay's red along the right edge of `box`."""
    x = int(round(box[2] - 1))
    band = overlay_rgb[int(box[1]) + 6:int(box[3]) - 6, max(0, x - 2):x + 3].astype(int)
    return int((np.abs(band - RED).max(axis=-1) < 40).sum())


def test_cli_reports_draws_and_drops_rejected_fits(face, tmp_path):
    from fadenn_tf.predict import main
    image, _, box = face
    corner = _corner_box(box)
    img_path = tmp_path / "in" / "photo.png"
    img_path.parent.mkdir()
    cv2.imwrite(str(img_path), image[:, :, ::-1])
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"photo.png": [box.tolist(), corner.tolist()]}))
    runs = {}
    for tag, extra in (("kept", []), ("dropped", ["--drop-rejected"])):
        out = tmp_path / tag
        rc = main([str(img_path), "--model", "pretrained", "--out", str(out), "--boxes",
                   str(boxes), "--no-progress"] + extra)
        assert rc == 0
        runs[tag] = (out, json.loads((out / "summary.json").read_text()))
    out, summary = runs["kept"]
    entry = summary["images"][0]
    assert summary["backend"] == "auto" and summary["min_fit_score"] == DEFAULT_MIN_FIT_SCORE
    assert summary["n_faces"] == 1 and summary["n_rejected"] == 1
    assert entry["status"] == "ok" and entry["n_faces"] == 1 and entry["n_rejected"] == 1
    assert [f["status"] for f in entry["faces"]] == ["ok", "rejected"]
    assert (out / "photo.pts").is_file() and (out / "photo_rejected.pts").is_file()
    drawn = cv2.imread(str(out / "photo_overlay.png"))[:, :, ::-1]
    assert _red_on_border(drawn, corner) > 0.5 * (corner[3] - corner[1])

    out, summary = runs["dropped"]
    entry = summary["images"][0]
    assert summary["drop_rejected"] is True and summary["n_rejected"] == 1
    assert [f["status"] for f in entry["faces"]] == ["ok"]
    assert not (out / "photo_rejected.pts").exists()
    drawn = cv2.imread(str(out / "photo_overlay.png"))[:, :, ::-1]
    assert _red_on_border(drawn, corner) <= _red_on_border(image, corner)

    boxes.write_text(json.dumps({"photo.png": corner.tolist()}))   # only the false face
    out = tmp_path / "only-rejected"
    rc = main([str(img_path), "--model", "pretrained", "--out", str(out), "--boxes",
               str(boxes), "--no-progress"])
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 1, "a rejected fit is not a found face"
    assert summary["images"][0]["status"] == "rejected" and summary["n_only_rejected"] == 1
