"""What tracking returns: a FrameRecord per frame (box, source, status, timing) and the
TrackResult of a video (counts, speed, the log)."""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np


STATUSES = ("tracked", "re-detected", "lost")


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

    def no_face_line(self, shown=20):
        """"no face in N frames: 3, 4, ..." (the first `shown` frame numbers); '' if none."""
        nf = self.no_face_frames
        if not nf:
            return ""
        return (f"no face in {len(nf)} frames: " + ", ".join(map(str, nf[:shown]))
                + (" ..." if len(nf) > shown else ""))

    def counts_line(self):
        """"F/N frames with a face (tracked, re-detected, lost); shot cuts, rejected fits;
        how failures were checked"."""
        nf, c = self.no_face_frames, self.counts()
        return (f"{len(self.frames) - len(nf)}/{len(self.frames)} frames with a face "
                f"({c['tracked']} tracked, {c['re-detected']} re-detected, {c['lost']} lost); "
                f"{c['shot_cuts']} shot cuts, {c['fit_failures']} rejected fits; "
                f"{self.failure_check}")

    def to_log(self):
        return {"video": self.video, "failure_check": self.failure_check, **self.info,
                "n_frames": len(self.frames), "counts": self.counts(),
                "no_face_frames": self.no_face_frames, "cut_frames": self.cut_frames,
                "reinit_frames": self.reinit_frames, "failure_frames": self.failure_frames,
                "speed": self.speed(), "frames": [r.to_dict() for r in self.frames]}


def speed_line(res):
    """One line of a TrackResult's speed: frames/s with and without detector time."""
    s = res.speed()
    return (f"{s['frames']} frames ({s['tracked_frames']} tracked, {s['detector_calls']} "
            f"detector calls, mean {s['mean_detector_ms']:.1f} ms each): "
            f"{s['fps_without_detector']} frames/s without detector time, "
            f"{s['fps_with_detector']} frames/s with it, "
            f"{s['fps_tracked_frames']} frames/s on tracked frames, "
            f"{s['fps_median_without_detector']} frames/s from the median frame time, "
            f"{s['fps_end_to_end']} frames/s end to end (decoding + writing)")
