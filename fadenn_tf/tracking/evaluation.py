"""Tracking on a 300-VW layout scored per video and pooled: NME, AUC and FR at a threshold."""
import dataclasses
from pathlib import Path

import numpy as np

from fadenn_tf import metrics
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.datasets import index_300vw
from fadenn_tf.fitcheck.detector import failure_detector_from_spec
from fadenn_tf.tracking.options import TrackOptions, TrackScoring
from fadenn_tf.tracking.tracker import (NO_FD_NOTE, _as_detector, _as_predictor, _fd_name,
                                        model_source)
from fadenn_tf.tracking.video import track_video
from fadenn_tf.utils.atomic import write_json_atomic


def evaluate_tracking(model, root, options=None, scoring=None, out_dir=None, overlay=False):
    """Track every video of a 300-VW layout and score the annotated frames.

    root: 300-VW root (<id>/vid.avi + <id>/annot/%06d.pts), "synthetic" for the built-in
    videos. options: a TrackOptions, as in track_video (default TrackOptions()). scoring: a
    TrackScoring (category or video ids, NME normaliser and threshold, init_from_gt: start
    each video from the ground-truth landmark box of its first frame, source "given";
    default TrackScoring(): category 3, diagonal, 0.08).
    Frames where tracking gave no face count as failures (NME = inf).
    Returns {"videos": {id: summary + n_no_face, n_reinit, speed}, "pooled": summary, ...}
    where a summary is fadenn_tf.metrics.summarize (mean/median NME, AUC@t, FR@t named with
    the normaliser and threshold). out_dir: per-video outputs in out_dir/<id>/ (overlay.avi
    too with overlay=True).
    """
    o, sc = options or TrackOptions(), scoring or TrackScoring()
    normalizer, nme_threshold, videos = sc.normalizer, sc.nme_threshold, sc.videos
    if root == "synthetic":
        root = resolve_data(None, "300vw")
    category = int(sc.category) if str(sc.category).isdigit() else sc.category
    samples, report = index_300vw(root, category=category, videos=videos)
    by_video = {}
    for s in samples:
        by_video.setdefault(s.subset, []).append(s)
    predictor = _as_predictor(model, o.device, o.backend)
    det = _as_detector(o.detector, o.detector_options)
    fd = failure_detector_from_spec(o.failure_detector, model_source(predictor))
    resolved = dataclasses.replace(o, detector=det, failure_detector=fd)
    per_video, pooled = {}, []
    for vid, ss in by_video.items():
        ss = sorted(ss, key=lambda s: s.frame)
        first_gt = next((s.landmarks for s in ss if s.frame == 0), None)
        res = track_video(predictor, ss[0].image_path, resolved,
                          init_landmarks=first_gt if sc.init_from_gt else None,
                          out_dir=None if out_dir is None else Path(out_dir) / vid,
                          overlay=overlay)
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
            "detector": o.detector if isinstance(o.detector, str) or o.detector is None
            else type(o.detector).__name__,
            "failure_detector": _fd_name(fd),
            "failure_check": NO_FD_NOTE if fd is None else "failure detector + sanity checks",
            "init": "ground-truth box of frame 1" if sc.init_from_gt else "face detector",
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


def format_skipped(results, in_file=False):
    """The inputs evaluate_tracking skipped, a line each, and their count ('' when none);
    in_file: they are also listed in tracking_results.json."""
    items = results["skipped"]
    if not items:
        return ""
    return "\n".join([f"skipped {i['path']}: {i['problem']}" for i in items] + [
        f"{len(items)} input(s) skipped (listed above"
        + (" and in tracking_results.json)" if in_file else ")")])


def write_evaluation(results, out_dir):
    """Write evaluate_tracking's results to OUT/tracking_results.json -> its path."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / "tracking_results.json"
    write_json_atomic(path, results)
    return path
