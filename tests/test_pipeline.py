"""tf.data pipelines on small hand-made face images written to tmp_path."""
import math

import cv2
import numpy as np
import pytest

from fadenn_tf.config import AugmentConfig
from fadenn_tf.data.crop import CropTransform, landmark_box
from fadenn_tf.data.pipeline import (benchmark_pipeline, load_eval_data, load_train_data,
                                     steps_per_epoch)
from fadenn_tf.data.sample import Sample
from fadenn_tf.evaluation.scoring import make_eval_dataset
from fadenn_tf.training.stream import StreamOptions as Opts
from fadenn_tf.training.stream import make_train_dataset

SIZE = 48
NO_AUG = AugmentConfig(rotation_deg=0.0, flip=False, occlusion_prob=0.0, box_jitter=False)


def face_shape(cx, cy, s, rng):
    """A rough 68-point face (0-based pixel centres) of width ~2s centred at (cx, cy);
    the subject's right eye (36-41) on the image's left."""
    p = np.zeros((68, 2))
    t = np.linspace(math.pi * 0.95, math.pi * 0.05, 17)
    p[0:17] = np.c_[cx - s * np.cos(t), cy + s * 0.2 + s * 0.9 * np.sin(t) * 0.9]
    p[17:22] = np.c_[np.linspace(cx - 0.8 * s, cx - 0.2 * s, 5), np.full(5, cy - 0.55 * s)]
    p[22:27] = np.c_[np.linspace(cx + 0.2 * s, cx + 0.8 * s, 5), np.full(5, cy - 0.55 * s)]
    p[27:31] = np.c_[np.full(4, cx), np.linspace(cy - 0.4 * s, cy + 0.1 * s, 4)]
    p[31:36] = np.c_[np.linspace(cx - 0.25 * s, cx + 0.25 * s, 5), np.full(5, cy + 0.2 * s)]
    for base, ex in ((36, cx - 0.45 * s), (42, cx + 0.45 * s)):
        a = np.linspace(0, 2 * math.pi, 6, endpoint=False)
        p[base:base + 6] = np.c_[ex - 0.2 * s * np.cos(a), cy - 0.3 * s + 0.08 * s * np.sin(a)]
    a = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    p[48:60] = np.c_[cx - 0.4 * s * np.cos(a), cy + 0.5 * s + 0.15 * s * np.sin(a)]
    a = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    p[60:68] = np.c_[cx - 0.3 * s * np.cos(a), cy + 0.5 * s + 0.05 * s * np.sin(a)]
    return p + rng.normal(0, 0.02 * s, p.shape)


def dotted_image(h, w, pts, sigma):
    """Black RGB image with a red gaussian dot at point 36 and a green one at point 45."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for ch, k in ((0, 36), (1, 45)):
        x, y = pts[k]
        img[:, :, ch] = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    img[:, :, 2] = 40 + 0.3 * xx                      # some blue texture, no effect on r/g
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_face(folder, name, rng, h=150, w=190):
    s = rng.uniform(22, 30)
    pts = face_shape(rng.uniform(0.4 * w, 0.6 * w), rng.uniform(0.4 * h, 0.6 * h), s, rng)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(dotted_image(h, w, pts, 0.08 * s), cv2.COLOR_RGB2BGR))
    return Sample(image_path=str(path), landmarks=pts, subset="fake")


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    return [write_face(d, f"f{i}", rng) for i in range(10)]


@pytest.fixture(scope="module")
def train_data(samples):
    return load_train_data(samples, SIZE)


def channel_centroid(img, ch):
    g = np.asarray(img, np.float64)[..., ch]
    g = np.where(g > 0.1 * g.max(), g, 0)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def first(ds, k=1):
    return [{key: v.numpy() for key, v in b.items()} for b in ds.take(k)]


def test_train_batch_shapes_dtypes_ranges(train_data):
    b = first(make_train_dataset(train_data, SIZE, 4, Opts(augment=AugmentConfig(), seed=1,
                                                           noise=False)))[0]
    assert b["image"].shape == (4, SIZE, SIZE, 3) and b["image"].dtype == np.float32
    assert b["clean"].shape == (4, SIZE, SIZE, 3)
    assert b["landmarks"].shape == (4, 68, 2) and b["landmarks"].dtype == np.float32
    assert b["noise_type"].dtype == np.int32 and b["noise_level"].shape == (4,)
    for k in ("image", "clean"):
        assert 0.0 <= b[k].min() and b[k].max() <= 255.0 and b[k].std() > 0.05 * 127.5


def test_train_crop_content_matches_landmarks_with_rotation_and_flip(train_data):
    aug = AugmentConfig(rotation_deg=45.0, flip=True, occlusion_prob=0.0, box_jitter=True)
    b = first(make_train_dataset(train_data, SIZE, 16, Opts(augment=aug, seed=3, noise=False)))[0]
    img = b["clean"]
    flips = []
    for im, lm in zip(img, b["landmarks"]):
        red, green = channel_centroid(im, 0), channel_centroid(im, 1)
        # unflipped: red (old 36) at 36, green (old 45) at 45; flipped: swapped
        d_keep = np.linalg.norm(red - lm[36]) + np.linalg.norm(green - lm[45])
        d_flip = np.linalg.norm(red - lm[45]) + np.linalg.norm(green - lm[36])
        assert min(d_keep, d_flip) < 0.3, (d_keep, d_flip)
        flips.append(d_flip < d_keep)
        assert lm[36:42, 0].mean() < lm[42:48, 0].mean()   # right eye stays on the left
    assert any(flips) and not all(flips)


def test_eval_crops_landmarks_inside_and_map_back(samples):
    ev = load_eval_data(samples, SIZE)
    assert ev.problems == [] and len(ev) == len(samples)
    batches = first(make_eval_dataset(ev, SIZE, 4), 3)
    assert [len(b["index"]) for b in batches] == [4, 4, 2]
    for b in batches:
        np.testing.assert_array_equal(b["image"], b["clean"])
        assert (b["noise_type"] == 0).all()
        for im, lm, region, i in zip(b["clean"], b["landmarks"], b["region"], b["index"]):
            # un-jittered 2x crop: the face box fills the middle half of the crop
            assert lm.min() >= SIZE / 4 - 1 and lm.max() <= 3 * SIZE / 4 + 1
            back = CropTransform(region, SIZE).invert(lm)
            np.testing.assert_allclose(back, samples[i].landmarks, atol=2e-3)
            red = channel_centroid(im, 0)
            assert np.linalg.norm(red - lm[36]) < 0.2


def test_eval_uses_sample_box_when_given(samples):
    s = samples[0]
    box = landmark_box(s.landmarks) + [-10, -5, 10, 5]
    ev = load_eval_data([Sample(s.image_path, s.landmarks, box=tuple(box))], SIZE)
    t = CropTransform.from_box(box, (150, 190), SIZE)
    np.testing.assert_allclose(ev.regions[0], t.region)
    np.testing.assert_allclose(ev.landmarks[0], t.apply(s.landmarks), atol=1e-4)


def test_eval_noise_condition_applied_and_reproducible(samples):
    pytest.importorskip("fadenn_tf.noise")
    ev = load_eval_data(samples[:4], SIZE)
    a = first(make_eval_dataset(ev, SIZE, 4, (4, 3), seed=5))[0]
    np.testing.assert_allclose(a["image"], a["clean"] * 0.2, atol=255e-5)
    n1 = first(make_eval_dataset(ev, SIZE, 4, (3, 2), seed=5))[0]["image"]
    n2 = first(make_eval_dataset(ev, SIZE, 4, (3, 2), seed=5))[0]["image"]
    np.testing.assert_array_equal(n1, n2)


def test_determinism_and_seed(train_data):
    kw = dict(augment=AugmentConfig(), noise=False)
    a = first(make_train_dataset(train_data, SIZE, 4, Opts(seed=7, **kw)), 2)
    b = first(make_train_dataset(train_data, SIZE, 4, Opts(seed=7, **kw)), 2)
    c = first(make_train_dataset(train_data, SIZE, 4, Opts(seed=8, **kw)), 2)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert not np.allclose(a[0]["image"], c[0]["image"])


def test_resume_matches_uninterrupted_stream_across_epochs(train_data):
    kw = Opts(augment=AugmentConfig(), noise=False, seed=2)
    stream = first(make_train_dataset(train_data, SIZE, 4, kw), 6)   # 10 samples: 2.4 epochs
    resumed = first(make_train_dataset(train_data, SIZE, 4, kw, start_step=4), 2)
    for x, y in zip(stream[4:], resumed):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_epochs_visit_every_sample_once(train_data):
    ds = make_train_dataset(train_data, SIZE, 5, Opts(augment=NO_AUG, noise=False, seed=4),
                            repeat=False)
    batches = first(ds, 10)
    assert len(batches) == steps_per_epoch(len(train_data), 5) == 2
    idx = np.concatenate([b["index"] for b in batches])
    assert sorted(idx.tolist()) == list(range(10))
    nxt = first(make_train_dataset(train_data, SIZE, 5, Opts(augment=NO_AUG, noise=False, seed=4),
                                   start_step=2, repeat=True), 2)
    idx2 = np.concatenate([b["index"] for b in nxt])
    assert sorted(idx2.tolist()) == list(range(10)) and not np.array_equal(idx, idx2)


def test_shards_are_disjoint_parts_of_the_stream(train_data):
    kw = Opts(augment=NO_AUG, noise=False, seed=9)
    whole = first(make_train_dataset(train_data, SIZE, 5, kw), 2)
    s0 = first(make_train_dataset(train_data, SIZE, 5, kw, shard_index=0, num_shards=2))[0]
    s1 = first(make_train_dataset(train_data, SIZE, 5, kw, shard_index=1, num_shards=2))[0]
    np.testing.assert_array_equal(s0["index"], whole[0]["index"])
    np.testing.assert_array_equal(s1["index"], whole[1]["index"])


def test_unaugmented_train_crop_equals_landmark_box_crop(train_data, samples):
    b = first(make_train_dataset(train_data, SIZE, 10, Opts(augment=NO_AUG, noise=False)))[0]
    for lm, i in zip(b["landmarks"], b["index"]):
        t = CropTransform.from_box(landmark_box(train_data.samples[i].landmarks), (150, 190), SIZE)
        np.testing.assert_allclose(lm, t.apply(train_data.samples[i].landmarks), atol=1e-3)


def test_noise_labels_distribution(train_data):
    pytest.importorskip("fadenn_tf.noise")
    ds = make_train_dataset(train_data, SIZE, 50, Opts(augment=NO_AUG, clean_prob=0.3, seed=1))
    b = first(ds, 4)
    types = np.concatenate([x["noise_type"] for x in b])
    levels = np.concatenate([x["noise_level"] for x in b])
    assert 0.2 < (types == 0).mean() < 0.4
    for t in range(1, 5):
        assert 0.1 < (types == t).mean() < 0.25
    assert set(levels[types > 0].tolist()) == {1, 2, 3} and (levels[types == 0] == 0).all()
    x = b[0]
    for k in range(50):
        same = np.array_equal(x["image"][k], x["clean"][k])
        assert same == (x["noise_type"][k] == 0)


def test_bad_samples_skipped_and_reported(samples, tmp_path):
    good = samples[:3]
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(open(samples[0].image_path, "rb").read()[:200])
    nan_lm = samples[1].landmarks.copy()
    nan_lm[5, 0] = np.nan
    bad = [Sample(str(tmp_path / "missing.png"), samples[0].landmarks),
           Sample(str(trunc), samples[0].landmarks),
           Sample(samples[1].image_path, nan_lm),
           Sample(samples[2].image_path, samples[2].landmarks[:39]),
           Sample(samples[2].image_path, samples[2].landmarks + 1000.0),
           Sample(samples[2].image_path, None)]
    data = load_train_data(good + bad, SIZE)
    assert len(data) == 3
    assert len(data.problems) == 6
    paths = [p for p, _ in data.problems]
    assert str(tmp_path / "missing.png") in paths and str(trunc) in paths
    assert all(problem for _, problem in data.problems)
    ev = load_eval_data(good + bad, SIZE)
    assert len(ev) == 3 and len(ev.problems) == 6
    np.testing.assert_array_equal(ev.indices, [0, 1, 2])
    with pytest.warns(UserWarning, match="6 bad samples"):
        make_train_dataset(good + bad, SIZE, 2, Opts(noise=False))


def test_video_frames_are_read(samples, tmp_path):
    path = tmp_path / "vid.avi"
    frames = [cv2.imread(s.image_path) for s in samples[:3]]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (190, 150))
    if not wr.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for f in frames:
        wr.write(f)
    wr.release()
    vs = [Sample(str(path), samples[i].landmarks, frame=i) for i in (2, 0, 1)]
    ev = load_eval_data(vs + [Sample(str(path), samples[0].landmarks, frame=9)], SIZE)
    assert len(ev) == 3 and len(ev.problems) == 1 and "frame 9" in ev.problems[0][0]
    for k in range(3):
        red = channel_centroid(ev.images[k].astype(np.float64), 0)
        assert np.linalg.norm(red - ev.landmarks[k][36]) < 1.0      # JPEG-compressed frames


def test_benchmark_returns_rate(train_data):
    rate, secs = benchmark_pipeline(
        make_train_dataset(train_data, SIZE, 4, Opts(noise=False)), steps=2, warmup=1)
    assert rate > 0 and secs > 0
