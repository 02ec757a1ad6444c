"""Model-free tracking: a face that disappears and comes back, failure checks, 300-VW output
layout, tracking evaluation and the CLI.

The model is a real tiny Keras model predicting one fixed crop shape (see test_predict);
the shape is chosen so that, in the landmark box of the synthetic face, it maps exactly onto
the face's ground truth: on face frames it is a perfect tracker, on blank frames it still
'finds' the face, so only the (real, trained) failure detector can notice the loss.
"""
import json
import shutil

import cv2
import numpy as np
import pytest

from fadenn_tf import detect
from fadenn_tf.data.crop import CropTransform, landmark_box
from fadenn_tf.data.datasets import index_300vw
from fadenn_tf.data.images import video_frame_count
from fadenn_tf.data.pts import write_pts
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.fitcheck.examples import train_failure_detector
from fadenn_tf.inference.predictor import load
from fadenn_tf.track import main
from fadenn_tf.tracking.checks import sanity_problem
from fadenn_tf.tracking.evaluation import evaluate_tracking
from fadenn_tf.tracking.options import TrackOptions, TrackScoring
from fadenn_tf.tracking.video import track_video

from fixtures import write_video
from test_predict import SIZE, constant_shape_model

FRONTAL = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [], "others": [],
           "scale": 40.0, "center": [90.0, 80.0]}
N_FACE1, N_BLANK, N_FACE2 = 5, 3, 4
BLANK_FRAMES = list(range(N_FACE1 + 1, N_FACE1 + N_BLANK + 1))        # 1-based: 6, 7, 8
COMEBACK = N_FACE1 + N_BLANK + 1                                       # 9
N = N_FACE1 + N_BLANK + N_FACE2


class OracleDetector:
    """Returns the known face box on frames that show something, nothing on blank ones."""

    def __init__(self, box):
        self.box = np.asarray(box, np.float64)
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        if image.std() < 3:
            return detect.empty_boxes()
        return self.box[None].copy()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("track")
    img, lm, _ = render_face(11, params=FRONTAL, image_size=(160, 180))
    blank = np.full_like(img, 120)
    frames = [img] * N_FACE1 + [blank] * N_BLANK + [img] * N_FACE2
    video = write_video(d / "clip" / "vid.avi", frames)
    box = landmark_box(lm)
    shape = CropTransform.from_box(box, img.shape[:2], SIZE).apply(lm).astype(np.float32)
    model = constant_shape_model(d / "m.keras", shape)
    fd = train_failure_detector([render_face(s, image_size=128)[:2] for s in range(30)], seed=0)
    fd_path = d / "fd.npz"
    fd.save(fd_path)
    return {"dir": d, "video": video, "lm": lm, "box": box, "model": model, "fd": fd,
            "fd_path": fd_path, "hw": img.shape[:2]}


def test_face_lost_and_found_again_is_logged_and_reinitialised(scene, tmp_path):
    predictor = load(scene["model"], detector=None)
    det = OracleDetector(scene["box"])
    out = tmp_path / "out"
    # shot cuts off: here the failure detector alone must notice the loss
    res = track_video(predictor, scene["video"],
                      TrackOptions(det, failure_detector=scene["fd"], shot_cuts=False),
                      out_dir=out)
    assert len(res.frames) == N
    assert res.no_face_frames == BLANK_FRAMES
    assert res.reinit_frames == [COMEBACK]
    f = {r.frame: r for r in res.frames}
    assert f[1].event == "init" and f[1].source == "detector" and not f[1].reinit
    assert all(f[t].source == "tracked" for t in range(2, N_FACE1 + 1))
    assert all(f[t].source == "tracked" for t in range(COMEBACK + 1, N + 1))
    assert f[COMEBACK].source == "detector" and f[COMEBACK].event == "reinit"
    # the loss: the tracked fit on the first blank frame is rejected by the failure detector
    assert "failure score" in f[BLANK_FRAMES[0]].failure
    assert all(f[t].landmarks is None and f[t].t_detect > 0 for t in BLANK_FRAMES)
    # good fits on face frames, scored as good; detector not called on tracked frames
    for t in [*range(1, N_FACE1 + 1), *range(COMEBACK, N + 1)]:
        np.testing.assert_allclose(f[t].landmarks, scene["lm"], atol=1e-2)
        assert f[t].score > 0.5 and f[t].failure is None
    assert det.calls == 1 + N_BLANK + 1
    assert all(f[t].t_detect == 0 for t in range(2, N_FACE1 + 1))
    # one trace of the model for every frame (fixed [1, S, S, 3] input)
    assert predictor.model.fn.experimental_get_tracing_count() == 1

    # outputs: 300-VW annot numbering (1-based, only frames with a face), log, overlay video
    names = sorted(p.name for p in (out / "annot").iterdir())
    want = [t for t in range(1, N + 1) if t not in BLANK_FRAMES]
    assert names == [f"{t:06d}.pts" for t in want]
    log = json.loads((out / "track_log.json").read_text())
    assert log["no_face_frames"] == BLANK_FRAMES and log["reinit_frames"] == [COMEBACK]
    assert [fr["source"] for fr in log["frames"]][BLANK_FRAMES[0] - 1] is None
    assert log["frames"][COMEBACK - 1]["reinit"] is True
    assert "failure detector" in log["failure_check"]
    assert log["speed"]["fps_without_detector"] > 0
    assert video_frame_count(out / "overlay.avi", exact=True) == N
    cap = cv2.VideoCapture(str(out / "overlay.avi"))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape[:2] == scene["hw"]

    # the written annotations read back as a 300-VW video folder
    root = tmp_path / "vw"
    shutil.copytree(out / "annot", root / "410" / "annot")
    shutil.copy(scene["video"], root / "410" / "vid.avi")
    samples, _ = index_300vw(root, videos=["410"])
    assert sorted(s.frame for s in samples) == [t - 1 for t in want]
    for s in samples:
        np.testing.assert_allclose(s.landmarks, scene["lm"], atol=1e-2)


def test_without_failure_detector_only_sanity_checks_run(scene):
    res = track_video(scene["model"], scene["video"],
                      TrackOptions(OracleDetector(scene["box"]), failure_detector=None,
                                   shot_cuts=False))
    # the constant model 'tracks' through the blank frames: nothing can notice the loss
    assert res.no_face_frames == [] and res.reinit_frames == []
    assert all(r.score is None for r in res.frames)
    assert "sanity checks only" in res.failure_check
    assert "train_failure_detector" in res.failure_check
    # with the shot-cut check (default) the switch to the blank frames drops the track
    res = track_video(scene["model"], scene["video"],
                      TrackOptions(OracleDetector(scene["box"]), failure_detector=None))
    assert res.cut_frames == [BLANK_FRAMES[0], COMEBACK]
    assert res.no_face_frames == BLANK_FRAMES and res.reinit_frames == [COMEBACK]
    assert res.counts() == {"tracked": N - N_BLANK - 2, "re-detected": 2, "lost": N_BLANK,
                            "shot_cuts": 2, "fit_failures": 1, "detector_calls": 2 + N_BLANK}


def test_given_init_box_and_no_detector(scene):
    res = track_video(scene["model"], scene["video"],
                      TrackOptions(None, failure_detector=scene["fd"]), init_box=scene["box"])
    assert res.frames[0].source == "given" and not res.frames[0].reinit
    # without a detector a lost face stays lost
    assert res.no_face_frames == list(range(BLANK_FRAMES[0], N + 1))


def test_sanity_checks(scene):
    lm, hw, box = scene["lm"], scene["hw"], scene["box"]
    assert sanity_problem(lm, hw, box) is None
    assert "left the frame" in sanity_problem(lm + [200, 0], hw)
    assert "degenerate" in sanity_problem((lm - lm.mean(0)) * 0.05 + lm.mean(0), hw)
    squashed = lm.copy()
    squashed[:, 1] = lm[:, 1].mean() + (lm[:, 1] - lm[:, 1].mean()) * 0.2
    assert "aspect" in sanity_problem(squashed, hw)
    assert "size" in sanity_problem(lm, hw, np.asarray(box) * [1, 1, 3, 3])
    bad = lm.copy()
    bad[3] = np.nan
    assert "non-finite" in sanity_problem(bad, hw)


def _vw_root(scene, tmp_path):
    root = tmp_path / "vw"
    (root / "410" / "annot").mkdir(parents=True)
    shutil.copy(scene["video"], root / "410" / "vid.avi")
    for t in range(1, N + 1):      # every frame annotated, blank ones with the last position
        write_pts(root / "410" / "annot" / f"{t:06d}.pts", scene["lm"])
    return root


def test_evaluate_tracking_counts_no_face_frames_as_failures(scene, tmp_path):
    root = _vw_root(scene, tmp_path)
    res = evaluate_tracking(scene["model"], root,
                            TrackOptions(OracleDetector(scene["box"]),
                                         failure_detector=scene["fd"]),
                            TrackScoring(category=3))
    v = res["videos"]["410"]
    assert v["n"] == N and v["n_no_face"] == N_BLANK and v["n_reinit"] == 1
    assert v["fr"] == pytest.approx(N_BLANK / N)
    assert v["mean_nme"] < 1e-3
    assert v["auc"] == pytest.approx((N - N_BLANK) / N, abs=1e-2)
    assert res["pooled"]["n"] == N and res["normalizer"] == "diagonal"
    assert res["threshold"] == 0.08


@pytest.fixture
def oracle_registered(scene):
    detect.register_detector("oracle-test", lambda: OracleDetector(scene["box"]),
                             overwrite=True)
    yield "oracle-test"
    detect._REGISTRY.pop("oracle-test", None)


def test_cli_track_and_evaluate(scene, tmp_path, capsys, oracle_registered):
    out = tmp_path / "out"
    code = main([str(scene["video"]), "--model", str(scene["model"]), "--out", str(out),
                 "--detector", oracle_registered, "--failure-detector",
                 str(scene["fd_path"])])
    cap = capsys.readouterr()
    assert code == 0
    assert "frames/s without detector time" in cap.out and "frames/s with it" in cap.out
    assert f"no face in {N_BLANK} frames" in cap.err
    assert f"{N - N_BLANK - 2} tracked, 2 re-detected, {N_BLANK} lost" in cap.out
    log = json.loads((out / "track_log.json").read_text())
    assert [fr["status"] for fr in log["frames"]].count("lost") == N_BLANK
    assert sum(log["counts"][k] for k in ("tracked", "re-detected", "lost")) == N
    assert (out / "overlay.avi").is_file() and (out / "track_log.json").is_file()
    assert len(list((out / "annot").glob("*.pts"))) == N - N_BLANK

    root = _vw_root(scene, tmp_path)
    code = main(["--evaluate", str(root), "--model", str(scene["model"]), "--detector",
                 oracle_registered, "--failure-detector", str(scene["fd_path"]),
                 "--out", str(tmp_path / "ev"), "--category", "3"])
    cap = capsys.readouterr()
    assert code == 0
    assert "normaliser: diagonal" in cap.out and "AUC@0.08" in cap.out and "FR@0.08" in cap.out
    assert "pooled" in cap.out
    saved = json.loads((tmp_path / "ev" / "tracking_results.json").read_text())
    assert saved["pooled"]["fr"] == pytest.approx(N_BLANK / N)

    # bad input: a clear error and exit code 2
    assert main([str(tmp_path / "nope.avi"), "--model", str(scene["model"]), "--out",
                 str(out), "--detector", oracle_registered]) == 2
    assert "nope.avi" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(scene["video"]), "--model", "m", "--init-box", "1,2,3"])


# ------------------------------------------------------------ shot cuts and a face leaving

class SceneDetector:
    """Finds a face box only in frames it was told about (matched by pixel content)."""

    def __init__(self, pairs, default=None):
        self.pairs = [(np.asarray(img, np.float32), np.asarray(b, np.float64))
                      for img, b in pairs]
        self.default = default
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        for img, box in self.pairs:
            if np.abs(img - image).mean() < 0.5:
                return box[None].copy()
        return (detect.empty_boxes() if self.default is None
                else np.asarray(self.default, np.float64)[None])


@pytest.fixture(scope="module")
def shots(scene):
    params_b = dict(FRONTAL, center=[120.0, 95.0])
    img_b, lm_b, _ = render_face(23, params=params_b, image_size=scene["hw"])
    img_a, _, _ = render_face(11, params=FRONTAL, image_size=scene["hw"])
    return img_a, img_b, landmark_box(lm_b)


def test_shot_cut_detector():
    from fadenn_tf.tracking.checks import ShotCutDetector
    img_a, _, _ = render_face(11, params=FRONTAL, image_size=(160, 180))
    img_b, _, _ = render_face(23, params=FRONTAL, image_size=(160, 180))
    cuts = ShotCutDetector()
    assert cuts(img_a) is None                                  # first frame: never a cut
    assert cuts(img_a) is None
    assert cuts(np.roll(img_a, 2, axis=1)) is None              # small motion: no cut
    assert "shot cut" in cuts(img_b)                            # another scene
    assert "shot cut" in cuts((img_b * 0.2).astype(np.uint8))   # lights out
    with pytest.raises(ValueError, match="thresholds"):
        ShotCutDetector(hist_threshold=0)


def test_shot_cut_reinitialises_the_track(scene, shots):
    from fadenn_tf.tracking.records import TrackResult
    from fadenn_tf.tracking.tracker import Tracker
    img_a, img_b, box_b = shots
    frames = [img_a] * 4 + [img_b] * 4
    runs = {}
    for name, cuts in (("default", "default"), ("off", None)):
        det = SceneDetector([(img_a, scene["box"]), (img_b, box_b)])
        tracker = Tracker(load(scene["model"], detector=None), det, cut_detector=cuts)
        runs[name] = (TrackResult("clip", [tracker.step(f) for f in frames]), det)
    res, det = runs["default"]
    assert res.cut_frames == [5] and res.reinit_frames == [5]
    assert [r.status for r in res.frames] == (["re-detected"] + ["tracked"] * 3
                                              + ["re-detected"] + ["tracked"] * 3)
    assert "shot cut" in res.frames[4].failure and det.calls == 2
    np.testing.assert_allclose(res.frames[4].box, box_b)
    # the new face's box is followed after the cut, not the old one
    for r in res.frames[4:]:
        assert np.allclose(landmark_box(r.landmarks), box_b, atol=25)
    assert res.counts()["tracked"] == 6 and res.counts()["re-detected"] == 2
    # without the check the stale box of the first shot is 'tracked' through the cut
    off, det_off = runs["off"]
    assert off.cut_frames == [] and off.reinit_frames == [] and det_off.calls == 1
    assert not np.allclose(landmark_box(off.frames[4].landmarks), box_b, atol=25)


def test_face_leaving_is_lost_and_a_detector_box_failing_the_check_is_not_reported(
        scene, shots):
    from fadenn_tf.tracking.records import TrackResult
    from fadenn_tf.tracking.tracker import Tracker
    img_a, _, _ = shots
    x0, y0, x1, y1 = (int(v) for v in scene["box"])
    gone = img_a.copy()   # the face leaves: its region shows background colour
    gone[max(0, y0 - 15):y1 + 10, max(0, x0 - 10):x1 + 10] = np.median(
        img_a[:8].reshape(-1, 3), axis=0).astype(np.uint8)
    frames = [img_a] * 3 + [gone] * 3 + [img_a] * 3
    # a detector that always 'finds' the face box, also where there is none
    det = SceneDetector([], default=scene["box"])
    tracker = Tracker(load(scene["model"], detector=None), det, scene["fd"])
    res = TrackResult("clip", [tracker.step(f) for f in frames])
    assert res.cut_frames == []                    # no cut: only the face region changed
    assert [r.status for r in res.frames] == (["re-detected"] + ["tracked"] * 2
                                              + ["lost"] * 3
                                              + ["re-detected"] + ["tracked"] * 2)
    for r in res.frames[3:6]:
        assert r.landmarks is None and r.source is None and r.score is None
        assert "detector: failure score" in r.failure
    assert res.no_face_frames == [4, 5, 6] and res.reinit_frames == [7]
    assert res.counts() == {"tracked": 4, "re-detected": 2, "lost": 3, "shot_cuts": 0,
                            "fit_failures": 3, "detector_calls": 5}
