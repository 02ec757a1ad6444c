"""Features of the fitting-failure detector (extract_features), for a grayscale image and (68, 2) pixel-centre landmarks:
1. Scale normalisation: the estimate's own landmark box is mapped, isotropically, so that
   its longer side is `canon` (64) canvas pixels, centred in a canvas of canon + patch
   pixels (80 x 80); pixels outside the image take the mean of those inside. Intensities
   are in [0, 1]. Area interpolation when shrinking, so large faces do not alias.
2. Around each of the `points` (22 of the 68: jaw, brows, nose, eye corners, mouth corners
   and centre) a patch x patch (16 x 16) canvas window is described by
   - a HOG-like histogram: cells x cells (2 x 2) cells, `bins` (8) unsigned gradient
     orientations weighted by gradient magnitude, L2-normalised, clipped at 0.2 and
     renormalised (32 numbers);
   - pooled intensities: pool x pool (4 x 4) block means, minus the mean and divided by the
     standard deviation of the central face box of the canvas (16 numbers).
3. Concatenated: (len(points) * (cells^2 * bins + pool^2),) = (1056,) float32. The model
   standardises them with the training mean and standard deviation.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np

# Jaw 0 4 8 12 16, brows 17 19 21 22 24 26, nose 27 30 33, eye corners 36 39 42 45,
# mouth corners and centre 48 51 54 57.
DEFAULT_POINTS = (0, 4, 8, 12, 16, 17, 19, 21, 22, 24, 26, 27, 30, 33, 36, 39, 42, 45,
                  48, 51, 54, 57)


@dataclass(frozen=True)
class FeatureConfig:
    """Patch-feature parameters (canvas pixels); see the module docstring."""
    points: tuple = DEFAULT_POINTS
    n_points: int = 68
    canon: int = 64
    patch: int = 16
    cells: int = 2
    bins: int = 8
    pool: int = 4

    def __post_init__(self):
        if self.patch % self.cells or self.patch % self.pool:
            raise ValueError("FeatureConfig: patch must be a multiple of cells and pool")
        if not self.points or max(self.points) >= self.n_points or min(self.points) < 0:
            raise ValueError(f"FeatureConfig: points must index 0..{self.n_points - 1}")

    @property
    def dim(self):
        return len(self.points) * (self.cells ** 2 * self.bins + self.pool ** 2)


def _check_image(image):
    """The image as an (H, W) or (H, W, 3|4) uint8 array; ValueError otherwise."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))) or img.size == 0:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    return img


def _gray(img):
    """A checked image (or a window of it) -> (h, w) uint8 gray (RGB weights)."""
    if img.ndim == 2:
        return img
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)


def _to_gray(image):
    """(H, W) or (H, W, 3|4) uint8 image -> (H, W) uint8 gray; ValueError on anything else."""
    return _gray(_check_image(image))


def _canvas(image, landmarks, cfg):
    """(S, S) float32 canvas in [0, 1] and the (N, 2) landmarks in canvas pixel-centre
    coordinates, S = canon + patch. image: a checked image (_check_image), gray or RGB;
    only the window under the canvas is converted to gray."""
    h, w = image.shape[:2]
    size = cfg.canon + cfg.patch
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    side = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
    s = cfg.canon / side  # canvas pixels per image pixel
    # Edge coordinates of the canvas's top-left corner in the image.
    ex0 = (lo[0] + hi[0]) / 2 + 0.5 - size / 2 / s
    ey0 = (lo[1] + hi[1]) / 2 + 0.5 - size / 2 / s
    canvas = None
    jx0, jy0 = max(0, math.floor(ex0)), max(0, math.floor(ey0))
    jx1 = min(w, math.ceil(ex0 + size / s))
    jy1 = min(h, math.ceil(ey0 + size / s))
    if jx1 > jx0 and jy1 > jy0:
        dx0, dy0, dx1, dy1 = (min(max(int(round(v * s)), 0), size) for v in
                              (jx0 - ex0, jy0 - ey0, jx1 - ex0, jy1 - ey0))
        if dx1 > dx0 and dy1 > dy0:
            crop = _gray(image[jy0:jy1, jx0:jx1])
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            part = cv2.resize(crop, (dx1 - dx0, dy1 - dy0), interpolation=interp)
            part = part.astype(np.float32) / 255.0
            canvas = np.full((size, size), float(part.mean()), np.float32)
            canvas[dy0:dy1, dx0:dx1] = part
    if canvas is None:
        canvas = np.zeros((size, size), np.float32)
    pts = (landmarks + 0.5 - [ex0, ey0]) * s - 0.5
    return canvas, pts


def _orientation_bins(ang, bins):
    """Unsigned orientation bin (0..bins-1) of float32 angles in [0, 2 pi) radians (what
    cv2.cartToPolar gives): floor((ang mod pi) / (pi / bins)) in float32. ang - pi is the
    exact float32 remainder for ang in [pi, 2 pi) (Sterbenz), so this equals NumPy's
    `%` bit for bit, at a fraction of its cost."""
    pi = np.float32(np.pi)
    b = (np.where(ang >= pi, ang - pi, ang) / np.float32(np.pi / bins)).astype(np.int32)
    b[b >= bins] -= bins  # (ang mod pi) rounded up to pi is orientation 0
    return b


def _integral(a):
    """Summed-area table (float64) with a zero first row/column: (H, W[, C]) float32 ->
    (H + 1, W + 1[, C])."""
    return cv2.integral(a, sdepth=cv2.CV_64F)


def _cell_sums(table, x0, y0, step, n):
    """Sums over an n x n grid of step-sized cells from top-left corners (x0, y0) (K,) ->
    ((K, n, n, ...) sums, (K, n, n) areas in pixels) using a summed-area table; corners
    are clipped to the table, so a cell sums only its part inside the map."""
    limit_y, limit_x = table.shape[0] - 1, table.shape[1] - 1
    k = np.arange(n + 1) * step
    xs = np.clip(x0[:, None] + k, 0, limit_x)  # (K, n + 1)
    ys = np.clip(y0[:, None] + k, 0, limit_y)
    t = table[ys[:, :, None], xs[:, None, :]]  # (K, n + 1, n + 1, ...)
    sums = t[:, 1:, 1:] - t[:, :-1, 1:] - t[:, 1:, :-1] + t[:, :-1, :-1]
    w = (xs[:, 1:] - xs[:, :-1])[:, None, :] * (ys[:, 1:] - ys[:, :-1])[:, :, None]
    return sums, w


def extract_features(image, landmarks, config=None):
    """Patch descriptor of a landmark estimate: image (H, W) or (H, W, 3) uint8 RGB,
    landmarks (n_points, 2) pixel-centre (x, y) -> (config.dim,) float32 (unstandardised)."""
    cfg = config or FeatureConfig()
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (cfg.n_points, 2) or not np.isfinite(lm).all():
        raise ValueError(f"expected finite ({cfg.n_points}, 2) landmarks, got shape {lm.shape}")
    canvas, pts = _canvas(_check_image(image), lm, cfg)
    gx = cv2.Sobel(canvas, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(canvas, cv2.CV_32F, 0, 1, ksize=1)
    mag, ang = cv2.cartToPolar(gx, gy)
    b = _orientation_bins(ang, cfg.bins)
    hist = np.zeros(canvas.shape + (cfg.bins,), np.float32)  # magnitude in its bin
    hist.reshape(-1, cfg.bins)[np.arange(b.size), b.ravel()] = mag.ravel()

    p = pts[list(cfg.points)]
    x0 = np.round(p[:, 0] + 0.5 - cfg.patch / 2).astype(np.int64)  # patch top-left edge
    y0 = np.round(p[:, 1] + 0.5 - cfg.patch / 2).astype(np.int64)
    hog, _ = _cell_sums(_integral(hist), x0, y0, cfg.patch // cfg.cells, cfg.cells)
    hog = hog.reshape(len(p), -1)
    hog /= np.sqrt((hog ** 2).sum(1, keepdims=True) + 1e-6)
    hog = np.minimum(hog, 0.2)
    hog /= np.sqrt((hog ** 2).sum(1, keepdims=True) + 1e-6)

    m = cfg.patch // 2
    face = canvas[m:-m, m:-m]
    mu, sd = float(face.mean()), float(face.std()) + 1e-3
    sums, area = _cell_sums(_integral(canvas), x0, y0, cfg.patch // cfg.pool, cfg.pool)
    pooled = np.where(area > 0, sums / np.maximum(area, 1), mu)
    pooled = ((pooled - mu) / sd).reshape(len(p), -1)
    return np.concatenate([hog, pooled], axis=1).reshape(-1).astype(np.float32)
