"""Track a video file: frames -> Tracker -> annot/%06d.pts, overlay.avi, track_log.json."""
import contextlib
import time
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.images import read_video_frames, video_frame_count, video_size
from fadenn_tf.data.pts import read_pts, write_pts
from fadenn_tf.data.video_writer import checked_video_writer
from fadenn_tf.drawing import GREEN, RED, WHITE, YELLOW, draw_face, draw_text
from fadenn_tf.errors import DataError
from fadenn_tf.fitcheck.detector import failure_detector_from_spec
from fadenn_tf.tracking.checks import ShotCutDetector
from fadenn_tf.tracking.options import TrackOptions
from fadenn_tf.tracking.records import TrackResult
from fadenn_tf.tracking.tracker import (NO_FD_NOTE, Tracker, _as_detector, _as_predictor,
                                        _fd_name, model_source)
from fadenn_tf.utils.atomic import checked_write, write_json_atomic
from fadenn_tf.utils.progress import progress as bar


def _video_fps(path):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0
    cap.release()
    return fps if fps and 1 <= fps <= 240 else 25.0


def draw_frame(frame, rec, fd_used=True):
    """Overlay of one tracked frame (RGB uint8): box coloured by source, landmarks, and a
    caption with the frame number, status (tracked / re-detected / lost), failure score and
    a shot-cut mark."""
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


def track_video(model, video_path, options=None, init_box=None, init_landmarks=None,
                out_dir=None, overlay=True):
    """Track the face of a video -> TrackResult (frames, speed).

    model: a Predictor, a LoadedModel or a model path (fadenn_tf.inference.load_any).
    options: a TrackOptions (face detector, failure detector and its threshold, shot cuts,
    device, backend, progress); default TrackOptions(): the default detector, the failure
    detector shipped with the model if any, shot cuts on, backend "auto" (the LiteRT copies
    shipped with pretrained / pretrained-fll, no TensorFlow; Keras for other models).
    init_box (x0, y0, x1, y1) or init_landmarks (68, 2) (its landmark box): the first frame's
    box instead of the detector's.
    out_dir: if given, writes out_dir/annot/%06d.pts (1-based, frames with a face),
    out_dir/overlay.avi (MJPG, with overlay=True) and out_dir/track_log.json.
    Raises DataError for an unreadable video or failure-detector file.
    """
    o = options or TrackOptions()
    predictor = _as_predictor(model, o.device, o.backend)
    det = _as_detector(o.detector, o.detector_options)
    fd = failure_detector_from_spec(o.failure_detector, model_source(predictor))
    if init_landmarks is not None:
        init_box = landmark_box(np.asarray(init_landmarks, np.float64))
    cuts = ShotCutDetector() if o.shot_cuts is True else (o.shot_cuts or None)
    tracker = Tracker(predictor, det, fd, o.failure_threshold or None, init_box, o.min_face,
                      cut_detector=cuts)
    result = TrackResult(str(video_path))
    warm = tracker.warm_up()
    t_start = time.perf_counter()  # speed figures exclude loading and tracing
    result.failure_check = (NO_FD_NOTE if fd is None else
                            f"failure detector (P(good fit) < {tracker.threshold:g} fails) "
                            "+ sanity checks")
    result.info = {"model": str(getattr(predictor.model, "path", "")),
                   "detector": o.detector if isinstance(o.detector, str) or o.detector is None
                   else type(o.detector).__name__,
                   "detector_options": dict(o.detector_options or {}),
                   "failure_detector": _fd_name(fd),
                   "threshold": tracker.threshold,
                   "shot_cuts": None if cuts is None else {
                       "hist_threshold": cuts.hist_threshold,
                       "diff_threshold": cuts.diff_threshold},
                   "init_box": None if init_box is None else [float(v) for v in init_box],
                   "warm_up_s": round(warm, 3)}
    frames = read_video_frames(video_path)
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        with checked_write(out / "annot"):
            (out / "annot").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        writer = None
        if out is not None and overlay:
            writer = stack.enter_context(checked_video_writer(out / "overlay.avi",  # MJPG
                                                              _video_fps(video_path)))
        for frame in bar(frames, total=video_frame_count(video_path) or None,  # lines + ETA
                         desc="tracking", enabled=o.progress, unit="frame"):
            rec = tracker.step(frame)
            result.frames.append(rec)
            if out is None:
                continue
            if rec.landmarks is not None:
                write_pts(out / "annot" / f"{rec.frame:06d}.pts", rec.landmarks)
            if writer is not None:
                writer.write(draw_frame(frame, rec))
    announced = video_frame_count(video_path)
    result.info["frames_announced"] = announced
    if len(result.frames) < announced:  # a cut or corrupt file: decoding stopped early
        result.info["warning"] = (f"{video_path}: decoding stopped after {len(result.frames)} "
                                  f"of the {announced} frames its header announces (truncated "
                                  f"or corrupt video)")
    result.wall_s = time.perf_counter() - t_start
    if out is not None:
        write_json_atomic(out / "track_log.json", result.to_log())
    return result


def initial_fit(video, init_pts=None, init_box=None):
    """(box, landmarks) a video starts from: the 68 landmarks of the .pts file `init_pts`,
    else `init_box`; checked against the frames (check_init_box)."""
    landmarks = read_pts(init_pts, 68) if init_pts else None
    box = init_box if landmarks is None else None
    check_init_box(video, box, landmarks)
    return box, landmarks


def check_init_box(video, box, landmarks=None):
    """DataError when the given first-frame box (or landmarks' box) lies entirely outside
    the video's frames (the tracker would otherwise drop it and use the detector)."""
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
