"""Checks of a tracked fit: sanity of the landmarks and shot cuts between frames."""
import cv2
import numpy as np


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
