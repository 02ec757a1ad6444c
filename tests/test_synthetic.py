"""The built-in synthetic face dataset: renderer, layouts, determinism, cache, CLI."""
import hashlib
import os

import cv2
import numpy as np
import pytest

from fadenn_tf.data import cache
from fadenn_tf.data.datasets import index_300vw, index_300w
from fadenn_tf.data.pts import read_pts
from fadenn_tf.data.synthetic import (SynthSpec, draw_sample, flip_landmarks,
                                      generate_dataset, merge_params, mirror_params,
                                      render_face, sample_params)
from fadenn_tf.data.synthetic.video import render_video
from fadenn_tf.errors import DataError

TINY = dict(n_train=4, n_test=4, n_videos=1, n_frames=6, image_size=(120, 110),
            frame_size=(96, 128))
CLEAN = {"occluders": [], "others": [],
         "post": {"blur": 0.0, "noise": 0.0, "jpeg_quality": None, "gain": 1.0,
                  "contrast": 1.0, "cast": [1.0, 1.0, 1.0]},
         "appearance": {"light_strength": 0.15, "ambient": 0.95},
         "expression": {"eye_open": 1.0, "gaze": [0.0, 0.0]}}


def _digest(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def _lum(img, pts):
    xi = np.clip(np.round(pts[:, 0]).astype(int), 0, img.shape[1] - 1)
    yi = np.clip(np.round(pts[:, 1]).astype(int), 0, img.shape[0] - 1)
    return img[yi, xi].astype(np.float64)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_dataset(tmp_path / "a", SynthSpec(seed=5, **TINY))
    b = generate_dataset(tmp_path / "b", SynthSpec(seed=5, **TINY), workers=2)
    c = generate_dataset(tmp_path / "c", SynthSpec(seed=6, **TINY))
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) > 20 and da == db
    assert da.keys() == dc.keys()
    assert sum(da[k] != dc[k] for k in da) > len(da) // 2
    img1, lm1, _ = render_face(11)
    img2, lm2, _ = render_face(11)
    assert np.array_equal(img1, img2) and np.array_equal(lm1, lm2)


def test_layout_reads_back_through_the_indexers(tmp_path):
    root = generate_dataset(tmp_path / "d", SynthSpec(n_train=7, n_test=10, n_videos=2,
                                                      n_frames=5, seed=1, image_size=(100, 90),
                                                      frame_size=(96, 128)))
    train, rep = index_300w(root / "300w", "train")
    assert len(train) == 7 and not rep.skipped
    assert {s.subset for s in train} == {"afw", "helen/trainset", "lfpw/trainset"}
    common, _ = index_300w(root / "300w", "common")
    ibug, _ = index_300w(root / "300w", "challenging")
    assert len(common) + len(ibug) == 10 and len(ibug) >= 1
    assert any(s.image_path.endswith(".png") for s in train)   # lfpw is png, as in 300-W
    s = train[0]
    assert np.allclose(read_pts(s.pts_path), s.landmarks)
    frames, rep = index_300vw(root / "300vw", category=3)
    assert len(frames) == 10 and {f.subset for f in frames} == {"410", "411"}
    cap = cv2.VideoCapture(str(root / "300vw" / "410" / "vid.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5
    assert (root / "README.txt").read_text().count("NOT a model for real faces") == 1
    assert (root / "manifest.json").is_file()


def test_landmarks_inside_image_and_box_sizes():
    for i in range(40):
        img, lm, _ = render_face(i, split="ibug" if i % 2 else "train")
        h, w = img.shape[:2]
        assert 200 <= h <= 500 and 200 <= w <= 500
        assert (lm >= 0).all() and (lm[:, 0] <= w - 1).all() and (lm[:, 1] <= h - 1).all()
        assert 40 <= np.ptp(lm, axis=0).max() <= 260


def test_pixels_agree_with_landmarks():
    """Eye points and pupils are dark, lip bodies lip-coloured, cheeks skin-coloured."""
    ok_eye = ok_iris = ok_lip = ok_skin = 0
    n = 24
    for i in range(n):
        img, lm, meta = render_face(100 + i, params=CLEAN, image_size=256)
        skin_pts = np.stack([(lm[31] + lm[3]) / 2, (lm[35] + lm[13]) / 2, (lm[29] + lm[40]) / 2])
        skin = _lum(img, skin_pts).mean(axis=0)
        eye = _lum(img, lm[36:48]).mean(axis=0)
        iris = _lum(img, meta["iris_centers"]).mean(axis=0)
        lip_body = np.stack([(lm[50] + lm[61]) / 2, (lm[51] + lm[62]) / 2, (lm[52] + lm[63]) / 2,
                             (lm[56] + lm[65]) / 2, (lm[57] + lm[66]) / 2, (lm[58] + lm[67]) / 2])
        lips = _lum(img, lip_body)
        lip_ref, skin_ref = np.asarray(meta["lip"]), np.asarray(meta["skin"])
        bg = _lum(img, np.array([[2, 2], [253, 2], [2, 253], [253, 253]])).mean(axis=0)
        ok_eye += eye.sum() < 0.85 * skin.sum()
        ok_iris += iris.sum() < 0.6 * skin.sum()
        # hue test: lip pixels are redder (R - G) relative to their brightness than skin
        red = lambda c: (c[..., 0] - c[..., 1]) / (c.sum(axis=-1) + 1)
        ok_lip += np.mean(red(lips) > red(skin)) >= 5 / 6 and red(lip_ref) > red(skin_ref)
        ok_skin += np.abs(skin / skin.sum() - skin_ref / skin_ref.sum()).sum() < \
            np.abs(bg / bg.sum() - skin_ref / skin_ref.sum()).sum() + 0.02
    assert ok_eye >= n - 1 and ok_iris >= n - 1 and ok_lip >= n - 2 and ok_skin >= n - 3, \
        (ok_eye, ok_iris, ok_lip, ok_skin)


def test_mirrored_pose_gives_flipped_landmarks():
    for i in range(30):
        p = sample_params(np.random.default_rng(i), "ibug" if i % 2 else "train", (240, 200))
        _, lm, _ = draw_sample(p)
        _, lm_m, _ = draw_sample(mirror_params(p))
        assert np.abs(flip_landmarks(lm, 200) - lm_m).max() < 1e-6
    # frontal face: subject's right eye (36) and jaw point 0 on the image left
    _, lm, _ = render_face(0, {"pose": {"yaw": 0, "pitch": 0, "roll": 0}})
    assert lm[36, 0] < lm[45, 0] and lm[0, 0] < lm[16, 0] and lm[17, 0] < lm[26, 0]
    assert lm[48, 0] < lm[54, 0] and lm[39, 0] < lm[42, 0] and lm[8, 1] > lm[30, 1]


def test_pose_range_and_jaw_marching():
    rng = np.random.default_rng(0)
    poses = np.array([[p["pose"][k] for k in ("yaw", "pitch", "roll")]
                      for p in (sample_params(rng, s, 64) for s in ["train", "ibug"] * 300)])
    assert poses[:, 0].max() >= 50 and poses[:, 0].min() <= -50
    assert np.abs(poses[:, 1]).max() >= 24 and np.abs(poses[:, 2]).max() >= 33
    assert np.abs(poses).max(axis=0).tolist() <= [60, 25, 35]
    _, lm0, m0 = render_face(3, {"pose": {"yaw": 0, "pitch": 0, "roll": 0}})
    _, lm1, m1 = render_face(3, {"pose": {"yaw": 55, "pitch": 0, "roll": 0}})
    assert m0["visible_jaw"].all()
    moved = ~m1["visible_jaw"]
    # jaw points moved onto the silhouette of one side only; nose tip moves off-centre
    assert moved.sum() >= 4 and (moved[:8].all() ^ moved[9:].all()) and (moved[:8].any() != moved[9:].any())
    c1 = (lm1[0, 0] + lm1[16, 0]) / 2
    assert abs(lm1[30, 0] - c1) > 0.15 * np.ptp(lm1[:, 0])


def test_video_frames_are_smooth():
    frames = list(render_video(np.random.default_rng(4), 40, (120, 160)))
    lms = np.stack([lm for _, lm in frames])
    size = np.ptp(lms, axis=1).max(axis=1)
    step = np.linalg.norm(np.diff(lms, axis=0), axis=2).mean(axis=1) / size[1:]
    assert step.max() < 0.05 and step.mean() < 0.02
    total = np.linalg.norm(lms[-1] - lms[0], axis=1).mean() / size[0]
    assert np.linalg.norm(lms - lms[0], axis=2).mean(axis=1).max() / size[0] > 0.05 or total > 0.05
    assert frames[0][0].shape == (120, 160, 3)


def test_cache_generated_once_and_respects_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("FADENN_DATA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_dataset_dir() == tmp_path / "xdg" / "fadenn_tf" / "synthetic-v1"
    monkeypatch.setattr(cache, "DEFAULT_COUNTS",
                        {"n_train": 3, "n_test": 3, "n_videos": 1, "n_frames": 3})
    root = cache.ensure_default_dataset(progress=False)
    assert root == cache.default_dataset_dir() and (root / "manifest.json").is_file()
    t0 = (root / "manifest.json").stat().st_mtime_ns
    assert cache.ensure_default_dataset(progress=False) == root
    assert (root / "manifest.json").stat().st_mtime_ns == t0
    assert cache.resolve_data(None) == root / "300w"
    assert cache.resolve_data("synthetic", kind="300vw") == root / "300vw"
    assert len(index_300w(cache.resolve_data(None), "train")[0]) == 3
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(DataError):
        cache.resolve_data(tmp_path / "nowhere")
    assert cache.resolve_data(tmp_path) == tmp_path
    half = tmp_path / "half"
    half.mkdir()
    monkeypatch.setenv("FADENN_DATA_CACHE", str(half))
    assert cache.default_dataset_dir() == half
    with pytest.raises(DataError):
        cache.ensure_default_dataset(progress=False)


def test_cli_generates_and_benchmarks(tmp_path, capsys):
    from fadenn_tf.data.synthetic.rendering import render_speed as bench
    from fadenn_tf.synth import main
    assert main(["--out", str(tmp_path / "o"), "--train", "3", "--test", "3", "--videos", "0",
                 "--size", "96x80"]) == 0
    assert len(index_300w(tmp_path / "o" / "300w", "train")[0]) == 3
    assert main(["--out", str(tmp_path / "o"), "--train", "3", "--test", "3"]) == 2  # exists
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "300w" in capsys.readouterr().out
    assert bench(64, n=5) > 0


@pytest.mark.slow
def test_small_regressor_beats_mean_shape(tmp_path):
    import keras
    from fadenn_tf.data.crop import CropTransform, crop_image, landmark_box
    from fadenn_tf.metrics import nme
    root = generate_dataset(tmp_path / "r", SynthSpec(n_train=800, n_test=150, n_videos=0,
                                                      seed=2, image_size=128))
    size = 64

    def load(split):
        xs, ys, ts, gts = [], [], [], []
        for s in index_300w(root / "300w", split)[0]:
            img = cv2.cvtColor(cv2.imread(s.image_path), cv2.COLOR_BGR2RGB)
            t = CropTransform.from_box(landmark_box(s.landmarks), img.shape[:2], size)
            xs.append(crop_image(img, t))
            ys.append(t.apply(s.landmarks))
            ts.append(t)
            gts.append(s.landmarks)
        x = np.stack(xs).astype(np.float32) / 127.5 - 1
        return x, np.stack(ys), ts, np.stack(gts)

    xtr, ytr, _, _ = load("train")
    xte, _, tte, gte = load("test")
    mean_shape = ytr.mean(axis=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((size, size, 3))] + [
        layer for f in (16, 32, 64, 96) for layer in
        (keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu"),)] + [
        keras.layers.Flatten(), keras.layers.Dense(136)])
    model.compile(keras.optimizers.Adam(2e-3), "mse")
    target = ((ytr - mean_shape) / size).reshape(len(ytr), -1).astype(np.float32)
    model.fit(xtr, target, batch_size=32, epochs=20, verbose=0)   # 25 steps/epoch: 500 steps
    pred = model.predict(xte, verbose=0).reshape(-1, 68, 2) * size + mean_shape
    pred_img = np.stack([t.invert(p) for t, p in zip(tte, pred)])
    base_img = np.stack([t.invert(mean_shape) for t in tte])
    nme_net = float(np.mean(nme(pred_img, gte, "diagonal")))
    nme_mean = float(np.mean(nme(base_img, gte, "diagonal")))
    print(f"synthetic test split, NME (diagonal): mean shape {nme_mean:.4f}, "
          f"tiny conv net {nme_net:.4f}")
    assert nme_net < 0.75 * nme_mean
