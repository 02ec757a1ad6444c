"""fadenn_tf.degrade: the paper's noisy test sets, same layout, readable by the indexers."""
import filecmp
import json

import numpy as np
import pytest

from fadenn_tf.data.datasets import index_300vw, index_300w
from fadenn_tf.data.images import read_image, read_video_frames
from fadenn_tf.noise import condition_name, degrade_image, noise_conditions
from tests.fixtures import make_300vw, make_300w

NOISY = [condition_name(*c) for c in noise_conditions()[1:]]


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    from fadenn_tf.degrade import main
    tmp = tmp_path_factory.mktemp("degrade")
    written = make_300w(tmp / "300w", n_per_folder=1, size=(60, 72))
    assert main(["--data", str(tmp / "300w"), "--out", str(tmp / "noisy"), "--seed", "3",
                 "--full-image", "--workers", "1", "--no-progress"]) == 0
    return tmp, written


def test_twelve_folders_same_layout(degraded):
    tmp, written = degraded
    out = tmp / "noisy"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(NOISY)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["conditions"] == NOISY and manifest["seed"] == 3
    assert manifest["n_images"] == sum(len(v) for v in written.values())
    clean, _ = index_300w(tmp / "300w", "test")
    for cond in NOISY:
        for split in ("train", "test"):
            noisy, report = index_300w(out / cond, split)      # the indexers read it
            assert not report.skipped
            assert len(noisy) == len(index_300w(tmp / "300w", split)[0])
        for w in [w for ws in written.values() for w in ws]:
            rel = w.pts_path.relative_to(tmp / "300w")
            assert filecmp.cmp(w.pts_path, out / cond / rel, shallow=False)
            assert (out / cond / rel.with_suffix(".png")).is_file()   # lossless re-encoding


def test_noise_as_expected(degraded):
    tmp, written = degraded
    from fadenn_tf.evaluation.degraded import image_seed
    w = written["ibug"][0]
    rel = w.image_path.relative_to(tmp / "300w")
    src = read_image(w.image_path).astype(np.float64)
    get = lambda c: read_image(tmp / "noisy" / c / rel.with_suffix(".png"))  # noqa: E731
    assert get("color_scale-3").mean() == pytest.approx(0.2 * src.mean(), rel=0.02)
    assert get("color_scale-1").mean() == pytest.approx(0.8 * src.mean(), rel=0.01)
    assert np.abs(get("gaussian_noise-3") - src).mean() > 3      # visibly noisy
    assert get("blur-3").std() < src.std()                      # smoother
    # exactly the project's noise, seeded by (seed, path, condition): reproducible
    want = degrade_image(read_image(w.image_path), 3, 2,
                         image_seed(3, rel.as_posix(), "gaussian_noise-2"))
    np.testing.assert_array_equal(get("gaussian_noise-2"), want)


def test_refuses_to_overwrite(degraded):
    from fadenn_tf.degrade import main
    tmp, _ = degraded
    assert main(["--data", str(tmp / "300w"), "--out", str(tmp / "noisy"), "--conditions",
                 "blur-1", "--full-image", "--no-progress"]) == 2


def test_videos(tmp_path):
    from fadenn_tf.degrade import main
    vids = make_300vw(tmp_path / "vw", video_ids=("410",), frames=3, size=(48, 64))
    assert main(["--data", str(tmp_path / "vw"), "--out", str(tmp_path / "n"), "--conditions",
                 "color_scale-3,blur-1", "--no-progress"]) == 0
    samples, report = index_300vw(tmp_path / "n" / "color_scale-3")
    assert len(samples) == 3 and not report.skipped
    src = list(read_video_frames(vids["410"].video_path))
    out = list(read_video_frames(tmp_path / "n" / "color_scale-3" / "410" / "vid.avi"))
    assert len(out) == len(src) == 3
    for a, b in zip(src, out):        # lossless FFV1: exactly the scaled frame (+- rounding)
        assert np.abs(b.astype(float) - 0.2 * a).max() <= 1.0
    assert filecmp.cmp(vids["410"].annot_dir / "000002.pts",
                       tmp_path / "n" / "blur-1" / "410" / "annot" / "000002.pts",
                       shallow=False)


def test_evaluate_reads_degraded_sets(degraded, tmp_path):
    """evaluate --noisy-from uses the degraded images (the PSNR of its noisy crops is that
    of images degraded at full resolution, not the on-the-fly crops)."""
    import keras
    from fadenn_tf.evaluate import main
    tmp, _ = degraded
    inp = keras.Input((32, 32, 3))
    d = keras.layers.Dense(136)
    keras.Model(inp, d(keras.layers.GlobalAveragePooling2D()(inp))).save(tmp_path / "m.keras")
    args = ["--model", f"m={tmp_path / 'm.keras'}", "--data", str(tmp / "300w"),
            "--conditions", "clean,color_scale-3,gaussian_noise-3", "--no-progress"]
    assert main(args + ["--noisy-from", str(tmp / "noisy"), "--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert "degraded full images" in a["meta"]["noise"] and "synthesised" in b["meta"]["noise"]
    ra = {r["condition"]: r["mean_nme"] for r in a["results"]}
    rb = {r["condition"]: r["mean_nme"] for r in b["results"]}
    assert ra["clean"] == pytest.approx(rb["clean"])
    # an image-dependent model sees different pixels from the two noise sources
    assert ra["gaussian_noise-3"] != pytest.approx(rb["gaussian_noise-3"], rel=1e-9)


# ----------------------------------------------------------------------------- crop mode

R = 224


def _best(candidates, err):
    """The candidate with the smallest error, and all errors (for the failure message)."""
    errs = {c: err(c) for c in candidates}
    return min(errs, key=errs.get), errs


def _downsample_cv2(img, f):
    """Independent down-sampling by integer factor f: OpenCV area down, bilinear up."""
    import cv2
    small = cv2.resize(img, (R // f, R // f), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (R, R), interpolation=cv2.INTER_LINEAR)


def _blur_cv2(img, sigma):
    import cv2
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    """degrade --crop (the default) on a 300-W folder of 480x640 photos, both workers."""
    from fadenn_tf.degrade import main
    tmp = tmp_path_factory.mktemp("crop")
    written = make_300w(tmp / "300w", n_per_folder=1, size=(480, 640), seed=5)
    assert main(["--data", str(tmp / "300w"), "--out", str(tmp / "out"), "--seed", "1",
                 "--no-progress"]) == 0
    return tmp, written


def test_crop_mode_writes_a_dataset_of_reference_crops(cropped):
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.pts import read_pts
    tmp, written = cropped
    out = tmp / "out"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(NOISY + ["clean"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "crop" and manifest["reference_size"] == R
    assert manifest["n_images"] == 6 and manifest["n_skipped"] == 0
    crops = json.loads((out / "crops.json").read_text())
    for folder in ["clean"] + NOISY:
        for split in ("train", "test"):                     # the indexers read every folder
            got, report = index_300w(out / folder, split)
            assert not report.skipped and len(got) == len(index_300w(tmp / "300w", split)[0])
    for w in [w for ws in written.values() for w in ws]:
        rel = w.image_path.relative_to(tmp / "300w").with_suffix(".png")
        pts = read_pts(out / "clean" / rel.with_suffix(".pts"))
        # the 2x box fits in these photos, so the landmark box is the crop's middle half
        np.testing.assert_allclose(landmark_box(pts), [R / 4, R / 4, 3 * R / 4, 3 * R / 4],
                                   atol=1e-6)
        for folder in NOISY:
            assert read_image(out / folder / rel).shape == (R, R, 3)
            assert filecmp.cmp(out / "clean" / rel.with_suffix(".pts"),
                               out / folder / rel.with_suffix(".pts"), shallow=False)
        # the clean crop shows the source region (mean colour of the region, +-2 levels)
        x0, y0, x1, y1 = np.round(crops[rel.as_posix()]["region"]).astype(int)
        src = read_image(w.image_path)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
        clean = read_image(out / "clean" / rel).reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(clean, src, atol=2.0)


def test_crop_mode_parameters_recovered_from_pixels(cropped):
    """Each condition's parameter, recovered from the written pixels by an independent
    check against the clean crop (OpenCV re-implementations and plain statistics)."""
    from fadenn_tf.noise import LEVEL_PARAMS
    tmp, written = cropped
    out = tmp / "out"
    for w in (written["afw"][0], written["ibug"][0]):
        rel = w.image_path.relative_to(tmp / "300w").with_suffix(".png")
        c = read_image(out / "clean" / rel).astype(np.float32)
        get = lambda name: read_image(out / name / rel).astype(np.float32)  # noqa: E731
        for lv in (1, 2, 3):
            n = get(f"downsample-{lv}")
            f, errs = _best((2, 4, 8, 16), lambda f: np.abs(_downsample_cv2(c, f) - n).mean())
            assert f == 2 ** LEVEL_PARAMS[1][lv - 1] and errs[f] < 1.0, errs
            n = get(f"blur-{lv}")
            sig, errs = _best(np.arange(0.5, 6.01, 0.25),
                              lambda s: np.abs(_blur_cv2(c, s) - n).mean())
            assert sig == pytest.approx(LEVEL_PARAMS[2][lv - 1]) and errs[sig] < 1.0, errs
            d = (get(f"gaussian_noise-{lv}") - c) / 255.0
            mid = (c > 70) & (c < 185)                       # away from clipping
            assert d[mid].var() == pytest.approx(LEVEL_PARAMS[3][lv - 1], rel=0.1)
            assert abs(d[mid].mean()) < 0.01
            n = get(f"color_scale-{lv}")
            scale = float((n * c).sum() / (c * c).sum())
            assert scale == pytest.approx(LEVEL_PARAMS[4][lv - 1], abs=0.01)


def test_crop_mode_jpeg_bad_samples_and_evaluate(tmp_path):
    """--image-format jpg writes JPEG crops; an unreadable photo is skipped and reported;
    evaluate reads the crops with --data OUT/clean --noisy-from OUT and refuses the source."""
    import keras
    from fadenn_tf.degrade import main
    from fadenn_tf.evaluate import main as evaluate
    written = make_300w(tmp_path / "300w", n_per_folder=1, size=(240, 320), seed=2)
    bad = written["ibug"][0].image_path
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["--data", str(tmp_path / "300w"), "--out", str(out), "--conditions",
                 "color_scale-3", "--image-format", "jpg", "--quality", "90", "--workers", "1",
                 "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["image_encoding"] == "JPEG quality 90" and manifest["n_images"] == 5
    assert [s["path"] for s in manifest["skipped"]] == [str(bad)]
    assert not (out / "clean" / "ibug").exists()
    rel = written["afw"][0].image_path.relative_to(tmp_path / "300w")
    assert (out / "color_scale-3" / rel.with_suffix(".jpg")).is_file()
    clean = read_image(out / "clean" / rel.with_suffix(".jpg")).astype(float)
    dark = read_image(out / "color_scale-3" / rel.with_suffix(".jpg")).astype(float)
    assert dark.mean() == pytest.approx(0.2 * clean.mean(), rel=0.05)
    inp = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(136)
    keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D()(inp))).save(tmp_path / "m.keras")
    args = ["--model", f"m={tmp_path / 'm.keras'}", "--conditions", "clean,color_scale-3",
            "--noisy-from", str(out), "--split", "common", "--no-progress"]
    assert evaluate(args + ["--data", str(out / "clean"), "--out", str(tmp_path / "e")]) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert "degraded reference crops (224 px)" in res["meta"]["noise"]
    assert res["meta"]["crop_size"] == R
    assert evaluate(args + ["--data", str(tmp_path / "300w"), "--out", str(tmp_path / "f")]) == 2
