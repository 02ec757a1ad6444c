"""`track` on the shipped models: the LiteRT copies by default (no TensorFlow import), their
failure detector, re-detection by the default detector (UltraFace), and progress lines every
10% of the frames with an ETA in a log."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fadenn_tf import pretrained
from fadenn_tf.benchmark.api_speed import synthetic_clip
from fadenn_tf.detect import UltraFaceDetector
from fadenn_tf.tracking.options import TrackOptions
from fadenn_tf.tracking.tracker import _as_detector, _as_predictor
from fadenn_tf.tracking.video import track_video

from fixtures import write_video

pytestmark = pytest.mark.skipif(
    any(pretrained.litert_path(n) is None for n in pretrained.NAMES),
    reason="no shipped LiteRT copies")
N = 20


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 640x360 clip of N frames: one synthetic face UltraFace finds, drifting slowly."""
    frames, _, _ = synthetic_clip(N, detector=UltraFaceDetector())
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", frames)


@pytest.mark.parametrize("name,kind", [("pretrained", "litert-routed"),
                                       ("pretrained-fll", "litert")])
def test_shipped_names_track_on_their_litert_copy_by_default(name, kind):
    pred = _as_predictor(name)
    assert pred.model.kind == kind
    assert _as_predictor(name, backend="litert-int8").model.kind == kind
    assert isinstance(_as_detector("default"), UltraFaceDetector)


def test_track_video_uses_the_shipped_failure_detector_and_logs_progress(clip, monkeypatch,
                                                                         capsys):
    monkeypatch.setenv("FADENN_PROGRESS", "lines")
    res = track_video("pretrained-fll", clip, TrackOptions(progress=True))
    err = capsys.readouterr().err
    assert res.info["failure_detector"].endswith("failure_detector.npz")
    assert res.info["detector"] == "default"
    assert [r.status for r in res.frames].count("lost") == 0
    assert res.frames[0].source == "detector"
    assert all(r.source == "tracked" and r.score is not None for r in res.frames[1:])
    lines = [ln for ln in err.splitlines() if ln.startswith("tracking: frame")]
    assert len(lines) == 10                                   # every 10% of N frames
    assert lines[0].startswith(f"tracking: frame {N // 10}/{N} (10%)")
    assert all("ETA" in ln for ln in lines[:-1]) and "(100%)" in lines[-1]


def test_track_command_imports_no_tensorflow(clip, tmp_path):
    code = ("import sys\nfrom fadenn_tf.track import main\n"
            "rc = main([sys.argv[1], '--model', 'pretrained', '--out', sys.argv[2], "
            "'--no-overlay', '--no-progress'])\n"
            "print('RESULT', rc, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(clip), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "RESULT 0 False"
    log = json.loads((tmp_path / "out" / "track_log.json").read_text())
    assert log["counts"]["lost"] == 0 and log["n_frames"] == N
    assert log["failure_detector"].endswith("failure_detector.npz")
    assert np.isfinite(log["speed"]["fps_with_detector"])
