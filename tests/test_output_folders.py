"""An output folder holding an earlier run is refused without --overwrite (which deletes that
run's files first), and the folder lock does not outlive its run."""
import json
import os

import numpy as np
import pytest

from fadenn_tf.cli import predict, track
from fadenn_tf.utils.lock import LOCK_NAME, LockedError, folder_lock

from fixtures import write_image, write_video
from test_predict import constant_shape_model, crop_shape


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return constant_shape_model(tmp_path_factory.mktemp("m") / "m.keras", crop_shape())


def _listed(summary):
    return {f for e in summary["images"] for f in
            [e.get("overlay"), *(x["pts"] for x in e.get("faces", []))] if f}


def test_second_predict_into_one_out_is_refused_or_replaces_the_first(model, tmp_path,
                                                                      capsys):
    face = np.full((64, 64, 3), 90, np.uint8)
    first = [write_image(tmp_path / "in1" / f"{n}.png", face) for n in ("a", "b")]
    second = write_image(tmp_path / "in2" / "c.png", face)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({n: [16, 16, 48, 48] for n in ("a.png", "b.png", "c.png")}))
    out = tmp_path / "out"
    common = ["--model", str(model), "--out", str(out), "--boxes", str(boxes)]
    assert predict.main([str(p) for p in first] + common) == 0
    before = sorted(p.name for p in out.iterdir())
    assert predict.main([str(second)] + common) == 2
    assert "holds the outputs of an earlier predict run (a.pts, a_overlay.png, b.pts and " \
           "2 more)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before      # the first run is untouched
    assert predict.main([str(second)] + common + ["--overwrite"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    files = {str(p) for p in out.iterdir()          # (hidden: the run's own bookkeeping)
             if p.name != "summary.json" and not p.name.startswith(".")}
    assert files == _listed(summary) == {str(out / "c.pts"), str(out / "c_overlay.png")}
    # an --out inside an input folder: its outputs would become inputs -> refused
    assert predict.main([str(tmp_path / "in1")] + common[:2] + [
        "--out", str(tmp_path / "in1" / "landmarks"), "--overwrite"]) == 2
    assert "is inside the input folder" in capsys.readouterr().err


def test_track_out_with_an_earlier_run_needs_overwrite(model, tmp_path, capsys):
    video = write_video(tmp_path / "v.avi", [np.full((64, 64, 3), 90, np.uint8)] * 3)
    out = tmp_path / "t"
    argv = [str(video), "--model", str(model), "--out", str(out), "--init-box", "16,16,48,48",
            "--failure-detector", "none", "--no-progress"]
    assert track.main(argv) == 0
    (out / "annot" / "000099.pts").write_text("from a longer video")
    assert track.main(argv) == 2
    assert "earlier track run" in capsys.readouterr().err
    assert track.main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in (out / "annot").iterdir()) == [
        "000001.pts", "000002.pts", "000003.pts"]


def test_no_lock_file_outlives_its_run(model, tmp_path):
    face = write_image(tmp_path / "a.png", np.full((64, 64, 3), 90, np.uint8))
    assert predict.main([str(face), "--model", str(model), "--out", str(tmp_path / "o"),
                         "--no-overlay"]) == 1
    assert not (tmp_path / "o" / LOCK_NAME).exists()
    with folder_lock(tmp_path / "x", "first"):
        assert (tmp_path / "x" / LOCK_NAME).read_text() == f"pid {os.getpid()}, first\n"
        with pytest.raises(LockedError, match=r"in use by another process \(pid \d+, first\)"):
            with folder_lock(tmp_path / "x", "second"):
                pass
    assert list((tmp_path / "x").iterdir()) == []


def test_a_lock_on_the_deleted_lock_file_does_not_block_the_folder(tmp_path):
    """The holder deletes its file at the end: a process that opened that file before and
    flocks it now holds the lock of a file no longer in the folder, so the folder is free."""
    import fcntl
    folder = tmp_path / "x"
    with folder_lock(folder, "holder"):
        stale = os.open(folder / LOCK_NAME, os.O_RDWR)        # a waiter's open file
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)          # it gets the old file's lock
    try:
        with folder_lock(folder, "next"):                      # ... which no longer counts
            assert (folder / LOCK_NAME).read_text().endswith("next\n")
    finally:
        os.close(stale)
