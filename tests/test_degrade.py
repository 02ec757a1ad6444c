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
                 "--no-progress"]) == 0
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
    from fadenn_tf.degrade import image_seed
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
                 "blur-1", "--no-progress"]) == 2


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
