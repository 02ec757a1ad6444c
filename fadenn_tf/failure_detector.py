"""Fitting-failure detector for tracking (paper section IV-D): an independent logistic
regressor over image patches around the landmark estimates. score(image, landmarks) is the
probability that the estimate is a GOOD fit; below `threshold` (0.5) the tracker treats the
frame as a failure and re-initialises with the face detector.

Features (extract_features), for a grayscale image and (68, 2) pixel-centre landmarks:
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

Model: binary logistic regression in NumPy, trained by damped Newton iterations on
mean log-loss + l2 / 2 * ||w||^2 (bias not penalised). Label 1 = good fit, 0 = failure.

Training data (make_training_set): positives are the ground-truth landmarks under small
similarity perturbations and point noise (NME < 0.03); negatives are the ground truth
translated, scaled, rotated, distorted point by point, combined, or moved onto background
(NME > 0.15). NME here = mean point error / diagonal of the ground-truth landmark box.
"""
import json
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import atomic_path

FORMAT_VERSION = 1
# Jaw 0 4 8 12 16, brows 17 19 21 22 24 26, nose 27 30 33, eye corners 36 39 42 45,
# mouth corners and centre 48 51 54 57.
DEFAULT_POINTS = (0, 4, 8, 12, 16, 17, 19, 21, 22, 24, 26, 27, 30, 33, 36, 39, 42, 45,
                  48, 51, 54, 57)
POSITIVE_MAX_NME = 0.03
NEGATIVE_MIN_NME = 0.15


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


def _to_gray(image):
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    return img


def _canvas(gray, landmarks, cfg):
    """(S, S) float32 canvas in [0, 1] and the (N, 2) landmarks in canvas pixel-centre
    coordinates, S = canon + patch."""
    h, w = gray.shape
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
        dx0 = int(np.clip(round((jx0 - ex0) * s), 0, size))
        dy0 = int(np.clip(round((jy0 - ey0) * s), 0, size))
        dx1 = int(np.clip(round((jx1 - ex0) * s), 0, size))
        dy1 = int(np.clip(round((jy1 - ey0) * s), 0, size))
        if dx1 > dx0 and dy1 > dy0:
            crop = gray[jy0:jy1, jx0:jx1]
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            part = cv2.resize(crop, (dx1 - dx0, dy1 - dy0), interpolation=interp)
            part = part.astype(np.float32) / 255.0
            canvas = np.full((size, size), float(part.mean()), np.float32)
            canvas[dy0:dy1, dx0:dx1] = part
    if canvas is None:
        canvas = np.zeros((size, size), np.float32)
    pts = (landmarks + 0.5 - [ex0, ey0]) * s - 0.5
    return canvas, pts


def _integral(a):
    """Summed-area table with a zero first row/column along axes 0 and 1."""
    out = np.zeros((a.shape[0] + 1, a.shape[1] + 1) + a.shape[2:], np.float64)
    out[1:, 1:] = a.cumsum(0).cumsum(1)
    return out


def _cell_sums(table, x0, y0, step, n):
    """Sums over an n x n grid of step-sized cells from top-left corners (x0, y0) (K,) ->
    (K, n, n, ...) using a summed-area table; corners are clipped to the table."""
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
    canvas, pts = _canvas(_to_gray(image), lm, cfg)
    gx = cv2.Sobel(canvas, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(canvas, cv2.CV_32F, 0, 1, ksize=1)
    mag, ang = cv2.cartToPolar(gx, gy)
    b = (np.floor((ang % np.pi) / (np.pi / cfg.bins)).astype(np.int64)) % cfg.bins
    hist = np.zeros(canvas.shape + (cfg.bins,), np.float32)
    np.put_along_axis(hist, b[:, :, None], mag[:, :, None], axis=2)

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


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class FailureDetector:
    """Logistic regression over patch features; label 1 = good fit, 0 = failure.

    After fit: weights (D,), bias, mean (D,), std (D,) (feature standardisation).
    threshold: score below it means 'fitting failure'.
    """

    def __init__(self, feature_config=None, l2=1e-2, threshold=0.5):
        self.feature_config = feature_config or FeatureConfig()
        self.l2 = float(l2)
        self.threshold = float(threshold)
        self.weights = None
        self.bias = 0.0
        self.mean = None
        self.std = None
        self.info = {}

    # ------------------------------------------------------------------------- training
    def fit(self, X, y, max_iter=50, tol=1e-6):
        """Fit on features X (n, D) and labels y (n,) in {0, 1}. Returns self."""
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64).reshape(-1)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise ValueError(f"fit: need X (n, D) and y (n,), got {X.shape} and {y.shape}")
        if set(np.unique(y)) - {0.0, 1.0} or len(np.unique(y)) < 2:
            raise ValueError("fit: y must contain both labels 0 (failure) and 1 (good)")
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 1e-6, std, 1.0)
        Z = np.hstack([(X - self.mean) / self.std, np.ones((len(X), 1))])
        n, d = Z.shape
        reg = np.full(d, self.l2)
        reg[-1] = 1e-8
        w = np.zeros(d)

        def loss(wv):
            z = Z @ wv
            return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(reg * wv * wv))

        current = loss(w)
        for it in range(max_iter):
            p = _sigmoid(Z @ w)
            g = Z.T @ (p - y) / n + reg * w
            H = (Z * (p * (1 - p))[:, None]).T @ Z / n + np.diag(reg)
            step = np.linalg.solve(H, g)
            t = 1.0
            while True:  # backtracking line search: Newton can overshoot on separable data
                trial = loss(w - t * step)
                if trial <= current - 1e-4 * t * float(g @ step) or t < 1e-6:
                    break
                t *= 0.5
            w -= t * step
            done = abs(current - trial) < tol * max(1.0, abs(current))
            current = trial
            if done or np.max(np.abs(t * step)) < tol:
                break
        self.weights, self.bias = w[:-1], float(w[-1])
        self.info = {"n_train": int(n), "n_positive": int(y.sum()), "iterations": it + 1,
                     "train_loss": current}
        return self

    # ------------------------------------------------------------------------ inference
    def _check_fitted(self):
        if self.weights is None:
            raise RuntimeError("FailureDetector is not fitted (call fit or load)")

    def predict_proba(self, features):
        """P(good fit) for features (n, D) -> (n,) float64, or (D,) -> float."""
        self._check_fitted()
        f = np.asarray(features, np.float64)
        single = f.ndim == 1
        f = f[None] if single else f
        if f.ndim != 2 or f.shape[1] != len(self.weights):
            raise ValueError(f"predict_proba: expected (n, {len(self.weights)}) features, "
                             f"got {np.shape(features)}")
        p = _sigmoid(((f - self.mean) / self.std) @ self.weights + self.bias)
        return float(p[0]) if single else p

    def features(self, image, landmarks):
        """extract_features with this detector's FeatureConfig -> (D,) float32."""
        return extract_features(image, landmarks, self.feature_config)

    def score(self, image, landmarks):
        """Probability in [0, 1] that `landmarks` (68, 2) fit the face in `image` (H, W[, 3])
        uint8 RGB) well."""
        return self.predict_proba(self.features(image, landmarks))

    def is_failure(self, image, landmarks):
        """True when score(image, landmarks) < threshold."""
        return self.score(image, landmarks) < self.threshold

    # ---------------------------------------------------------------------- persistence
    def save(self, path):
        """Write the model to `path` (a .npz file, written atomically)."""
        self._check_fitted()
        meta = {"format": "fadenn_tf.failure_detector", "version": FORMAT_VERSION,
                "feature_config": asdict(self.feature_config), "l2": self.l2,
                "threshold": self.threshold, "info": self.info}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, weights=self.weights, bias=np.array(self.bias),
                         mean=self.mean, std=self.std, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path):
        """Read a model written by save(). Raises DataError naming the file on problems."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DataError(path, "failure-detector file not found") from None
        except (OSError, ValueError) as exc:
            raise DataError(path, f"not a failure-detector .npz file ({exc})") from None
        if not isinstance(arrays, dict):
            raise DataError(path, "not a failure-detector .npz file")
        missing = {"weights", "bias", "mean", "std", "meta"} - set(arrays)
        if missing:
            raise DataError(path, f"not a failure-detector file: missing {sorted(missing)}")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"corrupt metadata ({exc})") from None
        if meta.get("format") != "fadenn_tf.failure_detector":
            raise DataError(path, "not a failure-detector file (wrong format tag)")
        if meta.get("version") != FORMAT_VERSION:
            raise DataError(path, f"failure-detector format version {meta.get('version')} is "
                                  f"not supported (this code reads {FORMAT_VERSION})")
        fc = dict(meta["feature_config"])
        fc["points"] = tuple(fc["points"])
        try:
            cfg = FeatureConfig(**fc)
        except (TypeError, ValueError) as exc:
            raise DataError(path, f"invalid feature configuration ({exc})") from None
        det = cls(cfg, l2=meta.get("l2", 1e-2), threshold=meta.get("threshold", 0.5))
        det.weights = arrays["weights"].astype(np.float64)
        det.bias = float(arrays["bias"])
        det.mean = arrays["mean"].astype(np.float64)
        det.std = arrays["std"].astype(np.float64)
        det.info = meta.get("info", {})
        shapes = {det.weights.shape, det.mean.shape, det.std.shape}
        if shapes != {(cfg.dim,)}:
            raise DataError(path, f"array shapes {sorted(shapes)} do not match the feature "
                                  f"size {cfg.dim}")
        if not all(np.isfinite(a).all() for a in (det.weights, det.mean, det.std)):
            raise DataError(path, "model contains NaN or infinite values")
        return det


# ------------------------------------------------------------------------- training data

def nme_diag(pred, gt):
    """Mean point error divided by the diagonal of gt's landmark box."""
    gt = np.asarray(gt, np.float64)
    wh = gt.max(axis=0) - gt.min(axis=0)
    return float(np.linalg.norm(np.asarray(pred) - gt, axis=1).mean() / np.hypot(*wh))


def _similar(lm, centre, scale=1.0, angle=0.0, shift=(0.0, 0.0)):
    c, s = math.cos(angle), math.sin(angle)
    R = np.array([[c, -s], [s, c]]) * scale
    return (lm - centre) @ R.T + centre + np.asarray(shift)


def perturb_good(gt, rng, max_nme=POSITIVE_MAX_NME):
    """A small perturbation of gt (N, 2) with NME < max_nme (a 'good fit')."""
    centre = gt.mean(axis=0)
    diag = float(np.hypot(*(gt.max(0) - gt.min(0))))
    for shrink in (1.0, 0.5, 0.25, 0.1, 0.0):
        out = _similar(gt, centre, 1 + shrink * rng.normal(0, 0.015),
                       shrink * rng.normal(0, math.radians(1.5)),
                       shrink * rng.normal(0, 0.008 * diag, 2))
        out = out + shrink * rng.normal(0, 0.006 * diag, gt.shape)
        if nme_diag(out, gt) < max_nme:
            return out
    return gt.copy()


def perturb_bad(gt, rng, image_hw, min_nme=NEGATIVE_MIN_NME, tries=30):
    """A strong corruption of gt (N, 2) with NME > min_nme (a 'fitting failure'), or None.

    Kinds, drawn uniformly: translation, scaling, rotation, point-wise distortion, a mix of
    milder ones, and the shape moved onto a background region of the image."""
    h, w = image_hw
    centre = gt.mean(axis=0)
    lo, hi = gt.min(axis=0), gt.max(axis=0)
    diag = float(np.hypot(*(hi - lo)))
    for _ in range(tries):
        kind = rng.integers(6)
        if kind == 0:
            a = rng.uniform(0, 2 * math.pi)
            out = gt + rng.uniform(0.18, 0.6) * diag * np.array([math.cos(a), math.sin(a)])
        elif kind == 1:
            s = rng.uniform(0.35, 0.6) if rng.random() < 0.5 else rng.uniform(1.5, 2.2)
            out = _similar(gt, centre, scale=s)
        elif kind == 2:
            out = _similar(gt, centre, angle=rng.choice([-1, 1]) * math.radians(
                rng.uniform(35, 120)))
        elif kind == 3:
            out = gt + rng.normal(0, rng.uniform(0.13, 0.25) * diag, gt.shape)
        elif kind == 4:
            a = rng.uniform(0, 2 * math.pi)
            out = _similar(gt, centre, rng.uniform(0.7, 1.4), math.radians(rng.uniform(-25, 25)),
                           rng.uniform(0.08, 0.3) * diag * np.array([math.cos(a), math.sin(a)]))
        else:  # background: box centre somewhere it overlaps the face box little
            bw, bh = hi - lo
            cx = rng.uniform(bw / 2, max(bw / 2 + 1, w - bw / 2))
            cy = rng.uniform(bh / 2, max(bh / 2 + 1, h - bh / 2))
            out = gt - (lo + hi) / 2 + [cx, cy]
            if abs(cx - (lo[0] + hi[0]) / 2) < 0.8 * bw and abs(cy - (lo[1] + hi[1]) / 2) < 0.8 * bh:
                continue
        if nme_diag(out, gt) > min_nme:
            return out
    return None


def _iter_items(samples):
    """Yield (image, landmarks) from Samples (read from disk; video frames share one reader)
    or from (image, landmarks) pairs. Samples without landmarks are skipped."""
    samples = list(samples)
    if samples and hasattr(samples[0], "image_path"):
        from fadenn_tf.data.datasets import iter_sample_images
        usable = [s for s in samples if s.landmarks is not None]
        for sample, image in iter_sample_images(usable):
            yield image, np.asarray(sample.landmarks, np.float64)
        return
    for image, landmarks in samples:
        yield np.asarray(image), np.asarray(landmarks, np.float64)


def make_training_set(samples, rng, pos_per_sample=2, neg_per_sample=3, feature_config=None,
                      progress=False):
    """Features and labels for the failure detector.

    samples: fadenn_tf.data.sample.Sample records with 68-point landmarks (images read with
    fadenn_tf.data.datasets.iter_sample_images) or (image (H, W[, 3]) uint8, landmarks
    (68, 2)) pairs. rng: numpy Generator or seed.
    Returns X (n, D) float32 and y (n,) int8 (1 = good fit, 0 = failure); samples without
    68-point landmarks are skipped.
    """
    rng = np.random.default_rng(rng)
    cfg = feature_config or FeatureConfig()
    X, y = [], []
    for image, gt in _usable_items(samples, cfg, "features", progress):
        gray = _to_gray(image)
        for _ in range(pos_per_sample):
            X.append(extract_features(gray, perturb_good(gt, rng), cfg))
            y.append(1)
        for _ in range(neg_per_sample):
            bad = perturb_bad(gt, rng, gray.shape)
            if bad is not None:
                X.append(extract_features(gray, bad, cfg))
                y.append(0)
    return _stacked(X, y, cfg)


def _usable_items(samples, cfg, desc, progress):
    """(image, landmarks) of the samples with cfg.n_points landmarks, with a progress bar."""
    from fadenn_tf.utils.progress import progress as bar
    samples = list(samples)
    for image, gt in bar(_iter_items(samples), total=len(samples), desc=desc,
                         enabled=progress, unit="img"):
        if gt.shape == (cfg.n_points, 2):
            yield image, gt


def _stacked(X, y, cfg):
    if not X:
        return np.zeros((0, cfg.dim), np.float32), np.zeros((0,), np.int8)
    return np.stack(X), np.asarray(y, np.int8)


def model_fit_boxes(gt, rng, n_good=1, n_bad=2):
    """Boxes to fit a model in, around the ground truth (68, 2): n_good near the landmark
    box (centre moved by <= 8%, size scaled by 0.9-1.1) and n_bad far from it (centre moved
    by 35-90% of the box, or size halved / doubled). Returns (n_good + n_bad, 4)."""
    from fadenn_tf.data.crop import landmark_box
    b = landmark_box(gt)
    w, h = b[2] - b[0], b[3] - b[1]
    out = []
    for k in range(n_good + n_bad):
        if k < n_good:
            shift, scale = rng.uniform(-0.08, 0.08, 2), rng.uniform(0.9, 1.1)
        else:
            a = rng.uniform(0, 2 * math.pi)
            shift = rng.uniform(0.35, 0.9) * np.array([math.cos(a), math.sin(a)])
            scale = rng.choice([rng.uniform(0.4, 0.6), rng.uniform(1.7, 2.3), 1.0])
        cx, cy = (b[0] + b[2]) / 2 + shift[0] * w, (b[1] + b[3]) / 2 + shift[1] * h
        out.append([cx - scale * w / 2, cy - scale * h / 2, cx + scale * w / 2,
                    cy + scale * h / 2])
    return np.asarray(out)


def make_model_fit_set(samples, predictor, rng, n_good=1, n_bad=2, feature_config=None,
                       max_good_nme=POSITIVE_MAX_NME, min_bad_nme=NEGATIVE_MIN_NME,
                       progress=False):
    """Features of a real model's fits: `predictor` (fadenn_tf.predict.Predictor) fits the
    landmarks in boxes from model_fit_boxes; a fit with NME < max_good_nme is a good fit
    (label 1), one with NME > min_bad_nme a failure (0), the ones in between are dropped.
    These are the estimates a tracker really sees. Returns X (n, D) float32, y (n,) int8."""
    cfg = feature_config or FeatureConfig()
    rng = np.random.default_rng(rng)
    X, y = [], []
    for image, gt in _usable_items(samples, cfg, "model fits", progress):
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        boxes = model_fit_boxes(gt, rng, n_good, n_bad)
        h, w = img.shape[:2]
        boxes = boxes[(boxes[:, 2] > 1) & (boxes[:, 3] > 1) & (boxes[:, 0] < w - 1)
                      & (boxes[:, 1] < h - 1)]
        if not len(boxes):
            continue
        fits = predictor.predict(img, boxes=boxes)[0].faces
        gray = _to_gray(img)
        for face in fits:
            err = nme_diag(face.landmarks, gt)
            if err < max_good_nme or err > min_bad_nme:
                X.append(extract_features(gray, face.landmarks, cfg))
                y.append(int(err < max_good_nme))
    return _stacked(X, y, cfg)


def train_failure_detector(samples, seed=0, l2=1e-2, pos_per_sample=2, neg_per_sample=3,
                           feature_config=None, progress=False, predictor=None,
                           max_good_nme=POSITIVE_MAX_NME):
    """Train a FailureDetector on `samples` (see make_training_set) with seed `seed`; with a
    `predictor`, the model's own fits are added (make_model_fit_set: 1 good-box and 2
    far-box fits per image, good when NME < max_good_nme)."""
    X, y = make_training_set(samples, np.random.default_rng(seed), pos_per_sample,
                             neg_per_sample, feature_config, progress)
    if predictor is not None:
        Xm, ym = make_model_fit_set(samples, predictor, np.random.default_rng([seed, 1]),
                                    feature_config=feature_config,
                                    max_good_nme=max_good_nme, progress=progress)
        X, y = np.concatenate([X, Xm]), np.concatenate([y, ym])
    if len(y) == 0:
        raise ValueError("train_failure_detector: no usable sample (need 68-point landmarks)")
    det = FailureDetector(feature_config, l2=l2).fit(X, y)
    det.info["seed"] = int(seed)
    return det


def evaluate_failure_detector(detector, samples, seed=1, pos_per_sample=2, neg_per_sample=3,
                              progress=False, predictor=None, max_good_nme=POSITIVE_MAX_NME):
    """Accuracy on perturbations of held-out `samples` -> dict(accuracy, good_recall
    (good fits accepted), failure_recall (failures caught), n_good, n_failure, threshold).
    With a `predictor`, the same on the model's own fits (make_model_fit_set) under the key
    "model_fits"."""
    X, y = make_training_set(samples, np.random.default_rng(seed), pos_per_sample,
                             neg_per_sample, detector.feature_config, progress)
    if len(y) == 0:
        raise ValueError("evaluate_failure_detector: no usable sample")
    out = _accuracy(detector, X, y)
    if predictor is not None:
        Xm, ym = make_model_fit_set(samples, predictor, np.random.default_rng([seed, 1]),
                                    feature_config=detector.feature_config,
                                    max_good_nme=max_good_nme, progress=progress)
        if len(ym):
            out["model_fits"] = _accuracy(detector, Xm, ym)
    return out


def _accuracy(detector, X, y):
    good = detector.predict_proba(X) >= detector.threshold
    y = y.astype(bool)
    return {"accuracy": float(np.mean(good == y)),
            "good_recall": float(np.mean(good[y])) if y.any() else float("nan"),
            "failure_recall": float(np.mean(~good[~y])) if (~y).any() else float("nan"),
            "n_good": int(y.sum()), "n_failure": int((~y).sum()),
            "threshold": detector.threshold}
