"""Synthetic 300-VW-style videos: one face moving smoothly, written as MJPG .avi + .pts.

Pose, position, scale and expression follow sums of slow sinusoids (0.04-0.4 Hz at 25
fps), so consecutive frames differ by small landmark displacements; an occasional blink
closes the eyes over a few frames. The background, identity and appearance are fixed per
video; sensor noise changes per frame.
Layout written by write_video: FOLDER/vid.avi and FOLDER/annot/000001.pts ... (1-based,
6-digit frame numbers), landmarks 0-based in memory as everywhere in the project.
"""
import math
from pathlib import Path

import numpy as np

from fadenn_tf.data.pts import write_pts
from fadenn_tf.data.synthetic.rendering import _background, _other_face, draw_sample
from fadenn_tf.data.synthetic.sampling import merge_params, sample_params
from fadenn_tf.data.video_writer import checked_video_writer
from fadenn_tf.utils.atomic import checked_write

FPS = 25.0
DEFAULT_FRAME_SIZE = (288, 384)   # (H, W)


def _smooth(rng, n, base, amp, lo, hi, hz=(0.04, 0.25)):
    """base + two sinusoids of amplitude <= amp and frequency in hz (cycles per second)."""
    t = np.arange(n) / FPS
    v = np.full(n, float(base))
    for _ in range(2):
        f = rng.uniform(*hz)
        v += rng.uniform(0.3, 1.0) * amp * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    return np.clip(v, lo, hi)


def video_params(rng, n_frames, frame_size=DEFAULT_FRAME_SIZE):
    """Per-frame render params (list of n_frames dicts) for one video of (H, W) frames."""
    h, w = frame_size
    base = sample_params(rng, "train", (h, w))
    base["occluders"], base["others"] = [], []
    base["post"]["jpeg_quality"] = None
    base["post"]["blur"] = min(base["post"]["blur"], 0.6)
    s0 = rng.uniform(0.2, 0.3) * min(h, w)
    tracks = {
        "yaw": _smooth(rng, n_frames, rng.uniform(-15, 15), 30, -50, 50),
        "pitch": _smooth(rng, n_frames, rng.uniform(-5, 5), 10, -25, 25),
        "roll": _smooth(rng, n_frames, rng.uniform(-5, 5), 10, -35, 35),
        "cx": _smooth(rng, n_frames, w / 2, 0.12 * w, 0.3 * w, 0.7 * w),
        "cy": _smooth(rng, n_frames, h / 2, 0.08 * h, 0.35 * h, 0.65 * h),
        "scale": _smooth(rng, n_frames, s0, 0.12 * s0, 0.15 * min(h, w), 0.34 * min(h, w)),
        "open": _smooth(rng, n_frames, 0.1, 0.5, 0.0, 1.0, (0.1, 0.4)),
        "smile": _smooth(rng, n_frames, 0.3, 0.5, -0.3, 1.0),
        "brow": _smooth(rng, n_frames, 0.0, 0.6, -1.0, 1.0),
    }
    eye = np.full(n_frames, float(base["expression"]["eye_open"]))
    for _ in range(int(rng.integers(0, 3))):
        c = rng.uniform(0, n_frames)
        eye *= 1 - 0.75 * np.exp(-0.5 * ((np.arange(n_frames) - c) / 1.5) ** 2)
    seed = int(base["post"]["seed"])
    frames = []
    for i in range(n_frames):
        frames.append(merge_params(base, {
            "pose": {"yaw": float(tracks["yaw"][i]), "pitch": float(tracks["pitch"][i]),
                     "roll": float(tracks["roll"][i])},
            "center": [float(tracks["cx"][i]), float(tracks["cy"][i])],
            "scale": float(tracks["scale"][i]),
            "expression": {"open": float(tracks["open"][i]), "smile": float(tracks["smile"][i]),
                           "brow": float(tracks["brow"][i]), "eye_open": float(max(eye[i], 0.2))},
            "post": {"seed": seed + i},
        }))
    return frames


def render_video(rng, n_frames, frame_size=DEFAULT_FRAME_SIZE):
    """Yield (frame (H, W, 3) uint8 RGB, landmarks (68, 2) float64) for one synthetic video."""
    frames = video_params(rng, n_frames, frame_size)
    h, w = frame_size
    bg = _background(h, w, frames[0]["background"], frames[0]["background"]["seed"])
    if rng.random() < 0.5:   # a partial bystander at a border, away from the face's path
        side = int(rng.integers(2))
        other = {"seed": int(rng.integers(2**31)), "side": side, "rel_scale": 0.8,
                 "along": float(rng.uniform(0.2, 0.8))}
        dummy = np.array([[0.3 * w, 0.2 * h], [0.7 * w, 0.8 * h]])
        _other_face(bg, other, dummy)
    for p in frames:
        img, lm, _ = draw_sample(p, background=bg)
        yield img, lm


def write_video(folder, rng, n_frames, frame_size=DEFAULT_FRAME_SIZE):
    """Write FOLDER/vid.avi (MJPG, 25 fps) and FOLDER/annot/%06d.pts; returns the frame count.

    The video is checked (fadenn_tf.data.video_writer): it appears only once it reads back
    with all n_frames frames. Raises WriteError naming the file when a write fails (full
    disk) or OpenCV cannot open an MJPG writer.
    """
    folder = Path(folder)
    with checked_write(folder / "annot"):
        (folder / "annot").mkdir(parents=True, exist_ok=True)
    with checked_video_writer(folder / "vid.avi", FPS, "MJPG") as video:
        for img, lm in render_video(rng, n_frames, frame_size):
            video.write(img)
            write_pts(folder / "annot" / f"{video.n:06d}.pts", lm)
    return video.n
