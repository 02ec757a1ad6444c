"""Tracking fitting-failure detector: features, logistic regression, training, persistence, CLI."""
import re

import cv2
import numpy as np
import pytest

from fadenn_tf.data.synthetic import render_face
from fadenn_tf.errors import DataError
from fadenn_tf.fitcheck import detector as fd
from fadenn_tf.fitcheck import examples, features

from fixtures import make_folder


def _faces(seeds, size=128):
    return [render_face(int(s), image_size=size)[:2] for s in seeds]


@pytest.fixture(scope="module")
def trained():
    train = _faces(range(60))
    return examples.train_failure_detector(train, seed=0)


def test_heldout_accuracy_on_synthetic_faces(trained):
    held = _faces(range(5000, 5030))
    res = examples.evaluate_failure_detector(trained, held, seed=7)
    assert res["n_good"] == 60 and res["n_failure"] > 60
    assert res["accuracy"] > 0.9
    assert res["good_recall"] > 0.85 and res["failure_recall"] > 0.85


def test_scores_rank_true_fit_above_displaced_fit(trained):
    better = 0
    faces = _faces(range(6000, 6010))
    for img, lm in faces:
        diag = np.hypot(*(lm.max(0) - lm.min(0)))
        good = trained.score(img, lm)
        shifted = trained.score(img, lm + [0.4 * diag, 0.0])
        assert 0.0 <= good <= 1.0 and 0.0 <= shifted <= 1.0
        better += good > shifted
    assert better >= 9
    img, lm = faces[0]
    assert trained.is_failure(img, lm + [0.0, 0.5 * np.hypot(*(lm.max(0) - lm.min(0)))])


def test_save_load_round_trip_gives_identical_probabilities(trained, tmp_path):
    path = tmp_path / "fd.npz"
    trained.save(path)
    loaded = fd.FailureDetector.load(path)
    X, _ = examples.make_training_set(_faces(range(7000, 7004)), 3)
    np.testing.assert_array_equal(loaded.predict_proba(X), trained.predict_proba(X))
    assert loaded.feature_config == trained.feature_config
    assert loaded.threshold == trained.threshold
    assert [p.name for p in tmp_path.iterdir()] == ["fd.npz"]  # no temporary left behind


def test_load_errors_name_the_file(tmp_path, trained):
    with pytest.raises(DataError, match="not found"):
        fd.FailureDetector.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a numpy file")
    with pytest.raises(DataError, match="junk.npz"):
        fd.FailureDetector.load(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, weights=np.zeros(3))
    with pytest.raises(DataError, match="missing"):
        fd.FailureDetector.load(partial)
    # a file whose arrays do not match its feature configuration
    good = tmp_path / "good.npz"
    trained.save(good)
    with np.load(good) as z:
        arrays = dict(z)
    arrays["weights"] = arrays["weights"][:-1]
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(DataError, match="do not match"):
        fd.FailureDetector.load(broken)


def test_features_shape_and_scale_normalisation():
    cfg = features.FeatureConfig()
    img, lm = _faces([11], size=160)[0]
    f = features.extract_features(img, lm, cfg)
    assert f.shape == (cfg.dim,) == (22 * 48,) and f.dtype == np.float32
    assert np.isfinite(f).all()
    big = cv2.resize(img, (320, 320), interpolation=cv2.INTER_LINEAR)
    f_big = features.extract_features(big, (lm + 0.5) * 2 - 0.5, cfg)
    shifted = features.extract_features(img, lm + [15.0, 0.0], cfg)
    same_face = np.corrcoef(f, f_big)[0, 1]
    assert same_face > 0.9
    assert same_face > np.corrcoef(f, shifted)[0, 1] + 0.1
    # landmarks entirely outside the image still give finite features
    assert np.isfinite(features.extract_features(img, lm + 1000.0, cfg)).all()
    with pytest.raises(ValueError):
        features.extract_features(img, lm[:10], cfg)


def _descriptor_by_loops(image, lm, cfg):
    """The descriptor of fitcheck.features written out pixel by pixel (no summed-area tables):
    per patch, magnitudes summed per cell and orientation bin, and block means of the part of
    each block inside the canvas."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    canvas, pts = features._canvas(gray, np.asarray(lm, np.float64), cfg)
    gx = cv2.Sobel(canvas, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(canvas, cv2.CV_32F, 0, 1, ksize=1)
    mag, ang = cv2.cartToPolar(gx, gy)
    size, out = canvas.shape[0], []
    m = cfg.patch // 2
    mu, sd = canvas[m:-m, m:-m].mean(), canvas[m:-m, m:-m].std() + 1e-3
    for x, y in pts[list(cfg.points)]:
        x0, y0 = int(np.round(x + 0.5 - m)), int(np.round(y + 0.5 - m))
        hog = np.zeros((cfg.cells, cfg.cells, cfg.bins))
        sums = np.zeros((cfg.pool, cfg.pool))
        count = np.zeros((cfg.pool, cfg.pool))
        for v in range(y0, y0 + cfg.patch):
            for u in range(x0, x0 + cfg.patch):
                if 0 <= v < size and 0 <= u < size:
                    b = int(np.floor((ang[v, u] % np.pi) / (np.pi / cfg.bins))) % cfg.bins
                    c = cfg.patch // cfg.cells
                    hog[(v - y0) // c, (u - x0) // c, b] += mag[v, u]
                    q = cfg.patch // cfg.pool
                    sums[(v - y0) // q, (u - x0) // q] += canvas[v, u]
                    count[(v - y0) // q, (u - x0) // q] += 1
        h = hog.reshape(-1)
        h /= np.sqrt((h ** 2).sum() + 1e-6)
        h = np.minimum(h, 0.2)
        h /= np.sqrt((h ** 2).sum() + 1e-6)
        pooled = np.where(count > 0, sums / np.maximum(count, 1), mu)
        out.append(np.concatenate([h, ((pooled - mu) / sd).reshape(-1)]))
    return np.concatenate(out)


def test_features_equal_the_descriptor_written_by_loops():
    cfg = features.FeatureConfig()
    rng = np.random.default_rng(5)
    for img, lm in _faces([3, 8], size=160):
        for shift in ([0.0, 0.0], [70.0, -60.0]):  # the second puts patches off the image
            noisy = lm + rng.normal(0, 2.0, lm.shape) + shift
            np.testing.assert_allclose(features.extract_features(img, noisy, cfg),
                                       _descriptor_by_loops(img, noisy, cfg), atol=2e-5)


def test_perturbations_respect_nme_bounds():
    rng = np.random.default_rng(0)
    _, lm = _faces([3])[0]
    for _ in range(100):
        assert examples.nme_diag(examples.perturb_good(lm, rng), lm) < examples.POSITIVE_MAX_NME
        bad = examples.perturb_bad(lm, rng, (128, 128))
        assert bad is not None and examples.nme_diag(bad, lm) > examples.NEGATIVE_MIN_NME


def test_logistic_regression_fits_separable_data_and_checks_inputs():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] - 2 * X[:, 3] + 0.3 > 0).astype(int)
    det = fd.FailureDetector(l2=1e-4).fit(X[:300], y[:300])
    acc = np.mean((det.predict_proba(X[300:]) >= 0.5) == y[300:])
    assert acc > 0.95
    assert abs(det.weights[3]) > 5 * abs(det.weights[1])
    assert isinstance(det.predict_proba(X[0]), float)
    with pytest.raises(ValueError, match="both labels"):
        fd.FailureDetector().fit(X, np.ones(400))
    with pytest.raises(ValueError):
        det.predict_proba(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="not fitted"):
        fd.FailureDetector().predict_proba(X)


def test_cli_trains_on_a_folder_dataset(tmp_path, capsys):
    from fadenn_tf.train_failure_detector import main
    root = tmp_path / "faces"
    make_folder(root, n=8, subfolders=("",), size=(120, 120))
    out = tmp_path / "model" / "fd.npz"
    assert main(["--data", str(root), "--split", "all", "--out", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    m = re.search(r"held-out accuracy ([0-9.]+)", printed)
    assert m and float(m.group(1)) > 0.9
    assert str(root) in printed and "split all" in printed
    det = fd.FailureDetector.load(out)
    assert det.info["n_heldout_images"] >= 1 and det.info["seed"] == 1


def test_cli_reports_missing_dataset(tmp_path, capsys):
    from fadenn_tf.train_failure_detector import main
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "nope" in capsys.readouterr().err          # unusable input: exit 2 (EXIT_CODES)
    assert not (tmp_path / "x.npz").exists()


def test_model_fit_set_labels_a_real_models_fits_by_their_error(tmp_path):
    from fadenn_tf.data.crop import CropTransform, landmark_box
    from fadenn_tf.inference.predictor import load
    from test_predict import SIZE, constant_shape_model
    img, lm, _ = render_face(3, params={"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0},
                                        "occluders": [], "others": [], "scale": 25.0,
                                        "center": [200.0, 200.0]}, image_size=(400, 400))
    # a model that is exact in the landmark box: its fits move with the box they get (the
    # face is small and central, so no crop is clipped by the image border)
    shape = CropTransform.from_box(landmark_box(lm), img.shape[:2], SIZE).apply(lm)
    predictor = load(constant_shape_model(tmp_path / "m.keras", shape.astype(np.float32)),
                     detector=None)
    n = 6
    X, y = examples.make_model_fit_set([(img, lm)] * n, predictor, 0,
                                       examples.FitExamples(max_good_nme=0.12))
    assert X.shape == (3 * n, features.FeatureConfig().dim)
    assert (y == 1).sum() == n and (y == 0).sum() == 2 * n   # 1 near box, 2 far boxes
    boxes = examples.model_fit_boxes(lm, np.random.default_rng(1), 1, 2)
    lb = landmark_box(lm)
    near = np.abs((boxes[0, :2] + boxes[0, 2:]) / 2 - (lb[:2] + lb[2:]) / 2)
    assert (near <= 0.08 * (lb[2:] - lb[:2]) + 1e-9).all()
    far = np.hypot(*((boxes[1:, :2] + boxes[1:, 2:]) / 2 - (lb[:2] + lb[2:]) / 2).T)
    assert (far >= 0.35 * min(lb[2:] - lb[:2])).all()
    # the trainer reports the accuracy on such fits of held-out images
    from fadenn_tf.train_failure_detector import main
    root = tmp_path / "faces"
    make_folder(root, n=8, subfolders=("",), size=(120, 120))
    out = tmp_path / "fd.npz"
    assert main(["--data", str(root), "--split", "all", "--out", str(out),
                 "--model", str(tmp_path / "m.keras"), "--good-nme", "0.05"]) == 0
    info = fd.FailureDetector.load(out).info
    assert info["model"] == str(tmp_path / "m.keras") and "model_fits" in info["heldout"]
    assert info["heldout"]["model_fits"]["n_failure"] > 0
    assert info["heldout_split"] == "split_holdout(0.15, seed 0)"
