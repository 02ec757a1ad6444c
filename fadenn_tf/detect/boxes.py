"""Face boxes (x0, y0, x1, y1) float64 pixel-edge coordinates: parsing, checks, clipping,
sorting, corrections between box conventions, and the simple providers (a chain of
detectors, fixed boxes, the previous estimate's landmark box)."""
from typing import Protocol, runtime_checkable

import numpy as np

from fadenn_tf.data.crop import landmark_box


@runtime_checkable
class BoxProvider(Protocol):
    """Callable: (H, W, 3) uint8 RGB image -> (K, 4) float64 boxes (x0, y0, x1, y1), edge
    coordinates, clipped to the image, best (largest) first; (0, 4) when there is no face."""

    def __call__(self, image_rgb_uint8) -> np.ndarray:
        ...


def empty_boxes():
    """A (0, 4) float64 array: 'no face'."""
    return np.zeros((0, 4), np.float64)


def as_boxes(boxes, what="boxes"):
    """(4,) or (K, 4) array-like -> (K, 4) float64. Raises ValueError for other shapes or
    non-finite values."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return empty_boxes()
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{what}: expected (x0, y0, x1, y1) or (K, 4) boxes, got shape "
                         f"{np.shape(boxes)}")
    if not np.isfinite(b).all():
        raise ValueError(f"{what}: boxes contain NaN or infinite values")
    return b


def parse_box(text, what="box"):
    """"x0,y0,x1,y1" -> [x0, y0, x1, y1] floats; ValueError naming `what` unless there are
    4 numbers with x1 > x0 and y1 > y0."""
    try:
        b = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        b = []
    if len(b) != 4 or not (b[2] > b[0] and b[3] > b[1]):
        raise ValueError(f"{what} wants x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {text!r}")
    return b


def clip_boxes(boxes, image_shape):
    """Clip (K, 4) boxes to an image of shape (H, W[, C]) ([0, W] x [0, H], edge coords).

    Boxes with no area left (entirely outside the image, or degenerate) are dropped; the
    order of the others is kept. Returns (K', 4) float64, (0, 4) when none is left.
    """
    b = as_boxes(boxes)
    if len(b) == 0:
        return b
    h, w = int(image_shape[0]), int(image_shape[1])
    b = np.clip(b, 0.0, [w, h, w, h])
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return b[keep] if keep.any() else empty_boxes()


def sort_boxes(boxes):
    """Boxes sorted by area, largest first (stable for equal areas)."""
    b = as_boxes(boxes)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return b[np.argsort(-area, kind="stable")]


def apply_box_correction(boxes, correction):
    """Map (K, 4) detector boxes to the landmark-box convention with (dcx, dcy, sx, sy):
    new centre = centre + (dcx * w, dcy * h), new size = (sx * w, sy * h)."""
    b = as_boxes(boxes)
    if len(b) == 0:
        return b
    dcx, dcy, sx, sy = (float(v) for v in correction)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + dcx * w
    cy = (b[:, 1] + b[:, 3]) / 2 + dcy * h
    return np.stack([cx - sx * w / 2, cy - sy * h / 2, cx + sx * w / 2, cy + sy * h / 2], 1)


def fit_box_correction(detector_boxes, target_boxes):
    """Least-squares (dcx, dcy, sx, sy) mapping detector boxes onto target (landmark) boxes,
    both (K, 4) edge coordinates, K >= 1: each parameter is the mean of its per-box ratio
    ((target centre - detector centre) / detector size, target size / detector size)."""
    d, t = as_boxes(detector_boxes), as_boxes(target_boxes)
    if len(d) == 0 or d.shape != t.shape:
        raise ValueError(f"fit_box_correction: need matching non-empty (K, 4) boxes, got "
                         f"{d.shape} and {t.shape}")
    dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    dcx = ((t[:, 0] + t[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / dw
    dcy = ((t[:, 1] + t[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / dh
    sx = (t[:, 2] - t[:, 0]) / dw
    sy = (t[:, 3] - t[:, 1]) / dh
    return tuple(float(np.mean(v)) for v in (dcx, dcy, sx, sy))


def _check_image(image):
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    return img


class FallbackDetector:
    """Detectors tried in order: the first one that finds a face gives the boxes.

    detectors: BoxProvider callables (e.g. [HaarFaceDetector(), ProfileFaceDetector()]).
    `last_used` is the index of the detector that answered the last call (None: no face);
    `last_scores` its scores of the returned boxes when it gives any (see UltraFaceDetector),
    else None.
    """

    def __init__(self, detectors):
        self.detectors = list(detectors)
        if not self.detectors:
            raise ValueError("FallbackDetector needs at least one detector")
        self.last_used = None
        self.last_scores = None

    def __call__(self, image):
        self.last_used, self.last_scores = None, None
        for i, det in enumerate(self.detectors):
            boxes = np.asarray(det(image), np.float64).reshape(-1, 4)
            if len(boxes):
                self.last_used = i
                scores = getattr(det, "last_scores", None)
                if scores is not None and np.size(scores) == len(boxes):
                    self.last_scores = np.asarray(scores, np.float64).reshape(-1)
                return boxes
        return empty_boxes()


class FixedBoxes:
    """Boxes given by the user, returned for every image (clipped to it, largest first).

    boxes: (4,) or (K, 4) (x0, y0, x1, y1) edge coordinates; an empty list means 'no face'.
    """

    def __init__(self, boxes):
        self.boxes = as_boxes(boxes, "FixedBoxes")

    def __call__(self, image):
        if len(self.boxes) == 0:
            return empty_boxes()
        return clip_boxes(sort_boxes(self.boxes), np.shape(_check_image(image)))


class LandmarkBoxProvider:
    """Box from the previous landmark estimate (model-free tracking, paper section IV-D).

    update(landmarks) stores an (N, 2) estimate (None forgets it); calling the provider
    returns its tight landmark box, optionally grown by `margin` (fraction of the box size
    per side), clipped to the image: (1, 4), or (0, 4) when there is no estimate or the box
    lies outside the image.
    """

    def __init__(self, landmarks=None, margin=0.0):
        self.margin = float(margin)
        self.landmarks = None
        self.update(landmarks)

    def update(self, landmarks):
        if landmarks is None:
            self.landmarks = None
            return
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[1] != 2 or len(lm) == 0 or not np.isfinite(lm).all():
            raise ValueError(f"LandmarkBoxProvider: expected finite (N, 2) landmarks, got "
                             f"shape {lm.shape}")
        self.landmarks = lm

    def __call__(self, image):
        if self.landmarks is None:
            return empty_boxes()
        b = landmark_box(self.landmarks)
        w, h = b[2] - b[0], b[3] - b[1]
        m = self.margin
        b = b + np.array([-m * w, -m * h, m * w, m * h])
        return clip_boxes(b[None], np.shape(_check_image(image)))
