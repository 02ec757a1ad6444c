"""Fault injection: each failure of the reliability issue reproduced and shown handled.

A corrupt, missing or truncated checkpoint file, a kill before the final validation,
impossible flags and config values, two writers on one folder, bad boxes and corrupt images
in the exported bytes signature, a corrupt SavedModel, and skipped inputs that must be
reported."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from fadenn_tf import train as train_cli
from fadenn_tf.utils.lock import LOCK_NAME, LockedError, folder_lock
from test_training import checkpoint_numbers, checkpoint_value, scalars, tiny, write_yaml

STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def data_root(tiny_data):
    """The 300-W fixture tree (24 48x48 stills) shared by the test run (conftest)."""
    return tiny_data["data"]


@pytest.fixture(scope="module")
def cfg_path(tiny_data):
    """Tiny FLL: checkpoints every 2 steps (keep 3), validation at the end only (on 4
    images); the config of conftest's shared tiny run."""
    return tiny_data["cfg"]


def train(cfg_path, data_root, workdir, *extra):
    return train_cli.main(["--stage", "fll", "--config", str(cfg_path), "--data",
                           str(data_root), "--workdir", str(workdir), "--no-progress",
                           *map(str, extra)])


@pytest.fixture(scope="module")
def finished(tiny_run):
    """A finished 4-step fll run (checkpoints 2 and 4, model.keras, one metrics line):
    conftest's shared tiny run, copied fresh for each test by `run_copy`."""
    return tiny_run["workdir"]


@pytest.fixture
def run_copy(finished, tmp_path):
    wd = tmp_path / "w"
    shutil.copytree(finished, wd)
    (wd / "fll" / LOCK_NAME).unlink(missing_ok=True)
    return wd


def metrics(stage_dir):
    return [json.loads(x) for x in (stage_dir / "metrics.json").read_text().splitlines()]


def resumed_steps(stage_dir):
    """Steps logged by the second TensorBoard event file (the resumed run)."""
    runs = scalars(stage_dir / "tb", per_file=True)
    assert len(runs) == 2, [sorted(r) for r in runs]
    return sorted(runs[1])


# ----------------------------------------------------------------- checkpoints on disk
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_bad_state_file_resumes_from_ckpt_files_and_guards_fresh_run(
        run_copy, cfg_path, data_root, capsys, fault):
    d = run_copy / "fll"
    state = d / "checkpoints" / "checkpoint"
    if fault == "corrupt":
        state.write_text("garbage {{{\n")
    else:
        state.unlink()
    model_bytes = (d / "model.keras").read_bytes()
    # without --resume: refused, nothing of the earlier run touched
    assert train(cfg_path, data_root, run_copy, "--steps", 6) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "ckpt-4" in err and "--overwrite" in err
    assert (d / "model.keras").read_bytes() == model_bytes
    assert checkpoint_numbers(d / "checkpoints") == [2, 4]
    # --resume continues from ckpt-4, not from step 0
    assert train(cfg_path, data_root, run_copy, "--steps", 6, "--resume") == 0
    assert resumed_steps(d) == [5, 6]
    assert [r["step"] for r in metrics(d)] == [4, 6]
    assert int(checkpoint_value(d / "checkpoints" / "ckpt-6", STEP_KEY)) == 6
    assert tf.train.latest_checkpoint(str(d / "checkpoints")).endswith("ckpt-6")


@pytest.mark.slow
def test_truncated_latest_checkpoint_falls_back_with_warning(run_copy, cfg_path, data_root,
                                                             capsys):
    d = run_copy / "fll"
    data = d / "checkpoints" / "ckpt-4.data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    assert train(cfg_path, data_root, run_copy, "--steps", 6, "--resume") == 0
    err = capsys.readouterr().err
    assert "ckpt-4: unreadable" in err and "resuming from ckpt-2" in err
    assert resumed_steps(d) == [3, 4, 5, 6]
    assert int(checkpoint_value(d / "checkpoints" / "ckpt-6", STEP_KEY)) == 6
    assert (d / "checkpoints" / "ckpt-4.data-00000-of-00001.unreadable").is_file()
    assert [r["step"] for r in metrics(d)] == [6]      # the step-4 line came from the lost run


@pytest.mark.slow
def test_every_checkpoint_unreadable_is_an_error_not_a_restart(run_copy, cfg_path, data_root,
                                                               capsys):
    d = run_copy / "fll"
    for f in (d / "checkpoints").glob("ckpt-*.data-*"):
        f.write_bytes(b"")
    assert train(cfg_path, data_root, run_copy, "--steps", 6, "--resume") == 2
    err = capsys.readouterr().err
    assert "no checkpoint reads back completely" in err and "Traceback" not in err
    assert "ckpt-4:" in err and "ckpt-2:" in err
    assert metrics(d)[0]["step"] == 4 and (d / "model.keras").is_file()
    assert not list((d / "checkpoints").glob("*.unreadable"))     # left as they were


@pytest.mark.slow
def test_overwrite_starts_over_cleanly(run_copy, cfg_path, data_root):
    d = run_copy / "fll"
    assert train(cfg_path, data_root, run_copy, "--steps", 2, "--overwrite") == 0
    assert checkpoint_numbers(d / "checkpoints") == [2]
    assert [r["step"] for r in metrics(d)] == [2]
    assert len(scalars(d / "tb", per_file=True)) == 1


@pytest.mark.slow
def test_kill_after_final_checkpoint_still_writes_final_validation(run_copy, cfg_path,
                                                                   data_root):
    d = run_copy / "fll"
    # what a kill between the last checkpoint and the final validation leaves
    (d / "metrics.json").write_text("")
    (d / "model.keras").unlink()
    assert train(cfg_path, data_root, run_copy, "--steps", 4, "--resume") == 0
    lines = metrics(d)
    assert [r["step"] for r in lines] == [4] and "nme_clean" in lines[0]
    assert (d / "model.keras").is_file()


@pytest.mark.slow
def test_resume_with_other_data_or_config_is_refused_unless_forced(run_copy, cfg_path,
                                                                   data_root, tmp_path,
                                                                   capsys):
    other = tmp_path / "other"
    shutil.copytree(data_root, other)
    victim = next((other / "afw").glob("*.pts"))
    victim.unlink()
    next((other / "afw").glob(victim.stem + ".*")).unlink()
    assert train(cfg_path, other, run_copy, "--steps", 6, "--resume") == 2
    err = capsys.readouterr().err
    assert "training data" in err and "--force" in err
    cfg2 = write_yaml(tmp_path / "lr.yaml", tiny(train={"checkpoint_every": 2,
                                                         "eval_every": 1000,
                                                         "keep_checkpoints": 3,
                                                         "learning_rate": 0.5},
                                                  data={"max_val_images": 4}))
    assert train(cfg2, data_root, run_copy, "--steps", 6, "--resume") == 2
    assert "configuration" in capsys.readouterr().err
    assert checkpoint_numbers(run_copy / "fll" / "checkpoints") == [2, 4]
    assert train(cfg_path, other, run_copy, "--steps", 6, "--resume", "--force") == 0
    assert "(--force)" in capsys.readouterr().err


# ------------------------------------------------------------------- impossible flags
@pytest.mark.parametrize("flag,value", [("--steps", "-5"), ("--steps", "0"),
                                        ("--batch-size", "0"), ("--steps", "abc")])
def test_train_impossible_numeric_flag_is_a_usage_error(tmp_path, flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        train_cli.main(["--stage", "fll", flag, value, "--workdir", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and value in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_training_loop_refuses_non_positive_steps(tmp_path):
    from fadenn_tf.errors import ConfigError
    from fadenn_tf.training.loop import LoopSpec, run_loop
    spec = LoopSpec("fll", None, None, None, {"step": tf.Variable(0, dtype=tf.int64)}, -5, 8)
    with pytest.raises(ConfigError, match="steps must be >= 1, got -5"):
        run_loop(spec, None, None, tmp_path)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- bad config
@pytest.mark.parametrize("section,bad,key", [
    ("train", {"steps": {"fll": "abc"}}, "train.steps.fll"),
    ("model", {"fll": {"width": 0.125, "blocks": ["a", "b", "c"]}}, "fll.blocks[0]"),
    ("train", {"lr_decay_steps": 0}, "train.lr_decay_steps"),
    ("train", {"keep_checkpoints": 0}, "train.keep_checkpoints"),
    ("train", {"eval_every": 0}, "train.eval_every"),
    ("train", {"checkpoint_every": -1}, "train.checkpoint_every"),
    ("train", {"learning_rate": float("nan")}, "train.learning_rate"),
    ("model", {"iid": {"input_size": 32, "filters": [4, "x"]}}, "iid.filters[1]"),
    ("data", {"augment": {"occlusion_prob": 2.0}}, "data.augment.occlusion_prob"),
])
def test_bad_config_value_names_key_before_data_is_read(tmp_path, section, bad, key, capsys):
    cfg = tiny()
    for k, v in bad.items():
        cfg[section][k] = {**cfg[section][k], **v} if isinstance(v, dict) and k in \
            cfg[section] and isinstance(cfg[section][k], dict) else v
    path = write_yaml(tmp_path / "bad.yaml", cfg)
    rc = train_cli.main(["--stage", "fll", "--config", str(path), "--data",
                         str(tmp_path / "never-read"), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{path}: {key}:" in err, err
    assert "never-read" not in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------------------ two writers
HOLD_SCRIPT = """
import sys, time
from fadenn_tf.utils.lock import folder_lock
with folder_lock(sys.argv[1], "holder"):
    print("locked", flush=True)
    time.sleep(600)
"""


def hold_lock(folder):
    """A child process holding `folder`'s lock (returned once it holds it)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(folder)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_names_holder_and_stale_lock_is_taken_over(tmp_path):
    proc = hold_lock(tmp_path / "out")
    try:
        with pytest.raises(LockedError, match=f"pid {proc.pid}, holder"):
            with folder_lock(tmp_path / "out", "second"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / "out" / LOCK_NAME).is_file()      # the killed holder's file stays
    with folder_lock(tmp_path / "out", "third"):          # ... and is taken over
        assert f"pid {os.getpid()}, third" in (tmp_path / "out" / LOCK_NAME).read_text()


def test_second_train_on_one_workdir_is_refused(tmp_path, cfg_path, data_root, capsys):
    wd = tmp_path / "w"
    with folder_lock(wd, "first-train"):
        assert train(cfg_path, data_root, wd, "--steps", 2) == 2
    err = capsys.readouterr().err
    assert f"{wd}: in use by another process (pid {os.getpid()}, first-train)" in err
    assert not (wd / "fll").exists()


# ------------------------------------------------- exported bytes signature, stale temps
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny FADeNN-D exported by the CLI into a root where a killed export left a
    temporary folder: (root, the loaded predict_image_bytes signature, CLI stderr)."""
    import keras
    from fadenn_tf.cli import export as export_cli
    from fadenn_tf.deploy import signatures
    from fadenn_tf.config import config_from_dict
    from fadenn_tf.models import build_variant, save_model
    keras.utils.set_random_seed(0)
    tmp = tmp_path_factory.mktemp("export")
    model_file = save_model(build_variant(config_from_dict(tiny()).model, "D"),
                            tmp / "tiny.keras")
    root = tmp / "fadenn_d"
    (root / ".1.tmp-killed" / "variables").mkdir(parents=True)
    (root / "tflite-0" / ".fadenn_float32.tflite.tmp-killed").mkdir(parents=True)
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert export_cli.main(["--model", str(model_file), "--out", str(root)]) == 0
    loaded = tf.saved_model.load(str(root / "1"))
    return root, loaded.signatures[signatures.BYTES_SIGNATURE], err.getvalue()


def encoded(h=64, w=80, seed=0):
    import cv2
    from fixtures import face_image, face_landmarks
    img = face_image((h, w), face_landmarks((h, w), rng=seed), rng=seed)
    return cv2.imencode(".png", img[:, :, ::-1])[1].tobytes()


@pytest.mark.slow
def test_next_export_removes_killed_exports_temporaries(exported):
    root, _, err = exported
    assert not (root / ".1.tmp-killed").exists()
    assert not (root / "tflite-0" / ".fadenn_float32.tflite.tmp-killed").exists()
    assert "left by a killed export" in err
    assert (root / "1" / "saved_model.pb").is_file()


@pytest.mark.slow
def test_bytes_signature_flags_bad_boxes_and_keeps_good_rows(exported):
    import numpy as np
    _, sig, _ = exported
    good = [20.0, 16.0, 60.0, 56.0]
    bad = {"nan": [float("nan"), 0, 10, 10], "inf": [0, 0, float("inf"), float("inf")],
           "inverted": [60, 56, 20, 16], "zero-area": [20, 16, 20, 56],
           "right of image": [200, 10, 260, 50], "above image": [10, -90, 50, -40]}
    img = encoded()
    boxes = [good, *bad.values(), good]
    out = sig(image_bytes=tf.constant([img] * len(boxes)),
              boxes=tf.constant(boxes, tf.float32))
    valid, lm, probs = (out["valid"].numpy(), out["landmarks"].numpy(),
                        out["noise_probs"].numpy())
    assert valid.tolist() == [True] + [False] * len(bad) + [True], dict(zip(bad, valid[1:]))
    assert np.isnan(lm[1:-1]).all() and np.isnan(probs[1:-1]).all()
    alone = sig(image_bytes=tf.constant([img]), boxes=tf.constant([good]))["landmarks"]
    assert np.isfinite(lm[[0, -1]]).all()
    np.testing.assert_allclose(lm[0], alone.numpy()[0], atol=1e-3)


@pytest.mark.slow
def test_bytes_signature_not_an_image_flags_its_row_only(exported):
    import numpy as np
    _, sig, _ = exported
    out = sig(image_bytes=tf.constant([encoded(), b"not an image", b"", encoded(seed=1)]),
              boxes=tf.constant([[20.0, 16.0, 60.0, 56.0]] * 4))
    assert out["valid"].numpy().tolist() == [True, False, False, True]
    assert np.isfinite(out["landmarks"].numpy()[[0, 3]]).all()


@pytest.mark.slow
def test_bytes_signature_batch_mismatch_names_both_sizes(exported):
    _, sig, _ = exported
    with pytest.raises(tf.errors.InvalidArgumentError) as exc:
        sig(image_bytes=tf.constant([encoded(), encoded()]),
            boxes=tf.constant([[20.0, 16.0, 60.0, 56.0]]))
    msg = str(exc.value)
    assert "image_bytes has] [2] [images but boxes has] [1]" in msg, msg[:500]


@pytest.mark.slow
def test_bytes_signature_corrupt_body_behind_a_good_header_fails_the_call(exported):
    """Documented limit: TF's decoders raise on a corrupt body; a graph cannot catch it."""
    _, sig, _ = exported
    broken = encoded()[:60]          # a PNG header, then nothing
    with pytest.raises(tf.errors.InvalidArgumentError):
        sig(image_bytes=tf.constant([encoded(), broken]),
            boxes=tf.constant([[20.0, 16.0, 60.0, 56.0]] * 2))


# ------------------------------------------------- skipped inputs, corrupt model, writers
@pytest.fixture(scope="module")
def shape_model(tmp_path_factory):
    from test_predict import constant_shape_model, crop_shape
    return constant_shape_model(tmp_path_factory.mktemp("shape") / "m.keras", crop_shape())


@pytest.fixture
def bad_vw_root(tmp_path):
    """300-VW tree: 114 with a NaN .pts frame, 410 whose vid.avi is not a video, 505 cut in
    half."""
    from fixtures import make_300vw
    root = tmp_path / "vw"
    make_300vw(root, ("114", "410", "505"), frames=8, size=(64, 80))
    pts = root / "114" / "annot" / "000002.pts"
    pts.write_text(pts.read_text().replace(pts.read_text().splitlines()[3].split()[0], "nan",
                                           1))
    (root / "410" / "vid.avi").write_text("not a video\n")
    video = root / "505" / "vid.avi"
    video.write_bytes(video.read_bytes()[:video.stat().st_size // 2])
    return root


def test_track_evaluate_reports_every_skipped_input(bad_vw_root, shape_model, tmp_path,
                                                    capsys):
    from fadenn_tf import track
    out = tmp_path / "ev"
    rc = track.main(["--evaluate", str(bad_vw_root), "--videos", "114", "410", "505",
                     "--model", str(shape_model), "--init-from-gt", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    saved = json.loads((out / "tracking_results.json").read_text())
    skipped = {Path(s["path"]).relative_to(bad_vw_root).as_posix(): s["problem"]
               for s in saved["skipped"]}
    assert set(skipped) == {"114/annot/000002.pts", "410/vid.avi", "505/vid.avi"}, skipped
    assert "decoding stopped after" in skipped["505/vid.avi"]
    for path in skipped:
        assert str(bad_vw_root / path) in err
    assert "3 input(s) skipped" in err


def test_track_init_box_outside_the_frame_is_an_error(bad_vw_root, shape_model, tmp_path,
                                                      capsys):
    from fadenn_tf import track
    video = bad_vw_root / "114" / "vid.avi"
    rc = track.main([str(video), "--model", str(shape_model), "--out", str(tmp_path / "t"),
                     "--init-box", "500,500,600,600"])
    err = capsys.readouterr().err
    assert rc == 2 and "lies entirely outside its 80x64 frames" in err and str(video) in err


def test_evaluate_names_every_skipped_file_in_screen_and_results(tmp_path, shape_model,
                                                                  capsys):
    from fadenn_tf import evaluate
    from fixtures import make_folder
    written = make_folder(tmp_path / "data", n=5, subfolders=("",), size=(64, 80))
    bad = written[:3]
    for w in bad:                         # 3 unusable .pts of 5
        w.pts_path.write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    out = tmp_path / "ev"
    rc = evaluate.main(["--model", f"m={shape_model}", "--data", str(tmp_path / "data"),
                        "--format", "folder", "--split", "all", "--conditions", "clean",
                        "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    saved = json.loads((out / "results.json").read_text())
    assert sorted(s["path"] for s in saved["skipped"]) == sorted(str(w.pts_path) for w in bad)
    for w in bad:
        assert str(w.pts_path) in err


@pytest.mark.parametrize("command", ["predict", "evaluate", "track"])
def test_corrupt_saved_model_is_a_clear_error(tmp_path, command, capsys):
    import importlib
    model = tmp_path / "exported" / "1"
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "img.png").write_bytes(encoded())
    args = {"predict": [str(tmp_path / "img.png"), "--model", str(model), "--out",
                        str(tmp_path / "o")],
            "evaluate": ["--model", f"m={model}", "--out", str(tmp_path / "o")],
            "track": [str(tmp_path / "v.avi"), "--model", str(model), "--out",
                      str(tmp_path / "o")]}[command]
    if command == "track":
        from fixtures import make_300vw
        make_300vw(tmp_path / "vw", ("114",), frames=2, size=(32, 32))
        args[0] = str(tmp_path / "vw" / "114" / "vid.avi")
    rc = importlib.import_module(f"fadenn_tf.{command}").main(args)
    err = capsys.readouterr().err
    assert rc == 2 and f"{model}: not a loadable SavedModel" in err, err
    assert "Traceback" not in err


def test_second_predict_into_one_out_is_refused(tmp_path, shape_model, capsys):
    from fadenn_tf import predict
    (tmp_path / "img.png").write_bytes(encoded())
    out = tmp_path / "o"
    args = [str(tmp_path / "img.png"), "--model", str(shape_model), "--out", str(out),
            "--boxes", str(tmp_path / "boxes.json")]
    (tmp_path / "boxes.json").write_text(json.dumps({"img.png": [20, 16, 60, 56]}))
    proc = hold_lock(out)
    try:
        assert predict.main(args) == 2
        assert f"in use by another process (pid {proc.pid}, holder)" in capsys.readouterr().err
        assert not (out / "summary.json").exists()
    finally:
        proc.kill()
        proc.wait()
    assert predict.main(args) == 0                    # the killed holder's lock is taken over
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize("command,flag", [
    ("predict", "--batch-size"), ("evaluate", "--batch-size"), ("evaluate", "--frame-step"),
    ("export", "--repeats"), ("export", "--version"), ("track", "--threshold-nme")])
def test_impossible_numeric_flags_of_every_command(command, flag, capsys):
    import importlib
    main = importlib.import_module(f"fadenn_tf.{command}").main
    base = {"predict": ["x.png", "--model", "m", "--out", "o"],
            "evaluate": ["--model", "m"], "export": ["--model", "m", "--out", "o"],
            "track": ["v.avi", "--model", "m", "--out", "o"]}[command]
    for value in ("0", "-3"):
        with pytest.raises(SystemExit) as exc:
            main(base + [flag, value])
        assert exc.value.code == 2
        assert f"argument {flag}: must be > 0, got {value}" in capsys.readouterr().err


@pytest.mark.slow
def test_train_seed_also_seeds_the_weights(tmp_path, cfg_path, data_root):
    import numpy as np
    values = []
    for name in ("a", "b"):
        assert train(cfg_path, data_root, tmp_path / name, "--steps", 1) == 0
        reader = tf.train.load_checkpoint(str(tmp_path / name / "fll" / "checkpoints" /
                                              "ckpt-1"))
        keys = sorted(k for k in reader.get_variable_to_shape_map()
                      if k.startswith("model/") and "OPTIMIZER_SLOT" not in k)
        values.append({k: reader.get_tensor(k) for k in keys})
    assert values[0].keys() == values[1].keys() and len(values[0]) > 10
    for k in values[0]:
        np.testing.assert_allclose(values[0][k], values[1][k], rtol=1e-4, atol=1e-6,
                                   err_msg=k)
