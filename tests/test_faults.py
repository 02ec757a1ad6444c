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
from fixtures import make_300w
from test_training import checkpoint_numbers, checkpoint_value, scalars, tiny, write_yaml

STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faultdata") / "300w"
    make_300w(root, n_per_folder=4, size=(48, 48))
    return root


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    """Tiny FLL: checkpoints every 2 steps (keep 3), validation at the end only."""
    cfg = tiny(train={"checkpoint_every": 2, "eval_every": 1000, "keep_checkpoints": 3},
               data={"max_val_images": 4})
    return write_yaml(tmp_path_factory.mktemp("faultcfg") / "tiny.yaml", cfg)


def train(cfg_path, data_root, workdir, *extra):
    return train_cli.main(["--stage", "fll", "--config", str(cfg_path), "--data",
                           str(data_root), "--workdir", str(workdir), "--no-progress",
                           *map(str, extra)])


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cfg_path, data_root):
    """A finished 4-step fll run (checkpoints 2 and 4, model.keras, one metrics line),
    copied fresh for each test by `run_copy`."""
    wd = tmp_path_factory.mktemp("finished") / "w"
    assert train(cfg_path, data_root, wd, "--steps", 4) == 0
    return wd


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
    assert metrics(d)[0]["step"] == 4 and (d / "model.keras").is_file()


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
