"""Model-free face tracking on videos (paper section IV-D) and its 300-VW evaluation.

Protocol, per frame t (`track_video`):
1. If frame t-1 gave an accepted estimate, the box of frame t is the tight landmark box of
   those landmarks (source "tracked"): no detector runs.
2. The landmarks are fitted in that box (the FLL crop: box grown to 2x, clipped, resized) and
   checked: sanity checks (finite points, at most half of them outside the frame, a landmark
   box of at least `min_face` pixels with an aspect ratio <= 2, a size within 0.5x-2x of
   the box it was fitted in) and, when a failure detector is given, its probability of a
   good fit (fadenn_tf.failure_detector, logistic regression over patches around the
   landmarks) must be >= its threshold.
3. A shot cut (ShotCutDetector: histogram distance or frame difference to the previous
   frame) drops the track before step 1.
4. On a failed check, a cut, at the first frame, or when the face was lost, the face
   detector re-initialises (source "detector"; at the first frame a given --init-box /
   --init-pts is used instead, source "given"), and its fit is checked the same way. A fit
   that fails the check, or a detector that finds nothing, marks the frame "lost" (no
   landmarks, no .pts): a face is never reported where the check says there is none. The
   next frame asks the detector again.
Each frame's status is "tracked", "re-detected" or "lost"; the log and the printed summary
count them (they sum to the number of frames).

Without a failure detector only the sanity checks catch failures (the log says so). Train
one on the synthetic data (or any dataset the indexers read) with
    python -m fadenn_tf.train_failure_detector --out fd.npz [--data DIR]

Command line
------------
    python -m fadenn_tf.track VIDEO --model M --out DIR [--failure-detector FILE]
        [--failure-threshold P] [--detector default] [--no-equalize] [--detect-width PX] ...
        [--init-pts FILE | --init-box x0,y0,x1,y1] [--no-shot-cuts] [--no-overlay]
writes DIR/annot/%06d.pts (300-VW layout, 1-based frame numbers; frames with no face have
no file and are listed in the log), DIR/overlay.avi (MJPG; box green = tracked, orange =
detector, blue = given) and DIR/track_log.json (per frame: box source, failure score and
reason, re-initialised yes/no, times), and prints frames/s with and without detector time.

    python -m fadenn_tf.track --evaluate ROOT --model M [--category 3 | --videos 410 411]
        [--normalizer diagonal] [--nme-threshold 0.08] [--init-from-gt] [--out DIR]
tracks every video of a 300-VW layout (ROOT "synthetic" = the built-in synthetic videos)
and prints per-video and pooled NME, AUC@0.08 and FR@0.08 (normaliser named; frames where
tracking gave no face count as failures), writing DIR/tracking_results.json.
"""
import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
from fadenn_tf.utils.cli_args import positive_float
from fadenn_tf.utils.lock import one_writer, take_lock

SOURCES = ("tracked", "detector", "given")
STATUSES = ("tracked", "re-detected", "lost")
NO_FD_NOTE = ("no failure detector given: failures are caught by the sanity checks only "
              "(train one with: python -m fadenn_tf.train_failure_detector --out fd.npz)")


# ------------------------------------------------------------------------------ records

@dataclass
class FrameRecord:
    """One frame of a track.

    frame: 1-based frame number (as in 300-VW annot/ names). landmarks: (68, 2) image pixels
    or None (no face). box: the (x0, y0, x1, y1) box the landmarks were fitted in, or None.
    source: "tracked", "detector", "given" or None (no face). score: failure-detector
    P(good fit) of the written estimate (None without a failure detector or without a face).
    failure: why the tracked (or detector) fit was rejected, else None. reinit: the detector
    re-initialised the track on this frame (after a failure or a lost face; the first
    frame's initialisation is not a re-initialisation). event: "init", "tracked", "reinit",
    "no face". Times in seconds, without video decoding and output writing: t_detect
    (detector), t_fit (crop + model + uncrop), t_check (sanity + failure detector), t_total.
    """
    frame: int
    landmarks: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None
    source: Optional[str] = None
    score: Optional[float] = None
    failure: Optional[str] = None
    reinit: bool = False
    event: str = "no face"
    cut: bool = False
    t_detect: float = 0.0
    t_fit: float = 0.0
    t_check: float = 0.0

    @property
    def t_total(self):
        return self.t_detect + self.t_fit + self.t_check

    @property
    def status(self):
        """"tracked", "re-detected" or "lost" (see the class docstring)."""
        if self.landmarks is None:
            return "lost"
        return "tracked" if self.source == "tracked" else "re-detected"

    def to_dict(self):
        return {"frame": self.frame, "status": self.status, "event": self.event,
                "cut": self.cut, "source": self.source,
                "box": None if self.box is None else [round(float(v), 2) for v in self.box],
                "score": None if self.score is None else round(float(self.score), 4),
                "failure": self.failure, "reinit": self.reinit,
                "t_detect_ms": round(1e3 * self.t_detect, 3),
                "t_fit_ms": round(1e3 * self.t_fit, 3),
                "t_check_ms": round(1e3 * self.t_check, 3),
                "t_total_ms": round(1e3 * self.t_total, 3)}


@dataclass
class TrackResult:
    """All frames of one tracked video plus its speed figures (see `speed`)."""
    video: str
    frames: List[FrameRecord] = field(default_factory=list)
    wall_s: float = 0.0          # end to end, with decoding and output writing
    failure_check: str = ""
    info: dict = field(default_factory=dict)

    @property
    def no_face_frames(self):
        """1-based numbers of the frames without a face."""
        return [r.frame for r in self.frames if r.landmarks is None]

    @property
    def reinit_frames(self):
        return [r.frame for r in self.frames if r.reinit]

    @property
    def failure_frames(self):
        return [r.frame for r in self.frames if r.failure]

    @property
    def cut_frames(self):
        """1-based numbers of the frames that start a new shot (detected cuts)."""
        return [r.frame for r in self.frames if r.cut]

    def counts(self):
        """{"tracked", "re-detected", "lost": frames per status (they sum to the frame
        count), "shot_cuts", "fit_failures": rejected fits, "detector_calls"}."""
        out = {k: 0 for k in STATUSES}
        for r in self.frames:
            out[r.status] += 1
        out.update(shot_cuts=len(self.cut_frames), fit_failures=len(self.failure_frames),
                   detector_calls=sum(r.t_detect > 0 for r in self.frames))
        return out

    def landmarks(self):
        """(N, 68, 2) float64, NaN on frames without a face."""
        return np.stack([np.full((68, 2), np.nan) if r.landmarks is None else r.landmarks
                         for r in self.frames]) if self.frames else np.zeros((0, 68, 2))

    def speed(self):
        """Frames per second over the processing time (no decoding/writing):
        fps_with_detector (every frame, detector calls included), fps_without_detector
        (detector time excluded everywhere), fps_tracked_frames (only frames whose box came
        from tracking), fps_end_to_end (wall clock with decoding and writing),
        fps_median_without_detector (1 / the median per-frame time without detector time:
        robust to other load on a shared CPU), plus counts."""
        n = len(self.frames)
        tot = sum(r.t_total for r in self.frames)
        det = sum(r.t_detect for r in self.frames)
        tracked = [r for r in self.frames if r.source == "tracked"]
        t_tr = sum(r.t_total for r in tracked)

        def rate(k, s):
            return round(k / s, 2) if s > 0 else None
        med = float(np.median([r.t_total - r.t_detect for r in self.frames])) if n else 0.0
        return {"frames": n, "tracked_frames": len(tracked),
                "detector_calls": sum(r.t_detect > 0 for r in self.frames),
                "fps_with_detector": rate(n, tot),
                "fps_without_detector": rate(n, tot - det),
                "fps_tracked_frames": rate(len(tracked), t_tr),
                "fps_end_to_end": rate(n, self.wall_s),
                "fps_median_without_detector": rate(1, med),
                "mean_detector_ms": round(1e3 * det / max(1, sum(r.t_detect > 0 for r in
                                                                 self.frames)), 3)}

    def to_log(self):
        return {"video": self.video, "failure_check": self.failure_check, **self.info,
                "n_frames": len(self.frames), "counts": self.counts(),
                "no_face_frames": self.no_face_frames, "cut_frames": self.cut_frames,
                "reinit_frames": self.reinit_frames, "failure_frames": self.failure_frames,
                "speed": self.speed(), "frames": [r.to_dict() for r in self.frames]}


# ------------------------------------------------------------------------------- checks

def sanity_problem(landmarks, image_hw, fit_box=None, min_face=8.0, max_outside=0.5,
                   max_aspect=2.0, scale_range=(0.5, 2.0)):
    """Why a (68, 2) estimate is not trackable, or None when it passes.

    Checks: finite points; at most `max_outside` of the points outside the frame; a
    landmark box at least `min_face` px wide and high with aspect ratio <= `max_aspect`; and,
    with fit_box (the box the landmarks were fitted in), a landmark-box diagonal within
    scale_range times the fit box's.
    """
    lm = np.asarray(landmarks, np.float64)
    if not np.isfinite(lm).all():
        return "non-finite landmarks"
    h, w = image_hw[:2]
    outside = ((lm[:, 0] < -0.5) | (lm[:, 0] > w - 0.5) | (lm[:, 1] < -0.5)
               | (lm[:, 1] > h - 0.5)).mean()
    if outside > max_outside:
        return f"landmarks left the frame ({100 * outside:.0f}% outside)"
    bw, bh = lm.max(axis=0) - lm.min(axis=0) + 1.0
    if bw < min_face or bh < min_face:
        return f"degenerate box ({bw:.1f}x{bh:.1f} px)"
    if max(bw / bh, bh / bw) > max_aspect:
        return f"degenerate box (aspect {max(bw / bh, bh / bw):.1f})"
    if fit_box is not None:
        fb = np.asarray(fit_box, np.float64)
        ratio = np.hypot(bw, bh) / max(np.hypot(fb[2] - fb[0], fb[3] - fb[1]), 1e-6)
        if not scale_range[0] <= ratio <= scale_range[1]:
            return f"degenerate box (size {ratio:.2f}x the fitted box)"
    return None


# ---------------------------------------------------------------------------- shot cuts

class ShotCutDetector:
    """Flags shot cuts between consecutive frames (the tracked face cannot survive a cut).

    Each frame is reduced to a `width`-pixel-wide grayscale thumbnail (area interpolation). A cut is declared when, against the previous frame's
    thumbnail, the Bhattacharyya distance of their 32-bin intensity histograms (0 = same,
    1 = disjoint) exceeds `hist_threshold`, or their mean absolute difference (intensities
    in [0, 1]) exceeds `diff_threshold`. The first frame is never a cut. Calling it with a
    frame returns None (no cut) or a short description of the cut, and stores the frame.
    """

    def __init__(self, hist_threshold=0.3, diff_threshold=0.2, width=64):
        if not (0 < hist_threshold <= 1 and 0 < diff_threshold <= 1):
            raise ValueError(f"shot-cut thresholds must be in (0, 1], got {hist_threshold}, "
                             f"{diff_threshold}")
        self.hist_threshold = float(hist_threshold)
        self.diff_threshold = float(diff_threshold)
        self.width = int(width)
        self._prev = None

    def reset(self):
        self._prev = None

    def _thumb(self, frame):
        import cv2
        img = np.asarray(frame)
        gray = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]),
                                                      cv2.COLOR_RGB2GRAY)
        h = max(1, int(round(gray.shape[0] * self.width / gray.shape[1])))
        small = cv2.resize(gray, (self.width, h), interpolation=cv2.INTER_AREA)
        hist = np.bincount((small >> 3).ravel(), minlength=32) / small.size
        return small.astype(np.float32) / 255.0, hist

    def __call__(self, frame):
        cur = self._thumb(frame)
        prev, self._prev = self._prev, cur
        if prev is None or prev[0].shape != cur[0].shape:
            return None
        hist = float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(prev[1] * cur[1])))))
        diff = float(np.mean(np.abs(prev[0] - cur[0])))
        if hist > self.hist_threshold or diff > self.diff_threshold:
            return f"shot cut (histogram distance {hist:.2f}, frame difference {diff:.2f})"
        return None


# ------------------------------------------------------------------------------ tracker

def _as_predictor(model, device=None):
    from fadenn_tf.predict import Predictor, load
    if isinstance(model, Predictor):
        return model
    if hasattr(model, "fn") and hasattr(model, "size"):  # a LoadedModel
        return Predictor(model, detector=None, device=device)
    return load(model, detector=None, device=device)


def _as_detector(detector, options=None):
    if detector is None or callable(detector):
        return detector
    from fadenn_tf.detect import get_detector
    try:
        return get_detector(detector, **(options or {}))
    except TypeError as exc:
        raise ValueError(f"detector {detector!r} does not take the options "
                         f"{sorted(options or {})}: {exc}") from None


def _as_failure_detector(fd):
    if fd is None or hasattr(fd, "score"):
        return fd
    from fadenn_tf.failure_detector import FailureDetector
    return FailureDetector.load(fd)


class Tracker:
    """Frame-by-frame tracker (see the module docstring). Feed frames in order with
    `step(frame_rgb)`; each call returns a FrameRecord.

    predictor: a fadenn_tf.predict.Predictor (its model fits the landmarks, always called
    with one [1, S, S, 3] crop so the graph is traced once). detector: a BoxProvider or
    None (then only init_box can start the track). failure_detector: a FailureDetector or
    None. threshold: P(good fit) below which a fit fails (default the detector's own).
    init_box: (x0, y0, x1, y1) for the first frame (source "given").
    cut_detector: a ShotCutDetector (default), or None to never look for shot cuts; on a
    cut the track is dropped and the detector asked.
    A frame reports landmarks only when they passed the checks: a detector fit that fails
    them marks the frame "lost", it is never written.
    """

    def __init__(self, predictor, detector=None, failure_detector=None, threshold=None,
                 init_box=None, min_face=8.0, cut_detector="default"):
        from fadenn_tf.data.crop import landmark_box
        self._lbox = landmark_box
        self.predictor = predictor
        self.detector = detector
        self.fd = failure_detector
        self.threshold = (None if failure_detector is None else
                          float(failure_detector.threshold if threshold is None else threshold))
        self.init_box = None if init_box is None else np.asarray(init_box, np.float64).reshape(4)
        self.min_face = float(min_face)
        self.cuts = ShotCutDetector() if cut_detector == "default" else cut_detector
        self.prev = None            # accepted landmarks of the previous frame
        self.n = 0                  # frames seen

    def warm_up(self):
        """Trace the model for the fixed [1, S, S, 3] shape (so frame times exclude it);
        returns the seconds it took."""
        t0 = time.perf_counter()
        self.predictor.run_crops(np.zeros((1, self.predictor.size, self.predictor.size, 3),
                                          np.float32))
        return time.perf_counter() - t0

    def fit(self, frame, box):
        """Landmarks (68, 2) image pixels fitted in `box` (x0, y0, x1, y1), or None when the
        box lies outside the frame."""
        try:
            return self.predictor.fit_box(frame, box)[0]
        except ValueError:
            return None

    def check(self, frame, landmarks, box):
        """(problem or None, score or None) for an estimate fitted in `box`."""
        if landmarks is None:
            return "box outside the frame", None
        problem = sanity_problem(landmarks, frame.shape, box, self.min_face)
        score = None
        if self.fd is not None and problem is None:
            score = float(self.fd.score(frame, landmarks))
            if score < self.threshold:
                problem = f"failure score {score:.3f} < {self.threshold:g}"
        return problem, score

    def _fit_checked(self, frame, box, rec):
        """Fit landmarks in `box` and check them; adds fit/check times to `rec`.
        Returns (landmarks or None, problem or None, failure-detector score)."""
        t0 = time.perf_counter()
        lm = self.fit(frame, box)
        t1 = time.perf_counter()
        problem, score = self.check(frame, lm, box)
        rec.t_fit += t1 - t0
        rec.t_check += time.perf_counter() - t1
        return lm, problem, score

    def step(self, frame):
        """Track one (H, W, 3) uint8 RGB frame -> FrameRecord."""
        self.n += 1
        rec = FrameRecord(frame=self.n)
        first = self.n == 1
        if self.cuts is not None:
            t0 = time.perf_counter()
            cut = self.cuts(frame)
            rec.t_check += time.perf_counter() - t0
            if cut is not None:
                rec.cut = True
                if self.prev is not None:
                    rec.failure = cut
                self.prev = None
        if self.prev is not None:
            box = self._lbox(self.prev)
            lm, problem, score = self._fit_checked(frame, box, rec)
            if problem is None:
                rec.landmarks, rec.box, rec.source, rec.score = lm, box, "tracked", score
                rec.event = "tracked"
                self.prev = lm
                return rec
            rec.failure = problem
            self.prev = None
        # (re)initialise
        if first and self.init_box is not None:
            box, source = self.init_box, "given"
        else:
            if self.detector is None:
                return rec
            t0 = time.perf_counter()
            boxes = np.asarray(self.detector(frame), np.float64).reshape(-1, 4)
            rec.t_detect = time.perf_counter() - t0
            if len(boxes) == 0:
                return rec
            box, source = boxes[0], "detector"
        lm, problem, score = self._fit_checked(frame, box, rec)
        if problem is not None:  # the check says there is no face: report none
            msg = f"{source}: {problem}"
            rec.failure = f"{rec.failure}; then {msg}" if rec.failure else msg
            return rec
        rec.landmarks, rec.source, rec.score = lm, source, score
        rec.box = np.asarray(box, np.float64)
        rec.reinit = not first
        rec.event = "init" if first else "reinit"
        self.prev = lm
        return rec


def _video_fps(path):
    import cv2
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0
    cap.release()
    return fps if fps and 1 <= fps <= 240 else 25.0


def draw_frame(frame, rec, fd_used=True):
    """Overlay of one tracked frame (RGB uint8): box coloured by source, landmarks, and a
    caption with the frame number, status (tracked / re-detected / lost), failure score and
    a shot-cut mark."""
    from fadenn_tf.drawing import GREEN, RED, WHITE, YELLOW, draw_face, draw_text
    img = frame
    if rec.landmarks is not None:
        img = draw_face(img, rec.landmarks, rec.box, rec.source, rec.source)
    cap = f"#{rec.frame} {rec.status.upper()}"
    if rec.score is not None:
        cap += f" p={rec.score:.2f}"
    if rec.cut:
        cap += " CUT"
    colour = {"tracked": GREEN, "re-detected": YELLOW, "lost": RED}[rec.status]
    img = draw_text(img, cap, (6, 20), colour)
    if rec.failure:
        img = draw_text(img, rec.failure[:60], (6, 44), WHITE if rec.landmarks is not None
                        else RED)
    return img


def track_video(model, video_path, detector="default", failure_detector=None, threshold=None,
                init_box=None, init_landmarks=None, out_dir=None, overlay=True, device=None,
                min_face=8.0, progress=False, shot_cuts=True, detector_options=None):
    """Track the face of a video -> TrackResult (frames, speed).

    model: a Predictor, a LoadedModel or a model path (fadenn_tf.inference.load_any).
    detector: a registered detector name ("default", "haar", ...), a BoxProvider callable,
    or None.
    failure_detector: a FailureDetector, a path to its .npz, or None (sanity checks only).
    shot_cuts: True (a ShotCutDetector with its defaults), a ShotCutDetector, or False.
    detector_options: kwargs for a detector given by name (e.g. {"equalize": False}).
    threshold: P(good fit) below which a fit fails (default: the failure detector's).
    init_box (x0, y0, x1, y1) or init_landmarks (68, 2) (its landmark box): the first frame's
    box instead of the detector's.
    out_dir: if given, writes out_dir/annot/%06d.pts (1-based, frames with a face),
    out_dir/overlay.avi (MJPG, with overlay=True) and out_dir/track_log.json.
    Raises DataError for an unreadable video or failure-detector file.
    """
    import cv2
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.images import read_video_frames
    from fadenn_tf.data.pts import write_pts
    from fadenn_tf.utils.progress import progress as bar
    t_start = time.perf_counter()
    predictor = _as_predictor(model, device)
    det = _as_detector(detector, detector_options)
    fd = _as_failure_detector(failure_detector)
    if init_landmarks is not None:
        init_box = landmark_box(np.asarray(init_landmarks, np.float64))
    cuts = ShotCutDetector() if shot_cuts is True else (shot_cuts or None)
    tracker = Tracker(predictor, det, fd, threshold, init_box, min_face, cut_detector=cuts)
    result = TrackResult(str(video_path))
    warm = tracker.warm_up()
    t_start = time.perf_counter()  # speed figures exclude loading and tracing
    result.failure_check = (NO_FD_NOTE if fd is None else
                            f"failure detector (P(good fit) < {tracker.threshold:g} fails) "
                            "+ sanity checks")
    result.info = {"model": str(getattr(predictor.model, "path", "")),
                   "detector": detector if isinstance(detector, str) or detector is None
                   else type(detector).__name__,
                   "detector_options": dict(detector_options or {}),
                   "failure_detector": (str(failure_detector) if isinstance(
                       failure_detector, (str, Path)) else
                       (None if fd is None else type(fd).__name__)),
                   "threshold": tracker.threshold,
                   "shot_cuts": None if cuts is None else {
                       "hist_threshold": cuts.hist_threshold,
                       "diff_threshold": cuts.diff_threshold},
                   "init_box": None if init_box is None else [float(v) for v in init_box],
                   "warm_up_s": round(warm, 3)}
    frames = read_video_frames(video_path)
    writer = None
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        (out / "annot").mkdir(parents=True, exist_ok=True)
    try:
        for frame in bar(frames, desc="tracking", enabled=progress, unit="frame"):
            rec = tracker.step(frame)
            result.frames.append(rec)
            if out is None:
                continue
            if rec.landmarks is not None:
                write_pts(out / "annot" / f"{rec.frame:06d}.pts", rec.landmarks)
            if overlay:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(out / "overlay.avi"),
                                             cv2.VideoWriter_fourcc(*"MJPG"),
                                             _video_fps(video_path), (w, h))
                    if not writer.isOpened():
                        raise RuntimeError(f"{out / 'overlay.avi'}: OpenCV cannot open an "
                                           "MJPG video writer")
                img = draw_frame(frame, rec)
                writer.write(np.ascontiguousarray(img[:, :, ::-1]))
    finally:
        if writer is not None:
            writer.release()
    from fadenn_tf.data.images import video_frame_count
    announced = video_frame_count(video_path)
    result.info["frames_announced"] = announced
    if len(result.frames) < announced:  # a cut or corrupt file: decoding stopped early
        result.info["warning"] = (f"{video_path}: decoding stopped after {len(result.frames)} "
                                  f"of the {announced} frames its header announces (truncated "
                                  f"or corrupt video)")
    result.wall_s = time.perf_counter() - t_start
    if out is not None:
        from fadenn_tf.utils.atomic import write_json_atomic
        write_json_atomic(out / "track_log.json", result.to_log())
    return result


# --------------------------------------------------------------------------- evaluation

def evaluate_tracking(model, root, category=3, videos=None, detector="default",
                      failure_detector=None, threshold=None, normalizer="diagonal",
                      nme_threshold=0.08, init_from_gt=False, out_dir=None, overlay=False,
                      device=None, progress=False, shot_cuts=True, detector_options=None):
    """Track every video of a 300-VW layout and score the annotated frames.

    root: 300-VW root (<id>/vid.avi + <id>/annot/%06d.pts). category: 1, 2, 3, "test",
    "all" (fadenn_tf.data.datasets.index_300vw); videos: explicit ids (override category).
    init_from_gt: start each video from the ground-truth landmark box of its first frame
    (source "given"; re-initialisations still use the detector).
    Frames where tracking gave no face count as failures (NME = inf).
    Returns {"videos": {id: summary + n_no_face, n_reinit, speed}, "pooled": summary, ...}
    where a summary is fadenn_tf.metrics.summarize (mean/median NME, AUC@t, FR@t named with
    the normaliser and threshold). out_dir: per-video outputs in out_dir/<id>/.
    """
    from fadenn_tf import metrics
    from fadenn_tf.data.datasets import index_300vw
    samples, report = index_300vw(root, category=category, videos=videos)
    by_video = {}
    for s in samples:
        by_video.setdefault(s.subset, []).append(s)
    predictor = _as_predictor(model, device)
    det = _as_detector(detector, detector_options)
    fd = _as_failure_detector(failure_detector)
    per_video, pooled = {}, []
    for vid, ss in by_video.items():
        ss = sorted(ss, key=lambda s: s.frame)
        first_gt = next((s.landmarks for s in ss if s.frame == 0), None)
        res = track_video(predictor, ss[0].image_path, det, fd, threshold,
                          init_landmarks=first_gt if init_from_gt else None,
                          out_dir=None if out_dir is None else Path(out_dir) / vid,
                          overlay=overlay, progress=progress, shot_cuts=shot_cuts)
        pred = res.landmarks()
        errs = []
        for s in ss:
            if s.frame >= len(pred) or not np.isfinite(pred[s.frame]).all():
                errs.append(np.inf)
            else:
                errs.append(metrics.nme(pred[s.frame], s.landmarks, normalizer))
        if res.info.get("warning"):
            unread = [s for s in ss if s.frame >= len(pred)]
            report.skip(ss[0].image_path, f"{res.info['warning']}; {len(unread)} annotated "
                        f"frame(s) after it scored as failures")
        summ = metrics.summarize(errs, nme_threshold, normalizer)
        summ.update(n_no_face=sum(not np.isfinite(e) for e in errs),
                    n_reinit=len(res.reinit_frames), n_failures=len(res.failure_frames),
                    speed=res.speed())
        per_video[vid] = summ
        pooled.extend(errs)
    return {"root": str(root), "category": None if videos is not None else category,
            "videos_requested": None if videos is None else [str(v) for v in videos],
            "missing_videos": list(report.missing_videos),
            "normalizer": normalizer, "normalizer_info": metrics.NORMALIZER_INFO[normalizer],
            "threshold": nme_threshold, "model": str(getattr(predictor.model, "path", "")),
            "detector": detector if isinstance(detector, str) or detector is None
            else type(detector).__name__,
            "failure_detector": (str(failure_detector) if isinstance(failure_detector,
                                                                     (str, Path)) else
                                 (None if fd is None else type(fd).__name__)),
            "failure_check": NO_FD_NOTE if fd is None else "failure detector + sanity checks",
            "init": "ground-truth box of frame 1" if init_from_gt else "face detector",
            "no_face_counts_as": "failure (NME = inf)",
            "videos": per_video, "pooled": metrics.summarize(pooled, nme_threshold, normalizer),
            "skipped": [{"path": p, "problem": why} for p, why in report.skipped]}


def format_evaluation(results):
    """Printable table of evaluate_tracking results (normaliser and threshold named)."""
    t = results["threshold"]
    lines = [f"300-VW tracking, NME normaliser: {results['normalizer']} "
             f"({results['normalizer_info']}); threshold {t:g}; no-face frames count as "
             f"failures; init: {results['init']}; {results['failure_check']}",
             f"{'video':>8} {'frames':>7} {'meanNME':>8} {'AUC@' + format(t, 'g'):>9} "
             f"{'FR@' + format(t, 'g'):>8} {'noface':>7} {'reinit':>7} {'fps':>7}  (fps: tracked "
             f"frames only, no detector time)"]

    def row(name, s, extra=True):
        fps = s.get("speed", {}).get("fps_tracked_frames") if extra else None
        return (f"{name:>8} {s['n']:>7d} {s['mean_nme']:>8.4f} {s['auc']:>9.4f} "
                f"{s['fr']:>8.4f} "
                + (f"{s['n_no_face']:>7d} {s['n_reinit']:>7d} {fps if fps else '-':>7}"
                   if extra else f"{s['n_nonfinite']:>7d} {'':>7} {'':>7}"))
    for vid, s in results["videos"].items():
        lines.append(row(vid, s))
    lines.append(row("pooled", results["pooled"], extra=False))
    return "\n".join(lines)


# --------------------------------------------------------------------------------- CLI

def _parse_box(text):
    try:
        b = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        b = []
    if len(b) != 4 or not (b[2] > b[0] and b[3] > b[1]):
        raise argparse.ArgumentTypeError(f"--init-box wants x0,y0,x1,y1 with x1 > x0 and "
                                         f"y1 > y0, got {text!r}")
    return b


def _parser():
    from fadenn_tf.utils.cli import EXIT_CODES_FACES, add_alias, add_no_progress, make_parser
    p = make_parser(
        "track", raw=False,
        description="Model-free face tracking (paper IV-D): the box of frame t is the "
                    "landmark box of frame t-1; a failure detector and sanity checks "
                    "trigger re-initialisation by the face detector.",
        epilog="Train a failure detector with: python -m fadenn_tf.train_failure_detector "
               "--out fd.npz [--data DIR]. Tracking a video: " + EXIT_CODES_FACES
               + " --evaluate exits 0 once the evaluation is written.")
    p.add_argument("video", nargs="?", help="video file to track (not with --evaluate)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="training workdir, .keras file or SavedModel folder")
    p.add_argument("--out", help="output folder (required for a video)")
    p.add_argument("--failure-detector", help="FailureDetector .npz (default: sanity "
                                              "checks only)")
    p.add_argument("--failure-threshold", dest="threshold", type=positive_float, default=None,
                   metavar="P", help="P(good fit) below which a fit fails (default: the "
                                     "failure detector's, 0.5; was --threshold)")
    p.add_argument("--no-shot-cuts", action="store_true",
                   help="do not look for shot cuts (by default a cut drops the track and "
                        "asks the detector)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--init-pts", help=".pts file with the first frame's landmarks")
    g.add_argument("--init-box", type=_parse_box, help="first frame's box x0,y0,x1,y1")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.avi")
    p.add_argument("--device", default=None, help="TensorFlow device, e.g. /GPU:0")
    p.add_argument("--evaluate", metavar="ROOT",
                   help="evaluate on a 300-VW layout ('synthetic' = the built-in videos)")
    p.add_argument("--category", default="3", help="300-VW category: 1, 2, 3, test, all (3)")
    p.add_argument("--videos", nargs="+", help="explicit video ids (override --category)")
    p.add_argument("--normalizer", default="diagonal",
                   choices=("diagonal", "box", "interocular"), help="NME normaliser (diagonal)")
    p.add_argument("--nme-threshold", dest="threshold_nme", type=positive_float, default=0.08,
                   help="NME cut-off of AUC and failure rate (0.08; was --threshold-nme)")
    p.add_argument("--init-from-gt", action="store_true",
                   help="evaluation: start each video from its first frame's ground truth")
    from fadenn_tf.detect import add_detector_arguments
    add_detector_arguments(p)
    add_no_progress(p)
    add_alias(p, "--threshold", "--failure-threshold")
    add_alias(p, "--threshold-nme", "--nme-threshold")
    return p


def _print_speed(res):
    s = res.speed()
    print(f"{s['frames']} frames ({s['tracked_frames']} tracked, {s['detector_calls']} "
          f"detector calls, mean {s['mean_detector_ms']:.1f} ms each): "
          f"{s['fps_without_detector']} frames/s without detector time, "
          f"{s['fps_with_detector']} frames/s with it, "
          f"{s['fps_tracked_frames']} frames/s on tracked frames, "
          f"{s['fps_median_without_detector']} frames/s from the median frame time, "
          f"{s['fps_end_to_end']} frames/s end to end (decoding + writing)")


def _check_init_box(video, box, landmarks=None):
    """DataError when the given first-frame box (or landmarks' box) lies entirely outside
    the video's frames (the tracker would otherwise drop it and use the detector)."""
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.images import video_size
    from fadenn_tf.errors import DataError
    if landmarks is not None:
        box = landmark_box(np.asarray(landmarks, np.float64))
    if box is None:
        return
    h, w = video_size(video)
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        what = "--init-pts landmarks" if landmarks is not None else "--init-box"
        raise DataError(video, f"{what} ({x0:g},{y0:g},{x1:g},{y1:g}) lies entirely outside "
                               f"its {w}x{h} frames")


def _main_video(args):
    from fadenn_tf.data.pts import read_pts
    if not args.video:
        print("error: give a VIDEO (or --evaluate ROOT)", file=sys.stderr)
        return 2
    if not args.out:
        print("error: --out DIR is required", file=sys.stderr)
        return 2
    from fadenn_tf.detect import detector_kwargs_from_args
    init_lm = read_pts(args.init_pts, 68) if args.init_pts else None
    _check_init_box(args.video, args.init_box if init_lm is None else None, init_lm)
    res = track_video(args.model, args.video, args.detector, args.failure_detector,
                      args.threshold, init_box=args.init_box, init_landmarks=init_lm,
                      out_dir=args.out, overlay=not args.no_overlay, device=args.device,
                      progress=not args.no_progress, shot_cuts=not args.no_shot_cuts,
                      detector_options=detector_kwargs_from_args(args))
    nf = res.no_face_frames
    if res.info.get("warning"):
        print(f"warning: {res.info['warning']}", file=sys.stderr)
    c = res.counts()
    print(f"{args.video}: {len(res.frames) - len(nf)}/{len(res.frames)} frames with a face "
          f"({c['tracked']} tracked, {c['re-detected']} re-detected, {c['lost']} lost); "
          f"{c['shot_cuts']} shot cuts, {c['fit_failures']} rejected fits; "
          f"{res.failure_check}")
    if nf:
        shown = ", ".join(map(str, nf[:20])) + (" ..." if len(nf) > 20 else "")
        print(f"no face in {len(nf)} frames: {shown}", file=sys.stderr)
    _print_speed(res)
    print(f"wrote {Path(args.out) / 'annot'}, {Path(args.out) / 'track_log.json'}"
          + ("" if args.no_overlay else f", {Path(args.out) / 'overlay.avi'}"))
    return 0 if len(nf) < len(res.frames) else 1


def _main_evaluate(args):
    root = args.evaluate
    if root == "synthetic":
        from fadenn_tf.data.cache import resolve_data
        root = resolve_data(None, "300vw")
    cat = args.category
    cat = int(cat) if str(cat).isdigit() else cat
    from fadenn_tf.detect import detector_kwargs_from_args
    res = evaluate_tracking(args.model, root, category=cat, videos=args.videos,
                            detector=args.detector,
                            detector_options=detector_kwargs_from_args(args), failure_detector=args.failure_detector,
                            threshold=args.threshold, normalizer=args.normalizer,
                            nme_threshold=args.threshold_nme, init_from_gt=args.init_from_gt,
                            out_dir=args.out, device=args.device,
                            progress=not args.no_progress, shot_cuts=not args.no_shot_cuts)
    print(format_evaluation(res))
    for item in res["skipped"]:
        print(f"skipped {item['path']}: {item['problem']}", file=sys.stderr)
    if res["skipped"]:
        print(f"{len(res['skipped'])} input(s) skipped (listed above"
              + (" and in tracking_results.json)" if args.out else ")"), file=sys.stderr)
    if args.out:
        from fadenn_tf.utils.atomic import write_json_atomic
        Path(args.out).mkdir(parents=True, exist_ok=True)
        path = Path(args.out) / "tracking_results.json"
        write_json_atomic(path, res)
        print(f"wrote {path}")
    return 0


@one_writer
def main(argv=None):
    args = _parser().parse_args(argv)
    from fadenn_tf.errors import FadennError
    try:
        if args.out:
            take_lock(args.out, "track")  # one writer per --out
        return _main_evaluate(args) if args.evaluate else _main_video(args)
    except (FadennError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
