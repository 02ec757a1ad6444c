"""Overlay drawing of 68-point landmarks, face boxes and captions on RGB images.

All functions take an (H, W, 3) uint8 RGB image and return a NEW image (the input is not
modified). Landmarks are (68, 2) or (N, 2) 0-based pixel-centre (x, y); boxes are
(x0, y0, x1, y1) pixel-edge coordinates (the conventions of fadenn_tf.data.crop). Colours
are RGB tuples. Line widths and marker sizes scale with the face size, so overlays read
the same on a 100 px and a 2000 px face. Used by `predict`, `track`
and anyone wanting a quick look at a result.
"""
import cv2
import numpy as np

from fadenn_tf.data.landmarks68 import CLOSED_GROUPS, GROUPS, NUM_POINTS

_SHIFT = 4                      # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT

# RGB colours
GREEN = (40, 220, 60)
ORANGE = (255, 150, 20)
BLUE = (60, 140, 255)
RED = (235, 40, 40)
WHITE = (255, 255, 255)
YELLOW = (250, 230, 40)
GREY = (160, 160, 160)

# Box colour per box source (see fadenn_tf.inference / fadenn_tf.tracking).
SOURCE_COLORS = {"tracked": GREEN, "detector": ORANGE, "given": BLUE}


def _as_rgb(image):
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    return np.ascontiguousarray(img[:, :, :3]).copy()


def _fixed(points):
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def _scale(landmarks=None, box=None, image_shape=None):
    """Face size in pixels used to scale line widths (from landmarks, else box, else image)."""
    if landmarks is not None and len(landmarks):
        p = np.asarray(landmarks, np.float64)
        ext = p.max(axis=0) - p.min(axis=0)
        if np.isfinite(ext).all():
            return float(max(ext.max(), 1.0))
    if box is not None:
        b = np.asarray(box, np.float64)
        return float(max(b[2] - b[0], b[3] - b[1], 1.0))
    return float(min(image_shape[:2])) / 3 if image_shape is not None else 100.0


def draw_landmarks(image, landmarks, color=GREEN, lines=True, point_color=None,
                   thickness=None):
    """Draw the points (and, for 68 points, the contours of jaw, brows, nose, eyes and lips).

    thickness: line width in pixels (default scaled with the face size). Non-finite points
    are skipped. Returns a new (H, W, 3) uint8 image.
    """
    img = _as_rgb(image)
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2:
        raise ValueError(f"draw_landmarks: expected (N, 2) landmarks, got shape {lm.shape}")
    ok = np.isfinite(lm).all(axis=1)
    size = _scale(lm[ok] if ok.any() else None, image_shape=img.shape)
    t = int(thickness or max(1, round(size / 120)))
    r = max(1.0, size / 70)
    if lines and len(lm) == NUM_POINTS:
        for name, (a, b) in GROUPS.items():
            seg = lm[a:b]
            if not np.isfinite(seg).all():
                continue
            cv2.polylines(img, [_fixed(seg)], name in CLOSED_GROUPS, color, t, cv2.LINE_AA,
                          _SHIFT)
    pc = point_color or color
    for x, y in lm[ok]:
        cv2.circle(img, (int(round(x * _ONE)), int(round(y * _ONE))), int(round(r * _ONE)),
                   pc, -1, cv2.LINE_AA, _SHIFT)
    return img


def draw_box(image, box, color=ORANGE, label=None, thickness=None):
    """Draw a box (x0, y0, x1, y1) edge coordinates with an optional text label above it."""
    img = _as_rgb(image)
    b = np.asarray(box, np.float64).reshape(4)
    if not np.isfinite(b).all():
        raise ValueError(f"draw_box: box {b.tolist()} is not finite")
    size = _scale(box=b)
    t = int(thickness or max(1, round(size / 150)))
    # edge coords -> pixel centres of the outermost covered pixels
    p0 = _fixed([b[0], b[1]])
    p1 = _fixed([b[2] - 1, b[3] - 1])
    cv2.rectangle(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), color, t,
                  cv2.LINE_AA, _SHIFT)
    if label:
        img = draw_text(img, label, (b[0], max(b[1] - 4, 12)), color)
    return img


def draw_text(image, text, origin=(4, 16), color=WHITE, scale=None):
    """Put `text` with a dark outline at origin (x, y) = its baseline's left end, moved
    inside the image where the text would run past an edge."""
    img = _as_rgb(image)
    s = scale or max(0.4, min(img.shape[:2]) / 600)
    th = max(1, int(round(s * 1.5)))
    (tw, tht), base = cv2.getTextSize(str(text), cv2.FONT_HERSHEY_SIMPLEX, s, th + 2)
    h, w = img.shape[:2]
    x = min(max(int(round(origin[0])), 0), max(w - tw - 1, 0))
    y = min(max(int(round(origin[1])), tht + 1), max(h - base - 1, tht + 1))
    org = (x, y)
    cv2.putText(img, str(text), org, cv2.FONT_HERSHEY_SIMPLEX, s, (0, 0, 0), th + 2,
                cv2.LINE_AA)
    cv2.putText(img, str(text), org, cv2.FONT_HERSHEY_SIMPLEX, s, color, th, cv2.LINE_AA)
    return img


def draw_face(image, landmarks=None, box=None, source=None, label=None, color=None):
    """One face: its box (coloured by `source`: tracked green, detector orange, given blue)
    with `label` (default the source name) and its landmarks. Either may be None."""
    img = _as_rgb(image)
    c = color or SOURCE_COLORS.get(source, YELLOW)
    if box is not None:
        img = draw_box(img, box, c, label if label is not None else source)
    if landmarks is not None:
        img = draw_landmarks(img, landmarks, GREEN if color is None else color,
                             point_color=YELLOW)
    return img
