"""The Tracker: one video frame at a time, the landmark box of the previous frame, checked
fits, re-initialisation by the face detector (protocol: fadenn_tf.tracking)."""
import time

import numpy as np

from fadenn_tf import pretrained
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.detect import get_detector
from fadenn_tf.fitcheck.detector import failure_detector_from_spec
from fadenn_tf.inference.crop_model import CropModel
from fadenn_tf.inference.predictor import Predictor, load
from fadenn_tf.tracking.checks import ShotCutDetector, sanity_problem
from fadenn_tf.tracking.records import FrameRecord

NO_FD_NOTE = ("no failure detector given: failures are caught by the sanity checks only "
              "(train one with: python -m fadenn_tf.train_failure_detector --out fd.npz)")


def _as_predictor(model, device=None, backend="auto"):
    """A Predictor without detector for `model` (a Predictor, a loaded model: any
    inference.CropModel, or a path).
    backend as in inference.load ("auto": the shipped LiteRT copies of pretrained /
    pretrained-fll, Keras for other models); a .tflite path always runs on LiteRT."""
    if isinstance(model, Predictor):
        return model
    if isinstance(model, CropModel):  # LoadedModel, LiteRTModel, ...
        return Predictor(model, detector=None, device=device)
    if str(model).endswith(".tflite") and backend in ("auto", "keras"):
        backend = "litert"
    return load(model, detector=None, device=device, failure_detector=None, backend=backend)


def model_source(predictor):
    """Where failure_detector="auto" looks for `predictor`'s shipped failure detector: the
    shipped name for the LiteRT copies of pretrained / pretrained-fll (they sit in a
    sub-folder of the model), else the model's file (None if unknown)."""
    model = getattr(predictor, "model", None)
    label = getattr(model, "label", None)
    if label is not None and pretrained.is_name(label):
        return str(label)
    return getattr(model, "path", None)


def _as_detector(detector, options=None):
    if detector is None or callable(detector):
        return detector
    try:
        return get_detector(detector, **(options or {}))
    except TypeError as exc:
        raise ValueError(f"detector {detector!r} does not take the options "
                         f"{sorted(options or {})}: {exc}") from None


def _fd_name(fd):
    """How the log names a failure detector: its file, or its type, or None."""
    return None if fd is None else getattr(fd, "source", type(fd).__name__)


class Tracker:
    """Frame-by-frame tracker (see the module docstring). Feed frames in order with
    `step(frame_rgb)`; each call returns a FrameRecord.

    predictor: a fadenn_tf.inference.Predictor (its model fits the landmarks, always called
    with one [1, S, S, 3] crop so the graph is traced once). detector: a BoxProvider or
    None (then only init_box can start the track). failure_detector: a FailureDetector,
    a .npz path, "auto" (default: the predictor's own failure detector, else the one
    shipped beside the model file, as with pretrained / pretrained-fll; none for other
    models) or None. threshold: P(good fit) below which a fit fails (default the
    detector's own).
    init_box: (x0, y0, x1, y1) for the first frame (source "given").
    cut_detector: a ShotCutDetector (default), or None to never look for shot cuts; on a
    cut the track is dropped and the detector asked.
    A frame reports landmarks only when they passed the checks: a detector fit that fails
    them marks the frame "lost", it is never written.
    """

    def __init__(self, predictor, detector=None, failure_detector="auto", threshold=None,
                 init_box=None, min_face=8.0, cut_detector="default"):
        self._lbox = landmark_box
        self.predictor = predictor
        self.detector = detector
        if isinstance(failure_detector, str) and failure_detector == "auto" and getattr(
                predictor, "failure_detector", None) is not None:
            failure_detector = predictor.failure_detector
        failure_detector = failure_detector_from_spec(failure_detector,
                                                      model_source(predictor))
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



# --------------------------------------------------------------------------------- CLI
