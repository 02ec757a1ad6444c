"""fadenn_tf.evaluate: figures in results.json against values worked out by hand.

The "models" are real Keras models whose output does not depend on the image (a Dense layer
with a zero kernel and a chosen bias): on a fixture whose faces all have the same landmarks,
their error is known in closed form.
"""
import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fadenn_tf.data.pts import write_pts
from tests.fixtures import UNIT_FACE68, face_image, write_image

S = 64                       # model input side = evaluation crop side
IMG = (200, 220)             # (h, w): the 2x crop region stays inside the image
LM = np.round(UNIT_FACE68 * 30.0 + (110.0, 96.0), 3)   # one face, shared by every image
N_IMAGES = 3


def _write_dataset(root):
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        write_image(root / f"face_{i}.png", face_image(IMG, LM, rng))
        write_pts(root / f"face_{i}.pts", LM)
    return root


def _crop_points(lm):
    """Landmarks in the S x S crop, by hand: box = [min, max] + 0.5 (edges), region = box
    grown by half its size per side (not clipped here), u = (x + 0.5 - r0) * S / (2w) - 0.5."""
    lo, hi = lm.min(0) + 0.5, lm.max(0) + 0.5
    size = hi - lo
    r0 = lo - size / 2
    return (lm + 0.5 - r0) * S / (2 * size) - 0.5, S / (2 * size)


def _constant_model(path, crop_points):
    """A real Keras FLL-like model: [B,S,S,3] -> [B,136] = the flat [x.., y..] of
    crop_points, whatever the image."""
    import keras
    flat = np.concatenate([crop_points[:, 0], crop_points[:, 1]]).astype(np.float32)
    inp = keras.Input((S, S, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(136, kernel_initializer="zeros")
    out = dense(x)
    dense.bias.assign(flat)
    keras.Model(inp, out).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Evaluate two constant models (2 and 20 crop pixels to the right of the truth) on 3
    images x 3 conditions through the CLI."""
    from fadenn_tf.evaluate import main
    tmp = tmp_path_factory.mktemp("eval")
    data = _write_dataset(tmp / "faces")
    cp, scale = _crop_points(LM)
    near = _constant_model(tmp / "near.keras", cp + [2.0, 0.0])
    far = _constant_model(tmp / "far.keras", cp + [20.0, 0.0])
    out = tmp / "out"
    rc = main(["--model", f"near={near}", "--model", f"far={far}", "--data", str(data),
               "--format", "folder", "--split", "all", "--conditions",
               "clean,blur-1,color_scale-3", "--out", str(out), "--no-progress",
               "--batch-size", "2"])
    assert rc == 0
    return {"out": out, "scale": scale, "data": data, "near": near,
            "results": json.loads((out / "results.json").read_text())}


def _hand_nme(offset_crop_px, scale):
    """Every point is off by offset / sx image pixels in x (constant prediction, identical
    faces) -> NME under each normaliser."""
    err = offset_crop_px / scale[0]
    w, h = LM.max(0) - LM.min(0)
    return {"diagonal": err / math.hypot(w, h), "box": err / math.sqrt(w * h),
            "interocular": err / np.linalg.norm(LM[36] - LM[45])}


def test_results_match_hand_values(run):
    res = run["results"]
    assert res["meta"]["normalizer"] == "diagonal" and res["meta"]["threshold"] == 0.08
    rows = {(r["model"], r["condition"]): r for r in res["results"]}
    assert set(rows) == {(m, c) for m in ("near", "far")
                         for c in ("clean", "blur-1", "color_scale-3", "noisy")}
    for model, off in (("near", 2.0), ("far", 20.0)):
        want = _hand_nme(off, run["scale"])
        for cond in ("clean", "blur-1", "color_scale-3", "noisy"):
            r = rows[(model, cond)]
            e = want["diagonal"]
            assert r["n"] == (N_IMAGES * 2 if cond == "noisy" else N_IMAGES)
            assert r["mean_nme"] == pytest.approx(e, rel=1e-5)
            assert r["auc"] == pytest.approx(max(0.0, 0.08 - e) / 0.08, abs=1e-6)
            assert r["fr"] == (1.0 if e > 0.08 else 0.0)
            for norm in ("box", "interocular"):
                assert r["other_normalizers"][norm]["mean_nme"] == pytest.approx(
                    want[norm], rel=1e-5)
            assert r["dataset"] and r["split"] == "all" and r["model_path"].endswith(".keras")
            if cond != "noisy":
                assert r["noise_type"] == cond.split("-")[0]
    # the two models straddle the threshold, so both branches of FR were checked
    assert _hand_nme(2.0, run["scale"])["diagonal"] < 0.08 < _hand_nme(20.0, run["scale"])[
        "diagonal"]
    blur = rows[("near", "blur-1")]
    assert (blur["noise_type_id"], blur["level"]) == (2, 1)


def test_csv_rows_and_values(run):
    with open(run["out"] / "errors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_IMAGES * 3 * 2          # images x conditions x models
    want = _hand_nme(20.0, run["scale"])
    far = [r for r in rows if r["model"] == "far"]
    assert {r["condition"] for r in far} == {"clean", "blur-1", "color_scale-3"}
    for r in far:
        for norm in ("diagonal", "box", "interocular"):
            assert float(r[f"nme_{norm}"]) == pytest.approx(want[norm], rel=1e-4)
    assert {r["image"] for r in rows} == {str(run["data"] / f"face_{i}.png")
                                          for i in range(N_IMAGES)}


def test_markdown_and_plots(run):
    md = (run["out"] / "results.md").read_text()
    e = _hand_nme(2.0, run["scale"])["diagonal"]
    assert "diagonal" in md and "AUC@0.08" in md and "FR@0.08" in md
    assert f"| clean | {max(0, 0.08 - e) / 0.08:.3f} | 0.000 | 0.000 | 1.000 |" in md
    for name in ("auc_vs_level.png", "ced.png", "landmarks_near.png", "landmarks_far.png"):
        img = cv2.imread(str(run["out"] / name))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 100, name


def test_detector_boxes_count_misses_as_failures(run, tmp_path):
    """--boxes detector: every image either gets a box or is a failure with NME inf."""
    from fadenn_tf.evaluate import main
    out = tmp_path / "det"
    assert main(["--model", f"near={run['near']}", "--data", str(run["data"]), "--format",
                 "folder", "--split", "all", "--conditions", "clean", "--boxes", "detector",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    m = res["meta"]
    assert m["n_images"] == N_IMAGES == m["n_evaluated"] + m["n_detector_missed"]
    assert len(res["detector_missed"]) == m["n_detector_missed"]
    clean = res["results"][0]
    assert clean["n_nonfinite"] == m["n_detector_missed"]
    assert clean["fr"] >= m["n_detector_missed"] / N_IMAGES


def _iid_model(path, crop_points, cls=4):
    """A real FADeNN-shaped Keras model: "dae" = identity 1x1 conv, "classifier" = constant
    softmax picking class `cls`, constant landmarks."""
    import keras
    inp = keras.Input((S, S, 3))
    dae_in = keras.Input((S, S, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    dae = keras.Model(dae_in, conv(dae_in), name="dae")
    conv.kernel.assign(np.eye(3, dtype=np.float32)[None, None])
    c_in = keras.Input((S, S, 3))
    c_dense = keras.layers.Dense(5, kernel_initializer="zeros", activation="softmax")
    clf = keras.Model(c_in, c_dense(keras.layers.GlobalAveragePooling2D()(c_in)),
                      name="classifier")
    c_dense.bias.assign(np.eye(5, dtype=np.float32)[cls] * 5)
    den = dae(inp)
    flat = np.concatenate([crop_points[:, 0], crop_points[:, 1]]).astype(np.float32)
    l_dense = keras.layers.Dense(136, kernel_initializer="zeros")
    pts = keras.layers.Permute((2, 1))(keras.layers.Reshape((2, 68))(
        l_dense(keras.layers.GlobalAveragePooling2D()(den))))
    l_dense.bias.assign(flat)
    keras.Model(inp, {"landmarks": pts, "noise_probs": clf(inp), "denoised": den}).save(path)
    return path


def test_iid_diagnostics(run, tmp_path):
    from fadenn_tf.evaluate import main
    cp, _ = _crop_points(LM)
    model = _iid_model(tmp_path / "iid.keras", cp)
    out = tmp_path / "iid"
    assert main(["--model", f"iid={model}", "--data", str(run["data"]), "--format", "folder",
                 "--split", "all", "--conditions", "clean,blur-1,color_scale-3", "--out",
                 str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    cl = res["iid_diagnostics"]["iid"]["classifier"]
    # every crop is classified as colour scaling (4): right only for color_scale-3
    assert cl["accuracy"] == pytest.approx(1 / 3)
    conf = np.array(cl["confusion"])
    assert conf[:, 4].tolist() == [N_IMAGES, 0, N_IMAGES, 0, N_IMAGES] and conf.sum() == 9
    den = {d["condition"]: d for d in res["iid_diagnostics"]["iid"]["denoiser"]}
    assert den["clean"]["ssim_input"] == pytest.approx(1.0, abs=1e-6)
    for c in ("blur-1", "color_scale-3"):          # identity denoiser: output == input
        assert den[c]["psnr_output"] == pytest.approx(den[c]["psnr_input"], abs=1e-3)
        assert den[c]["ssim_output"] == pytest.approx(den[c]["ssim_input"], abs=1e-5)
        assert den[c]["ssim_input"] < 0.99 and den[c]["psnr_input"] < 60
    # landmarks: the constant shape is exact (NME 0 up to float error)
    assert res["results"][0]["mean_nme"] < 1e-5
    assert cv2.imread(str(out / "confusion_iid.png")) is not None


def _evaluate_with_dlib(run, out, *extra):
    from fadenn_tf.evaluate import main
    assert main(["--model", f"near={run['near']}", "--dlib", *extra, "--data", str(run["data"]),
                 "--format", "folder", "--split", "all", "--conditions", "clean", "--out",
                 str(out), "--no-progress"]) == 0
    return json.loads((out / "results.json").read_text())


def test_dlib_peer_missing_is_skipped_with_its_reason(run, tmp_path, capsys):
    """A missing dlib model file (or dlib itself) drops the peer, evaluates the rest and
    says why, naming the file."""
    import importlib.util
    missing = tmp_path / "no_such_predictor.dat"
    res = _evaluate_with_dlib(run, tmp_path / "out", "--dlib-model", str(missing))
    assert [m["label"] for m in res["models"]] == ["near"]
    err = capsys.readouterr().err
    if importlib.util.find_spec("dlib") is None:
        assert "dlib peer skipped: dlib is not installed" in err
    else:
        assert f"dlib peer skipped: {missing}: dlib model file not found" in err


def test_dlib_peer_fits_the_face(run, tmp_path):
    """With dlib and its model file present, the peer is evaluated beside the models."""
    import importlib.util
    from fadenn_tf.evaluation.dlib_peer import DEFAULT_MODEL_PATHS
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib is not installed (pip install 'fadenn_tf[dlib]')")
    if not any(Path(p).is_file() for p in DEFAULT_MODEL_PATHS):
        pytest.skip(f"dlib's 68-point model is in none of {', '.join(DEFAULT_MODEL_PATHS)}")
    res = _evaluate_with_dlib(run, tmp_path / "out")
    assert [m["label"] for m in res["models"]] == ["near", "dlib-ERT"]
    row = [r for r in res["results"] if r["model"] == "dlib-ERT"][0]
    assert 0 < row["mean_nme"] < 0.2        # a face-shaped fit started from the same box


def test_parse_conditions():
    from fadenn_tf.noise import parse_conditions
    assert len(parse_conditions("all")) == 13 and parse_conditions("clean") == [(0, 0)]
    assert parse_conditions("blur") == [(2, 1), (2, 2), (2, 3)]
    assert parse_conditions("clean,color_scale-3,clean") == [(0, 0), (4, 3)]
    with pytest.raises(ValueError):
        parse_conditions("blur-4")


def test_split_val_follows_set_overrides(run, tmp_path):
    """--split val picks the held-out part of the config as overridden by --set."""
    from fadenn_tf.evaluate import main
    data = tmp_path / "faces"
    rng = np.random.default_rng(1)
    for i in range(8):
        write_image(data / f"face_{i}.png", face_image(IMG, LM, rng))
        write_pts(data / f"face_{i}.pts", LM)
    n = {}
    for frac in ("0.15", "0.5"):
        out = tmp_path / f"val_{frac}"
        assert main(["--model", f"near={run['near']}", "--data", str(data), "--format",
                     "folder", "--split", "val", "--config", "cpu", "--set",
                     f"data.val_fraction={frac}", "--conditions", "clean", "--out", str(out),
                     "--no-progress"]) == 0
        n[frac] = json.loads((out / "results.json").read_text())["meta"]["n_images"]
    assert n["0.15"] < n["0.5"] <= 8


def test_plain_folder_is_scored_whole_unless_a_split_is_asked(run, tmp_path, capsys):
    """A folder that is not the config's dataset: every image by default, as predict sees
    it; --split val picks the held-out part. Both say which in the table and results.json."""
    from fadenn_tf.evaluate import main
    data = tmp_path / "ten"
    rng = np.random.default_rng(1)
    for i in range(10):
        write_image(data / f"f{i}.png", face_image(IMG, LM, rng))
        write_pts(data / f"f{i}.pts", LM)
    common = ["--model", f"near={run['near']}", "--data", str(data), "--conditions", "clean",
              "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "all")]) == 0
    meta = json.loads((tmp_path / "all" / "results.json").read_text())["meta"]
    assert meta["n_images"] == 10 and meta["split"].startswith("all (every image")
    assert "split all (every image" in capsys.readouterr().out
    assert main(common + ["--split", "val", "--out", str(tmp_path / "val")]) == 0
    meta = json.loads((tmp_path / "val" / "results.json").read_text())["meta"]
    assert meta["n_images"] == 2 and meta["split"].startswith("val (as training with config")


def test_detector_flag_takes_the_registry_names(run, tmp_path, capsys):
    """--detector NAME: any registered detector (the names predict and track take); alone it
    implies --box-source detector, and the outputs name it."""
    from fadenn_tf import detect
    from fadenn_tf.evaluate import main
    box = detect.landmark_box(LM)
    detect.register_detector("lm-box-test", lambda: (lambda img: np.array([box])),
                             overwrite=True)
    try:
        out = tmp_path / "det"
        assert main(["--model", f"near={run['near']}", "--data", str(run["data"]),
                     "--conditions", "clean", "--detector", "lm-box-test", "--out", str(out),
                     "--no-progress"]) == 0
        meta = json.loads((out / "results.json").read_text())["meta"]
        assert meta["boxes"].startswith("detector lm-box-test")
        assert meta["n_detector_missed"] == 0 and meta["n_evaluated"] == N_IMAGES
        assert main(["--model", f"near={run['near']}", "--data", str(run["data"]),
                     "--detector", "no-such-detector", "--out", str(tmp_path / "x")]) == 2
        assert "unknown face detector 'no-such-detector'" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
    finally:
        detect._REGISTRY.pop("lm-box-test", None)


def test_a_second_run_into_the_same_out_needs_overwrite(run, tmp_path, capsys):
    from fadenn_tf.evaluate import main
    out = tmp_path / "o"
    argv = ["--model", f"near={run['near']}", "--data", str(run["data"]), "--conditions",
            "clean", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (out / "landmarks_old-model.png").write_bytes(b"from an earlier run")
    assert main(argv) == 2
    assert "holds the outputs of an earlier evaluate run" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert not (out / "landmarks_old-model.png").exists() and (out / "results.json").is_file()


def test_eval_config_section_reaches_the_run_and_flags_win(run, tmp_path):
    """The `eval` section (--set eval.KEY=V) sets every option the command line leaves out;
    a flag given wins over it."""
    from fadenn_tf.evaluate import main
    out = tmp_path / "cfg"
    assert main(["--model", f"near={run['near']}", "--data", str(run["data"]), "--out",
                 str(out), "--no-progress", "--set", "eval.seed=7", "--set",
                 "eval.conditions=clean,blur-1", "--set", "eval.nme_threshold=0.05",
                 "--nme-threshold", "0.06", "--set", "eval.grid_images=0", "--set",
                 "eval.normalizer=box"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert (res["meta"]["seed"], res["meta"]["threshold"]) == (7, 0.06)
    assert res["meta"]["normalizer"] == "box" and res["conditions"] == ["clean", "blur-1"]
    assert "seed 7" in res["meta"]["noise"]
    want = _hand_nme(2.0, run["scale"])["box"]
    assert res["results"][0]["mean_nme"] == pytest.approx(want, rel=1e-5)
    assert not list(out.glob("landmarks_*.png"))          # grid_images 0: no landmark grid
