"""Dataset indexers on fixtures in the real layouts, and every bad-input case."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from fadenn_tf.data.datasets import (CATEGORIES_300VW, TEST_VIDEOS_300VW, detect_format,
                                     index_300vw, index_300w, index_folder, index_menpo,
                                     iter_sample_images, open_dataset, read_sample_image,
                                     split_holdout)
from fadenn_tf.data.pts import write_pts
from fadenn_tf.errors import DataError
from tests.fixtures import (face_image, frame_level, make_300vw, make_300w, make_folder,
                            make_menpo, write_image, write_sample)


def _by_path(samples):
    return {Path(s.image_path): s for s in samples}


# --------------------------------------------------------------------------------- 300-W

@pytest.fixture(scope="module")
def w300(tmp_path_factory):
    root = tmp_path_factory.mktemp("300w")
    return root, make_300w(root, n_per_folder=2, private=True)


@pytest.mark.parametrize("split,folders", [
    ("train", ["afw", "helen/trainset", "lfpw/trainset"]),
    ("common", ["helen/testset", "lfpw/testset"]),
    ("challenging", ["ibug"]),
    ("full", ["helen/testset", "lfpw/testset", "ibug"]),
    ("test", ["helen/testset", "lfpw/testset", "ibug"]),
    ("indoor", ["01_Indoor"]),
    ("outdoor", ["02_Outdoor"]),
    ("private", ["01_Indoor", "02_Outdoor"]),
])
def test_300w_splits(w300, split, folders):
    root, written = w300
    samples, report = index_300w(root, split)
    expect = {w.image_path: w for f in folders for w in written[f]}
    assert set(_by_path(samples)) == set(expect)
    assert report.n_ok == len(samples) == 2 * len(folders) and not report.skipped
    for s in samples:
        w = expect[Path(s.image_path)]
        assert s.subset == w.subset and Path(s.pts_path) == w.pts_path and s.frame is None
        np.testing.assert_allclose(s.landmarks, w.landmarks, atol=1e-9)
    assert any("official 300-W" in n for n in report.notes)  # 6 is not 3148 etc.


def test_300w_coordinates_are_zero_based(tmp_path):
    lms = np.tile([[10.0, 20.0]], (68, 1)) + np.arange(68)[:, None] * [0.5, 0.25]
    write_image(tmp_path / "ibug" / "a.jpg", face_image((100, 120), None, 0))
    write_pts(tmp_path / "ibug" / "a.pts", lms)
    text = (tmp_path / "ibug" / "a.pts").read_text().splitlines()
    assert text[3] == "11.0 21.0"  # on disk: 1-based
    samples, _ = index_300w(tmp_path, "challenging")
    np.testing.assert_array_equal(samples[0].landmarks, lms)  # in memory: 0-based


def test_300w_unknown_split(w300):
    with pytest.raises(ValueError, match="unknown 300-W split"):
        index_300w(w300[0], "valid")


def test_300w_missing_or_empty_folder_named(tmp_path):
    make_300w(tmp_path, n_per_folder=1)
    shutil.rmtree(tmp_path / "ibug")
    assert len(index_300w(tmp_path, "train")[0]) == 3  # other splits unaffected
    with pytest.raises(DataError, match=r"ibug.*not found"):
        index_300w(tmp_path, "full")
    (tmp_path / "ibug").mkdir()
    with pytest.raises(DataError, match=r"ibug.*no images"):
        index_300w(tmp_path, "challenging")


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.*not found"):
        open_dataset(tmp_path / "nowhere")


# --------------------------------------------------------------------------------- Menpo

def test_menpo_profiles_counted_not_errors(tmp_path):
    written = make_menpo(tmp_path, n_frontal=3, n_profile=2)
    samples, report = index_menpo(tmp_path)
    assert set(_by_path(samples)) == {w.image_path for w in written["frontal"]}
    assert report.profiles_skipped == 2 and not report.skipped
    assert all(s.subset == "menpo" and s.landmarks.shape == (68, 2) for s in samples)
    assert "2 profile" in report.summary()
    # the generic folder indexer treats 39 points as the wrong count
    _, freport = index_folder(tmp_path)
    assert len(freport.skipped) == 2 and "expected 68 points, found 39" in freport.skipped[0][1]


def test_menpo_only_profiles_is_an_error(tmp_path):
    make_menpo(tmp_path, n_frontal=0, n_profile=2)
    with pytest.raises(DataError, match="no usable samples"):
        index_menpo(tmp_path)


# -------------------------------------------------------------------------------- 300-VW

@pytest.fixture(scope="module")
def vw(tmp_path_factory):
    root = tmp_path_factory.mktemp("300vw")
    # 114: category 1, 203: category 2, 410: category 3, 001: a training video
    return root, make_300vw(root, video_ids=("001", "114", "203", "410"), frames=5)


def test_300vw_categories_constants():
    assert [len(CATEGORIES_300VW[c]) for c in (1, 2, 3)] == [31, 19, 14]
    assert len(set(TEST_VIDEOS_300VW)) == 64


def test_300vw_frame_numbering(vw):
    root, written = vw
    samples, report = index_300vw(root, videos=["114"])
    assert [s.frame for s in samples] == [0, 1, 2, 3, 4]
    for s in samples:
        assert Path(s.image_path) == written["114"].video_path and s.subset == "114"
        assert Path(s.pts_path).name == f"{s.frame + 1:06d}.pts"
        np.testing.assert_allclose(s.landmarks, written["114"].landmarks[s.frame], atol=1e-9)
    assert report.n_ok == 5 and not report.skipped


@pytest.mark.parametrize("category,videos", [
    (None, {"001", "114", "203", "410"}), ("all", {"001", "114", "203", "410"}),
    (1, {"114"}), ("cat2", {"203"}), (3, {"410"}), ("test", {"114", "203", "410"}),
    ("train", {"001"}),
])
def test_300vw_category_filter(vw, category, videos):
    samples, report = index_300vw(vw[0], category=category)
    assert {s.subset for s in samples} == videos
    assert len(samples) == 5 * len(videos)
    if category == 3:
        assert "410" not in report.missing_videos
        assert sorted(report.missing_videos) == sorted(set(CATEGORIES_300VW[3]) - {"410"})
        assert len(report.skipped) == 13 and "516" in report.summary()
    if category in (None, "all", "train"):
        assert not report.missing_videos


def test_300vw_frames_read_in_order(vw):
    samples, _ = index_300vw(vw[0], videos=["203", "114"])
    assert len(samples) == 10
    for s, img in iter_sample_images(samples):
        assert img.shape == (100, 120, 3)
        assert abs(float(img[:8, :8].mean()) - frame_level(s.frame)) < 4
    img = read_sample_image(samples[3])
    assert abs(float(img[:8, :8].mean()) - frame_level(3)) < 4


def test_300vw_bad_annotations_reported(tmp_path):
    written = make_300vw(tmp_path, video_ids=("114", "124"), frames=3)
    annot = written["114"].annot_dir
    write_pts(annot / "000009.pts", written["114"].landmarks[0])  # past the last frame
    write_pts(annot / "frame1.pts", written["114"].landmarks[0])  # bad name
    (annot / "000002.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")  # bad count
    (tmp_path / "124" / "vid.avi").write_bytes(b"not a video" * 50)  # unreadable video
    samples, report = index_300vw(tmp_path)
    assert sorted(s.frame for s in samples) == [0, 2]
    problems = {Path(p).name: msg for p, msg in report.skipped}
    assert "3 frames" in problems["000009.pts"]
    assert "6-digit" in problems["frame1.pts"]
    assert "68" in problems["000002.pts"]
    assert "cannot open video" in problems["vid.avi"]
    # without opening videos the frame-count check is off, the rest still applies
    samples, report = index_300vw(tmp_path, videos=["114"], check_images=False)
    assert sorted(s.frame for s in samples) == [0, 2, 8]


def test_300vw_no_videos(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no 300-VW video folders"):
        index_300vw(tmp_path)


# -------------------------------------------------------------------------------- folder

def test_folder_recursive_subsets(tmp_path):
    root = tmp_path / "mydata"
    written = make_folder(root, n=2, subfolders=("", "more", "more/deeper"))
    samples, report = index_folder(root)
    assert {Path(s.image_path): s.subset for s in samples} == {w.image_path: w.subset
                                                              for w in written}
    assert {s.subset for s in samples} == {"mydata", "more", "more/deeper"}
    assert report.n_ok == 6


def test_folder_empty_raises_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*no images"):
        index_folder(tmp_path / "empty")


@pytest.fixture
def bad_folder(tmp_path):
    """Two good samples and one of every bad case; returns (root, {file name: problem re})."""
    root = tmp_path / "bad"
    rng = np.random.default_rng(7)
    good = [write_sample(root, f"good{i}", ".png", rng=rng) for i in range(2)]
    slightly_out = write_sample(root, "edge", ".png", rng=rng)
    shift = [slightly_out.landmarks[:, 0].min() + 3, 0]  # 3 px past the left edge: kept
    write_pts(slightly_out.pts_path, slightly_out.landmarks - shift)
    lms = good[0].landmarks
    write_image(root / "nopts.jpg", face_image((100, 120), lms, 1))
    write_sample(root, "malformed", rng=rng).pts_path.write_text("version: 1\n{\n1 2 3\n}\n")
    write_pts(write_sample(root, "count", rng=rng).pts_path, lms[:60])
    s = write_sample(root, "nan", rng=rng)
    s.pts_path.write_text(s.pts_path.read_text().replace(s.pts_path.read_text().splitlines()[5],
                                                         "nan 3.0"))
    write_sample(root, "unreadable", rng=rng).image_path.write_bytes(b"\x00garbage" * 40)
    t = write_sample(root, "truncated", rng=rng).image_path
    t.write_bytes(t.read_bytes()[:-30])
    write_pts(write_sample(root, "outside", rng=rng).pts_path, lms + [500.0, 0.0])
    write_sample(root, "empty", rng=rng).image_path.write_bytes(b"")
    write_pts(root / "orphan.pts", lms)
    write_sample(root, "twin", ".png", rng=rng)
    write_image(root / "twin.jpg", face_image((100, 120), None, 2))
    expect = {"nopts.jpg": "no landmark file nopts.pts", "malformed.pts": "malformed",
              "count.pts": "expected 68 points, found 60", "nan.pts": "NaN",
              "unreadable.jpg": "cannot decode", "truncated.jpg": "truncated",
              "outside.pts": "entirely outside", "empty.jpg": "empty",
              "orphan.pts": "no image", "twin.png": "ambiguous", "twin.jpg": "ambiguous"}
    return root, expect, {w.image_path for w in good} | {slightly_out.image_path}


@pytest.mark.parametrize("check_images", [True, False])
def test_bad_samples_skipped_and_reported(bad_folder, check_images):
    root, expect, good = bad_folder
    samples, report = index_folder(root, check_images=check_images)
    assert set(_by_path(samples)) == good  # "edge" (3 px outside) is kept
    assert report.n_ok == 3
    problems = {Path(p).name: msg for p, msg in report.skipped}
    assert set(problems) == set(expect)
    for name, needle in expect.items():
        assert needle in problems[name], (name, problems[name])
    text = report.summary(max_items=100)
    assert f"3 samples, {len(expect)} skipped" in text
    for name in expect:
        assert str(root / name) in text
    short = report.summary(max_items=2)
    assert f"and {len(expect) - 2} more" in short


def test_all_bad_raises_with_report(tmp_path):
    write_sample(tmp_path, "a").pts_path.unlink()
    with pytest.raises(DataError, match=r"no usable samples[\s\S]*a\.jpg"):
        index_folder(tmp_path)


# ------------------------------------------------------------------- dispatch and holdout

def test_detect_and_open(w300, vw, tmp_path):
    assert detect_format(w300[0]) == "300w"
    assert detect_format(vw[0]) == "300vw"
    make_folder(tmp_path / "f", n=2)
    assert detect_format(tmp_path / "f") == "folder"
    assert len(open_dataset(w300[0], split="challenging")[0]) == 2
    assert {s.subset for s in open_dataset(vw[0], split="cat1")[0]} == {"114"}
    assert {s.subset for s in open_dataset(vw[0], split="train")[0]} == {"001"}
    assert len(open_dataset(tmp_path / "f", split="all")[0]) == 4
    private = tmp_path / "private"
    make_300w(private, n_per_folder=1, private=True)
    for sub in ("afw", "helen", "lfpw", "ibug"):
        shutil.rmtree(private / sub)
    assert detect_format(private) == "300w"
    assert len(open_dataset(private, split="private")[0]) == 2
    with pytest.raises(ValueError, match="unknown dataset format"):
        open_dataset(tmp_path / "f", format="hdf5")


def test_open_holdout_split_for_folders(tmp_path):
    make_folder(tmp_path, n=20, subfolders=("a", "b"))
    everything, _ = open_dataset(tmp_path, format="menpo", split="all")
    train, report = open_dataset(tmp_path, split="train", val_fraction=0.15, seed=3)
    val, _ = open_dataset(tmp_path, split="val", val_fraction=0.15, seed=3)
    test, _ = open_dataset(tmp_path, split="test", val_fraction=0.15, seed=3)
    assert [s.image_path for s in val] == [s.image_path for s in test]
    assert len(val) == 6 and len(train) == 34 and report.n_ok == 34
    assert {s.image_path for s in train} | {s.image_path for s in val} == \
        {s.image_path for s in everything}
    assert sorted(s.subset for s in val) == ["a"] * 3 + ["b"] * 3  # stratified
    with pytest.raises(ValueError, match="val_fraction"):
        open_dataset(tmp_path, split="val", val_fraction=0)


def test_split_holdout_deterministic_and_order_free(tmp_path):
    make_folder(tmp_path, n=20, subfolders=("a", "b"))
    samples, _ = index_folder(tmp_path)
    t1, v1 = split_holdout(samples, 0.25, seed=0)
    t2, v2 = split_holdout(list(reversed(samples)), 0.25, seed=0)
    assert {s.image_path for s in v1} == {s.image_path for s in v2}
    assert len(v1) == 10 and len(t1) == 30
    assert [s.image_path for s in t1] == [s.image_path for s in samples if s in t1]
    _, v3 = split_holdout(samples, 0.25, seed=1)
    assert {s.image_path for s in v3} != {s.image_path for s in v1}
    # another folder's presence does not change a folder's choice
    only_a = [s for s in samples if s.subset == "a"]
    _, va = split_holdout(only_a, 0.25, seed=0)
    assert {s.image_path for s in va} == {s.image_path for s in v1 if s.subset == "a"}
    # tiny data: rounding to nothing still holds one out
    _, tiny = split_holdout(samples[:2], 0.15, seed=0)
    assert len(tiny) == 1


def test_split_holdout_keeps_videos_whole(vw):
    samples, _ = index_300vw(vw[0])
    train, val = split_holdout(samples, 0.25, seed=0)
    assert len(val) == 5 and len(train) == 15
    assert len({s.subset for s in val}) == 1
    assert not {s.subset for s in val} & {s.subset for s in train}
