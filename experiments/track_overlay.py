"""Overlay frames of the tracker on a synthetic 640x360 clip with a shot cut and a face that
leaves: the status (TRACKED / RE-DETECTED / LOST, CUT) drawn on each frame.

    python experiments/track_overlay.py [--model pretrained-fll] [--failure-detector auto] \
        [--detector default] [--backend litert] --out docs/track_overlay.jpg

Clip (fadenn_tf.benchmark.api_speed.synthetic_clip, a frontal synthetic face the detector finds): 30
frames of face A drifting, a cut to 20 frames of another synthetic face B, 10 frames where
B's face region is painted over (the face leaves), then B again. Writes a 2x3 sheet of
chosen frames (each scaled to half size) and prints the tracker's counts.
"""
import argparse
import sys

import cv2
import numpy as np

from fadenn_tf.benchmark.api_speed import synthetic_clip
from fadenn_tf.fitcheck.detector import failure_detector_from_spec
from fadenn_tf.inference.predictor import load
from fadenn_tf.tracking.records import TrackResult
from fadenn_tf.tracking.tracker import Tracker, _as_detector, _fd_name
from fadenn_tf.tracking.video import draw_frame


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="pretrained-fll")
    p.add_argument("--failure-detector", default="auto",
                   help="a .npz, none, or auto (the one shipped with the model)")
    p.add_argument("--detector", default="default")
    p.add_argument("--backend", default="litert", choices=("keras", "litert", "litert-int8"))
    p.add_argument("--out", required=True, help="image file (.jpg: quality 85)")
    a = p.parse_args(argv)
    det = _as_detector(a.detector)
    clip_a, _, seed = synthetic_clip(30, detector=det)
    clip_b, box_b, _ = synthetic_clip(30, detector=det, seed=seed + 1, face_px=130)
    gone = clip_b[20:30].copy()
    x0, y0, x1, y1 = (int(v) for v in box_b)
    gone[:, max(0, y0 - 40):y1 + 30, max(0, x0 - 40):x1 + 40] = np.median(
        clip_b[0, :10].reshape(-1, 3), axis=0).astype(np.uint8)
    frames = list(clip_a) + list(clip_b[:20]) + list(gone) + list(clip_b[:10])
    pred = load(a.model, detector=None, backend=a.backend, failure_detector=None)
    tracker = Tracker(pred, det, failure_detector_from_spec(a.failure_detector, pred.model.path))
    tracker.warm_up()
    res = TrackResult("synthetic", [tracker.step(f) for f in frames])
    print(res.counts(), "cuts at", res.cut_frames, "lost", res.no_face_frames,
          "failure detector", _fd_name(tracker.fd))
    pick = [1, 15, 31, 40, 52, 62]
    tiles = [cv2.resize(draw_frame(frames[t - 1], res.frames[t - 1]), (320, 180),
                        interpolation=cv2.INTER_AREA) for t in pick]
    sheet = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])
    cv2.imwrite(a.out, np.ascontiguousarray(sheet[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {a.out} (frames {pick})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
