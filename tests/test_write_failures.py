"""A write that fails is an error naming the file, exit status 3, and nothing that claims it.

The full-disk stand-in: the command runs in a subprocess whose file size is capped with
RLIMIT_FSIZE (SIGXFSZ ignored, so an over-long write fails with EFBIG "File too large", as
a full disk fails with ENOSPC)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fadenn_tf.utils.lock import LOCK_NAME

from fixtures import write_image, write_video
from test_predict import constant_shape_model, crop_shape

REPO = Path(__file__).resolve().parents[1]
CAPPED = textwrap.dedent("""
    import resource, runpy, signal, sys
    limit = int(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
""")


def run_capped(limit, *argv, code=None):
    """Run `python -m MODULE ARGS` (or the script `code` with argv) with files capped at
    `limit` bytes -> CompletedProcess."""
    prog = ["-c", CAPPED, str(limit), *argv] if code is None else \
        ["-c", code, str(limit), *argv]
    return subprocess.run([sys.executable, *prog], capture_output=True, text=True,
                          timeout=300, cwd=REPO,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", FADENN_PROGRESS="0",
                                   PYTHONPATH=str(REPO)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return constant_shape_model(tmp_path_factory.mktemp("m") / "m.keras", crop_shape())


def test_predict_on_a_full_disk_fails_with_3_and_lists_no_missing_file(model, tmp_path):
    rng = np.random.default_rng(0)  # noise: its overlay PNG is far above the cap
    for name in ("a", "b"):
        write_image(tmp_path / "in" / f"{name}.png",
                    rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    (tmp_path / "boxes.json").write_text(json.dumps({"a.png": [50, 50, 150, 150],
                                                     "b.png": [50, 50, 150, 150]}))
    out = tmp_path / "out"
    res = run_capped(20_000, "fadenn_tf.predict", str(tmp_path / "in"), "--model", str(model),
                     "--out", str(out), "--boxes", str(tmp_path / "boxes.json"))
    assert res.returncode == 3, res.stderr[-2000:]
    assert "a_overlay.png: could not write it (File too large)" in res.stderr
    assert "Write Error" not in res.stderr and "Traceback" not in res.stderr
    assert "0 errors" not in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    listed = [f for e in summary["images"] for f in
              [e.get("overlay"), *(x["pts"] for x in e.get("faces", []))] if f]
    assert all(Path(f).is_file() for f in listed)
    assert summary["n_errors"] >= 1 and summary["images"][0]["status"] == "error"
    assert not (out / "a.pts").exists()            # the failed image leaves no half result
    assert not (out / LOCK_NAME).exists()
    assert not list(out.glob(".*.tmp-*"))           # no temporary left behind


def test_track_overlay_cut_by_a_full_disk_fails_with_3(model, tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(12)]
    video = write_video(tmp_path / "v.avi", frames)
    out = tmp_path / "t"
    res = run_capped(60_000, "fadenn_tf.track", str(video), "--model", str(model), "--out",
                     str(out), "--init-box", "20,20,76,76", "--failure-detector", "none",
                     "--detector", "haar")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "overlay.avi: could not write it" in res.stderr
    assert not (out / "overlay.avi").exists() and not (out / "track_log.json").exists()


def test_synth_video_cut_by_a_full_disk_fails_with_3_and_leaves_nothing(tmp_path):
    out = tmp_path / "synth"      # one 12-frame video is about 130 kB: the cap cuts it
    res = run_capped(60_000, "fadenn_tf.synth", "--out", str(out), "--train", "0", "--test",
                     "0", "--videos", "1", "--frames", "12")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "vid.avi: could not write it (the video holds" in res.stderr
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []           # no dataset, no temporary folder


SAVE_SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    import tensorflow as tf
    from fadenn_tf.errors import WriteError
    from fadenn_tf.training.loop import save_checkpoint
    limit, folder = int(sys.argv[1]), sys.argv[2]
    v = tf.Variable(tf.zeros([100_000]))           # 400 kB of float32
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), folder, max_to_keep=3)
    save_checkpoint(manager, 1)                    # fits
    big = tf.train.Checkpoint(v=v, w=tf.Variable(tf.ones([200_000])))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        save_checkpoint(tf.train.CheckpointManager(big, folder, max_to_keep=3), 2)
    except WriteError as exc:
        print("WriteError:", exc)
        sys.exit(3)
""")


def test_a_checkpoint_the_disk_cannot_hold_leaves_no_temporary(tmp_path):
    folder = tmp_path / "checkpoints"
    res = run_capped(500_000, str(folder), code=SAVE_SCRIPT)
    assert res.returncode == 3, res.stderr[-2000:]
    assert "ckpt-2: could not write it (File too large; ckpt-1 is the newest" in res.stdout
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"], names
    import tensorflow as tf
    assert tf.train.latest_checkpoint(str(folder)).endswith("ckpt-1")
    assert tf.train.load_checkpoint(str(folder / "ckpt-1")).get_tensor(
        "v/.ATTRIBUTES/VARIABLE_VALUE").shape == (100_000,)


@pytest.mark.slow
def test_train_on_a_full_disk_stops_with_one_line_and_resumes(tmp_path, tiny_data, capsys):
    """Only the capped run needs its own process; the uncapped runs before and after it run
    in this one (TensorFlow already loaded)."""
    from fadenn_tf import train
    wd = tmp_path / "w"
    args = ["--stage", "fll", "--config", str(tiny_data["cfg"]), "--data",
            str(tiny_data["data"]), "--out", str(wd), "--no-progress"]
    assert train.main(args + ["--steps", "2"]) == 0, capsys.readouterr().err[-2000:]
    ckpt = wd / "fll" / "checkpoints"
    before = (ckpt / "ckpt-2.data-00000-of-00001").read_bytes()
    full = run_capped(1_000_000, "fadenn_tf.train", *args, "--steps", "4", "--resume")
    assert full.returncode == 3, full.stderr[-2000:]                 # ckpt-4 needs 1.8 MB
    assert "Traceback" not in full.stderr and "OutOfRangeError" not in full.stderr
    err = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "ckpt-4: could not write it (File too large" in err[0]
    assert not list(ckpt.glob("*_temp*")) and not list(ckpt.glob("ckpt-4*"))
    assert (ckpt / "ckpt-2.data-00000-of-00001").read_bytes() == before
    capsys.readouterr()
    assert train.main(args + ["--steps", "4", "--resume"]) == 0, capsys.readouterr().err[-2000:]
    assert (ckpt / "ckpt-4.index").is_file() and (wd / "fll" / "model.keras").is_file()
