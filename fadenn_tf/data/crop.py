"""The one crop/uncrop transform: face box -> 2x region -> clip -> resize to the network size.

Used by training, evaluation, prediction, tracking and the exported bytes signature.

Coordinate conventions
----------------------
* Points (landmarks) are 0-based pixel-centre coordinates: the top-left pixel's centre is
  (0, 0) and pixel i covers [i - 0.5, i + 0.5].
* Boxes and regions are (x0, y0, x1, y1) in continuous pixel-EDGE coordinates: pixel i covers
  [i, i + 1], the image covers [0, W] x [0, H]. A point at pixel-centre x sits at edge
  coordinate x + 0.5, so `landmark_box` adds 0.5. A detector rectangle (x, y, w, h) in
  pixels is the box (x, y, x + w, y + h).
* A crop of side `size` maps the region onto [0, size]^2 (edges), i.e. a pixel-centre point
  x goes to  u = (x + 0.5 - rx0) * size / (rx1 - rx0) - 0.5  (y alike with its own scale).

The region is 2x the box (extended by half the box width/height on every side) and then
clipped to the image, as in the paper; after clipping it is generally not square, so the crop
scales x and y differently (clip then resize). Landmarks go through the same affine map and
predictions come back through its exact inverse.

Sampling: pixels outside the image read as the nearest edge pixel for the half pixel between
the outermost pixel centre and the image edge (so clipped crops have no dark rim), and as 0
further out (only reachable with clip=False). `crop_image` (NumPy/OpenCV, area-filtered
when shrinking) and `crop_and_resize_tf` (TensorFlow, bilinear, no pre-filter) implement the
same pixel mapping.
"""
import math

import cv2
import numpy as np
from fadenn_tf.errors import DataError
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")        # imported at first use: fast --help

# The crop region is CROP_SCALE times the face box (field notes: extend by half the box on
# every side). Models record it in their metadata (fadenn_tf.models.io).
CROP_SCALE = 2.0
# Field notes: x-min, x-max, y-min move by U(-0.25, 0.25) of the box size, y-max by U(0.05, 0.25).
JITTER_LOW = np.array([-0.25, -0.25, -0.25, 0.05])
JITTER_HIGH = np.array([0.25, 0.25, 0.25, 0.25])
# Training box jitter by name (config data.augment.box_jitter): (low, high) of each edge's
# move (x0, y0, x1, y1) in box widths (x) / heights (y). "paper": the original code's (box
# size 0.5-1.5x, always taller); "detector": every edge U(-0.1, 0.1), the spread of the
# default detector's mapped boxes about the landmark box (centre shift median 5% of the box,
# size ratio 0.93-1.09 for 80% of the AFW faces: experiments/photo_end_to_end.py).
BOX_JITTERS = {"paper": (JITTER_LOW, JITTER_HIGH),
               "detector": (np.full(4, -0.1), np.full(4, 0.1))}


def landmark_box(points):
    """Tight box of (N, 2) pixel-centre points as edge coordinates (x0, y0, x1, y1), float64."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise ValueError(f"landmark_box: expected (N, 2) points, got shape {p.shape}")
    return np.concatenate([p.min(axis=0), p.max(axis=0)]) + 0.5


def box_from_xywh(rect):
    """Detector rectangle (x, y, w, h) in pixels -> edge-coordinate box (x0, y0, x1, y1)."""
    x, y, w, h = (float(v) for v in rect)
    return np.array([x, y, x + w, y + h])


def checked_crop_scale(value, where):
    """`value` (a model metadata's crop_scale: the crop region as a multiple of the face
    box) as a float. Raises DataError naming `where` (the metadata file) when it is not a
    finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise DataError(where, f"crop_scale must be a number > 0 (the crop region as a "
                               f"multiple of the face box), got {value!r}")
    return float(value)


def crop_region(box, image_hw, scale=CROP_SCALE, clip=True):
    """Region (x0, y0, x1, y1), float64 edge coords: `box` grown to `scale` times its width
    and height about its centre ((scale - 1) / 2 of the size per side), clipped to
    [0, W] x [0, H] when `clip`. Raises ValueError if the result is empty."""
    x0, y0, x1, y1 = (float(v) for v in box)
    h_img, w_img = int(image_hw[0]), int(image_hw[1])
    w, h = x1 - x0, y1 - y0
    if not (w > 0 and h > 0):
        raise ValueError(f"crop_region: box {tuple(box)} has no area")
    m = (scale - 1.0) / 2.0
    r = np.array([x0 - m * w, y0 - m * h, x1 + m * w, y1 + m * h])
    if clip:
        r = np.clip(r, 0.0, [w_img, h_img, w_img, h_img])
    if not (r[2] - r[0] > 0 and r[3] - r[1] > 0):
        raise ValueError(f"crop_region: box {tuple(box)} lies outside the {w_img}x{h_img} image")
    return r


class CropTransform:
    """Affine map image (pixel-centre) -> crop (pixel-centre) for `region` resized to size^2.

    u = sx * x + tx, v = sy * y + ty with sx = size / (rx1 - rx0), tx = (0.5 - rx0) * sx - 0.5.
    """

    def __init__(self, region, size):
        self.region = np.asarray(region, dtype=np.float64).reshape(4)
        self.size = int(size)
        rx0, ry0, rx1, ry1 = self.region
        if not (rx1 > rx0 and ry1 > ry0):
            raise ValueError(f"CropTransform: empty region {tuple(self.region)}")
        if self.size < 2:
            raise ValueError(f"CropTransform: size must be >= 2, got {size}")
        self.sx = self.size / (rx1 - rx0)
        self.sy = self.size / (ry1 - ry0)
        self.tx = (0.5 - rx0) * self.sx - 0.5
        self.ty = (0.5 - ry0) * self.sy - 0.5

    @classmethod
    def from_box(cls, box, image_hw, size, scale=CROP_SCALE, clip=True):
        """The transform of `crop_region(box, image_hw, scale, clip)` resized to `size`."""
        return cls(crop_region(box, image_hw, scale, clip), size)

    @property
    def matrix(self):
        """2x3 float64 forward matrix (image -> crop), the form cv2.warpAffine takes."""
        return np.array([[self.sx, 0.0, self.tx], [0.0, self.sy, self.ty]])

    def apply(self, points):
        """(..., 2) image points -> crop points (float64)."""
        p = np.asarray(points, dtype=np.float64)
        return p * [self.sx, self.sy] + [self.tx, self.ty]

    def apply_box(self, box):
        """Edge-coordinate box (x0, y0, x1, y1) of the image -> the same box in crop edge
        coordinates (float64): x' = (x - rx0) * sx."""
        b = np.asarray(box, dtype=np.float64).reshape(4)
        r = self.region
        return (b - [r[0], r[1], r[0], r[1]]) * [self.sx, self.sy, self.sx, self.sy]

    def invert(self, points):
        """(..., 2) crop points (e.g. predictions) -> image points; exact inverse of apply."""
        p = np.asarray(points, dtype=np.float64)
        return (p - [self.tx, self.ty]) / [self.sx, self.sy]

    def __repr__(self):
        return f"CropTransform(region={self.region.tolist()}, size={self.size})"


def _sample_window(scale, shift, size, extent):
    """[lo, hi) source pixels that crop pixel centres u = 0..size-1 of the map
    u = scale * x + shift sample, with a 2-pixel margin, clipped to [0, extent); the whole
    range when no sample falls inside."""
    a, b = sorted(((0.0 - shift) / scale, (size - 1.0 - shift) / scale))
    lo, hi = max(0, math.floor(a) - 2), min(extent, math.ceil(b) + 3)
    return (lo, hi) if hi > lo else (0, extent)


def crop_image(image, transform, interpolation=cv2.INTER_LINEAR, antialias=True):
    """Crop HxWxC (or HxW) `image` to size x size through `transform` (same dtype).

    Pixel mapping is exactly `transform` (cv2.warpAffine quantises sample positions to 1/32
    px). When the region is shrunk by 2x or more along an axis and `antialias`, the image
    window under the region is first reduced with cv2.INTER_AREA by about that integer
    factor and the affine is composed with the exact pixel-centre map of that resize.
    Edge handling as in the module docstring (replicate for half a pixel, then 0).
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"crop_image: expected HxW or HxWxC image, got shape {img.shape}")
    h_img, w_img = img.shape[:2]
    size = transform.size
    m = transform.matrix.copy()
    kx, ky = int(math.floor(1.0 / transform.sx)), int(math.floor(1.0 / transform.sy))
    src = img
    if antialias and (kx >= 2 or ky >= 2):
        rx0, ry0, rx1, ry1 = transform.region
        kx, ky = max(kx, 1), max(ky, 1)
        wx0 = max(0, int(math.floor(rx0)) - 2 * kx)
        wx1 = min(w_img, int(math.ceil(rx1)) + 2 * kx)
        wy0 = max(0, int(math.floor(ry0)) - 2 * ky)
        wy1 = min(h_img, int(math.ceil(ry1)) + 2 * ky)
        if wx1 > wx0 and wy1 > wy0:
            win = img[wy0:wy1, wx0:wx1]
            dw = max(1, int(round((wx1 - wx0) / kx)))
            dh = max(1, int(round((wy1 - wy0) / ky)))
            src = cv2.resize(win, (dw, dh), interpolation=cv2.INTER_AREA)
            if img.ndim == 3 and src.ndim == 2:
                src = src[:, :, None]
            fx, fy = (wx1 - wx0) / dw, (wy1 - wy0) / dh
            # small pixel xs sits at image x = (xs + 0.5) * fx - 0.5 + wx0
            m = np.array([[transform.sx * fx, 0.0, transform.sx * (0.5 * fx - 0.5 + wx0) + transform.tx],
                          [0.0, transform.sy * fy, transform.sy * (0.5 * fy - 0.5 + wy0) + transform.ty]])
    # Only the window of src under the crop's samples (with a 2-pixel margin for the
    # interpolation) is padded and warped: the cost does not grow with the image. Its pad
    # replicates the image edge where the window reaches it (the half-pixel rule); where it
    # lies inside the image, the pad is never sampled.
    sx0, sx1 = _sample_window(m[0, 0], m[0, 2], size, src.shape[1])
    sy0, sy1 = _sample_window(m[1, 1], m[1, 2], size, src.shape[0])
    padded = cv2.copyMakeBorder(src[sy0:sy1, sx0:sx1], 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    if img.ndim == 3 and padded.ndim == 2:
        padded = padded[:, :, None]
    # padded pixel xp = xs - sx0 + 1, so u = a * (xp + sx0 - 1) + t
    m[:, 2] += np.diag(m[:, :2]) * (np.array([sx0, sy0]) - 1)
    out = cv2.warpAffine(padded, m, (size, size), flags=interpolation,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if img.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


# ----------------------------------------------------------------------------- TensorFlow


def pad_for_crop(images):
    """Replicate-pad [B, H, W, C] images by one pixel (tf). `crop_and_resize_tf(...,
    prepadded=True)` takes the result, so a stack of images can be padded once and reused."""
    return tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")


def crop_and_resize_tf(images, regions, size, box_indices=None, prepadded=False):
    """Crop [B, H, W, C] images (any real dtype) to [N, size, size, C] float32, bilinear.

    regions: [N, 4] edge-coordinate (x0, y0, x1, y1) in the UNPADDED image frame; crop n is
    taken from image box_indices[n] (default n). Output pixel centre u samples input
    x = (u + 0.5) * (rx1 - rx0) / size + rx0 - 0.5, the mapping of `CropTransform`.
    No anti-alias pre-filter: keep the shrink factor small (the training pipeline pre-crops).
    Works inside tf.function / SavedModel.
    """
    images = tf.convert_to_tensor(images)
    regions = tf.cast(tf.convert_to_tensor(regions), tf.float32)
    padded = images if prepadded else pad_for_crop(images)
    shape = tf.shape(padded)
    hp = tf.cast(shape[1], tf.float32)
    wp = tf.cast(shape[2], tf.float32)
    if box_indices is None:
        box_indices = tf.range(tf.shape(regions)[0])
    box_indices = tf.cast(box_indices, tf.int32)
    size_f = float(size)
    rx0, ry0, rx1, ry1 = tf.unstack(regions, axis=-1)
    # crop_and_resize samples y = y1 * (Hp - 1) + i * (y2 - y1) * (Hp - 1) / (size - 1) in the
    # padded frame (unpadded + 1). Solve for y1, y2 so that y(i) = (i + .5) h / size + ry0 - .5 + 1.
    h = ry1 - ry0
    w = rx1 - rx0
    ny1 = (ry0 + 0.5 + 0.5 * h / size_f) / (hp - 1.0)
    ny2 = ny1 + h * (size_f - 1.0) / (size_f * (hp - 1.0))
    nx1 = (rx0 + 0.5 + 0.5 * w / size_f) / (wp - 1.0)
    nx2 = nx1 + w * (size_f - 1.0) / (size_f * (wp - 1.0))
    boxes = tf.stack([ny1, nx1, ny2, nx2], axis=-1)
    return tf.image.crop_and_resize(padded, boxes, box_indices, [int(size), int(size)],
                                    method="bilinear", extrapolation_value=0.0)


def _scales_tf(regions, size):
    regions = tf.cast(regions, tf.float32)
    rx0, ry0, rx1, ry1 = tf.unstack(regions, axis=-1)
    s = tf.stack([size / (rx1 - rx0), size / (ry1 - ry0)], axis=-1)[:, None, :]
    o = tf.stack([rx0, ry0], axis=-1)[:, None, :]
    return s, o


def transform_points_tf(points, regions, size):
    """[B, N, 2] image points -> crop points for [B, 4] regions (float32); see CropTransform."""
    s, o = _scales_tf(regions, float(size))
    return (tf.cast(points, tf.float32) + 0.5 - o) * s - 0.5


def invert_points_tf(points, regions, size):
    """[B, N, 2] crop points -> image points; exact inverse of transform_points_tf."""
    s, o = _scales_tf(regions, float(size))
    return (tf.cast(points, tf.float32) + 0.5) / s + o - 0.5


def landmark_boxes_tf(points):
    """[B, N, 2] pixel-centre points -> [B, 4] edge-coordinate tight boxes."""
    p = tf.cast(points, tf.float32)
    return tf.concat([tf.reduce_min(p, axis=1), tf.reduce_max(p, axis=1)], axis=-1) + 0.5


def crop_regions_tf(boxes, image_hw, scale=CROP_SCALE, clip=True):
    """[B, 4] boxes -> [B, 4] regions (tf version of crop_region). image_hw: [2] or [B, 2].
    A degenerate region (box outside the image) is widened to 1e-3 px instead of raising."""
    boxes = tf.cast(boxes, tf.float32)
    x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
    m = (scale - 1.0) / 2.0
    w, h = x1 - x0, y1 - y0
    r = tf.stack([x0 - m * w, y0 - m * h, x1 + m * w, y1 + m * h], axis=-1)
    if clip:
        hw = tf.cast(tf.convert_to_tensor(image_hw), tf.float32)
        hw = tf.broadcast_to(tf.reshape(hw, [-1, 2]), [tf.shape(r)[0], 2])
        hi = tf.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], axis=-1)
        r = tf.clip_by_value(r, 0.0, hi)
    rx0, ry0, rx1, ry1 = tf.unstack(r, axis=-1)
    return tf.stack([rx0, ry0, tf.maximum(rx1, rx0 + 1e-3), tf.maximum(ry1, ry0 + 1e-3)], axis=-1)


def jitter_box(box, rng):
    """Training jitter of one box (field notes): x0, x1, y0 move by U(-.25, .25) and y1 by
    U(.05, .25) of the box width (x) / height (y). rng: np.random.Generator. Returns float64."""
    b = np.asarray(box, dtype=np.float64)
    w, h = b[2] - b[0], b[3] - b[1]
    return b + rng.uniform(JITTER_LOW, JITTER_HIGH) * [w, h, w, h]


def jitter_boxes_tf(boxes, seed, kind="paper"):
    """Stateless tf box jitter of [B, 4] boxes (jitter_box for kind "paper"); seed: int [2];
    kind: a key of BOX_JITTERS."""
    boxes = tf.cast(boxes, tf.float32)
    u = tf.random.stateless_uniform(tf.shape(boxes), seed=seed)
    low, high = BOX_JITTERS[kind]
    lo = tf.constant(low, tf.float32)
    hi = tf.constant(high, tf.float32)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes + (lo + u * (hi - lo)) * tf.stack([w, h, w, h], axis=-1)
