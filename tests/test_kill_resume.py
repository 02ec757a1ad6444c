"""Kill tests of the batch commands, run as real processes: a killed `degrade` or `predict`
leaves no process behind, and the same command plus --resume finishes the job without
redoing what the killed run finished (checked by file identity and mtimes)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures import make_300vw, make_300w

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc to find the processes left")


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                FADENN_PROGRESS="lines")


def start(module, args):
    """`python -m fadenn_tf.<module> args` in its own session (process group = its pid)."""
    return subprocess.Popen([sys.executable, "-m", f"fadenn_tf.{module}", *map(str, args)],
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def group_members(pgid):
    """Pids of the live (not zombie) processes of process group `pgid`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out


def assert_no_process_left(pgid, timeout=10.0):
    end = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < end:
        time.sleep(0.2)
    assert not group_members(pgid), f"left behind: {group_members(pgid)}"


def wait_for_lines(path, n, proc, timeout=120.0):
    """Wait until the text file `path` has more than n lines (the process must live)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.is_file() and len(path.read_text().splitlines()) > n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {n + 1} lines after {timeout} s")


def stamps(folder):
    """{relative path: (inode, mtime_ns)} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def journal_keys(out):
    lines = (out / ".degrade-journal.jsonl").read_text().splitlines()[1:]
    return [json.loads(x)["key"] for x in lines if x.strip()]


# ------------------------------------------------------------------------------ degrade
@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_killed_degrade_leaves_no_worker_and_resume_finishes(tmp_path, how, capsys):
    from fadenn_tf.degrade import main
    make_300w(tmp_path / "300w", n_per_folder=7, size=(240, 320))         # 42 stills
    out = tmp_path / "out"
    args = ["--data", str(tmp_path / "300w"), "--out", str(out), "--workers", "2"]
    proc = start("degrade", args)
    wait_for_lines(out / ".degrade-journal.jsonl", 3, proc)   # 3 items finished, more to go
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    assert_no_process_left(proc.pid)
    if how == "SIGTERM":
        assert proc.returncode == 130, err
        assert "continue with the same command plus --resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    finished = journal_keys(out)
    assert 3 <= len(finished) < 42 and not (out / "manifest.json").exists()
    before = stamps(out)
    # without --resume the folder is refused; with it, only the rest is done
    assert main(args + ["--no-progress"]) == 2
    assert "pass --resume to continue" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    res = capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_images"] == 42 and manifest["n_skipped"] == 0
    assert manifest["n_kept_from_earlier_run"] == len(finished)
    assert f"({len(finished)} of them kept from the interrupted run)" in res.out
    assert "degrading: img 42/42 (100%)" in res.err          # progress lines, counted on
    after = stamps(out)
    for key in finished:       # every file of a finished item is untouched
        for folder in ["clean"] + manifest["conditions"]:
            for rel in (key, key[:-4] + ".pts"):
                assert after[f"{folder}/{rel}"] == before[f"{folder}/{rel}"], (folder, rel)
    keys = journal_keys(out)   # the rest done once each
    assert len(keys) == len(set(keys)) == 42
    assert len([p for p in after if p.endswith(".png")]) == 42 * 13
    assert not [p for p in after if ".tmp-" in p]
    assert len(json.loads((out / "crops.json").read_text())) == 42


def test_resume_of_videos_redoes_only_the_unfinished_one(tmp_path):
    """300-VW: a video whose journal line is missing (killed while writing it) is redone;
    the finished one is kept; a torn journal line is ignored."""
    from fadenn_tf.degrade import main
    make_300vw(tmp_path / "vw", video_ids=("114", "410"), frames=3, size=(48, 64))
    out = tmp_path / "n"
    args = ["--data", str(tmp_path / "vw"), "--out", str(out), "--conditions",
            "blur-1,color_scale-3", "--no-progress"]
    assert main(args) == 0
    journal = out / ".degrade-journal.jsonl"
    lines = journal.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines[1:]] == ["114/vid.avi", "410/vid.avi"]
    # as a kill while 410 was written leaves it: a partial file, a torn line
    (out / "blur-1" / "410" / "vid.avi").write_bytes(b"partial")
    (out / "blur-1" / "410" / ".vid.avi.tmp-99.avi").write_bytes(b"temporary")
    killed = out / "color_scale-3" / "410" / ".vid.avi.tmp-k1ll3d"   # the video writer's
    killed.mkdir()
    (killed / "vid.avi").write_bytes(b"half a video")
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    before = stamps(out)
    assert main(args + ["--resume"]) == 0
    after = stamps(out)
    assert after["blur-1/114/vid.avi"] == before["blur-1/114/vid.avi"]
    assert after["color_scale-3/114/vid.avi"] == before["color_scale-3/114/vid.avi"]
    assert after["blur-1/410/vid.avi"] != before["blur-1/410/vid.avi"]
    assert not [p for p in after if ".tmp-" in p]
    from fadenn_tf.data.datasets import index_300vw
    samples, report = index_300vw(out / "blur-1")
    assert len(samples) == 6 and not report.skipped
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_videos"] == 2 and manifest["n_kept_from_earlier_run"] == 1
    # a finished file changed since (another size): that video is redone, the other kept
    with open(out / "blur-1" / "114" / "vid.avi", "ab") as f:
        f.write(b"x")
    before = stamps(out)
    assert main(args + ["--resume"]) == 0
    after = stamps(out)
    assert after["blur-1/114/vid.avi"] != before["blur-1/114/vid.avi"]
    assert after["blur-1/410/vid.avi"] == before["blur-1/410/vid.avi"]


def test_resume_with_other_settings_names_the_difference(tmp_path, capsys):
    from fadenn_tf.degrade import main
    make_300w(tmp_path / "300w", n_per_folder=1, size=(48, 64))
    args = ["--data", str(tmp_path / "300w"), "--out", str(tmp_path / "o"), "--conditions",
            "blur-1", "--reference-size", "32", "--workers", "1", "--no-progress"]
    assert main(args) == 0
    assert main(args + ["--resume", "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "the earlier run used other settings (seed: 0, now 5)" in err and "--overwrite" in err
    assert main(args + ["--resume"]) == 0
    assert "(6 of them kept from the interrupted run)" in capsys.readouterr().out


# ------------------------------------------------------------------------------ predict
def test_killed_predict_resumes_without_redoing_finished_images(tmp_path, capsys):
    import numpy as np
    from fadenn_tf import predict
    from fixtures import face_image, face_landmarks, write_image
    from test_predict import constant_shape_model, crop_shape
    model = constant_shape_model(tmp_path / "m.keras", crop_shape())
    n = 150
    for i in range(n):
        lm = face_landmarks((64, 80), rng=i)
        write_image(tmp_path / "in" / f"f{i:03d}.png", face_image((64, 80), lm, rng=i))
    (tmp_path / "boxes.json").write_text(json.dumps(
        {f"f{i:03d}.png": [20, 16, 60, 48] for i in range(n)}))
    out = tmp_path / "out"
    args = [tmp_path / "in", "--model", model, "--out", out, "--boxes",
            tmp_path / "boxes.json", "--batch-size", 1]
    proc = start("predict", args)
    wait_for_lines(out / ".predict-journal.jsonl", 3, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert_no_process_left(proc.pid)
    lines = (out / ".predict-journal.jsonl").read_text().splitlines()[1:]
    finished = [json.loads(x)["key"] for x in lines if x.endswith("}")]
    assert 3 <= len(finished) < n and not (out / "summary.json").exists()
    before = stamps(out)
    assert predict.main([*map(str, args), "--no-progress"]) == 2     # refused: earlier run
    assert "--overwrite" in capsys.readouterr().err
    assert predict.main([*map(str, args), "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == n and summary["n_processed"] == n
    assert [e["name"] for e in summary["images"]] == [f"f{i:03d}" for i in range(n)]
    after = stamps(out)
    for name in finished:
        for f in (f"{name}.pts", f"{name}_overlay.png"):
            assert after[f] == before[f], f
    assert all((out / f"f{i:03d}.pts").is_file() for i in range(n))
    keys = [json.loads(x)["key"] for x in
            (out / ".predict-journal.jsonl").read_text().splitlines()[1:] if x.endswith("}")]
    assert len(keys) == len(set(keys)) == n
    assert np.isfinite([e["faces"][0]["box"] for e in summary["images"]]).all()
