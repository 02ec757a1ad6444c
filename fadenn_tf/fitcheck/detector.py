"""Fitting-failure detector for tracking (paper section IV-D): an independent logistic
regressor over image patches around the landmark estimates. score(image, landmarks) is the
probability that the estimate is a GOOD fit; below `threshold` (0.5) the tracker treats the
frame as a failure and re-initialises with the face detector.

Model: binary logistic regression in NumPy, trained by damped Newton iterations on
mean log-loss + l2 / 2 * ||w||^2 (bias not penalised). Label 1 = good fit, 0 = failure.
"""
import json
from dataclasses import asdict

import numpy as np

from fadenn_tf.errors import DataError
from fadenn_tf.fitcheck.features import FeatureConfig, extract_features
from fadenn_tf.pretrained import failure_detector_for
from fadenn_tf.utils.atomic import atomic_path

FORMAT_VERSION = 1
# Predictor's default min_fit_score: a fit scoring below it is reported as rejected (not a
# face). Chosen on the 302 held-out real faces (val split of real128) with
# experiments/fit_score_threshold.py: with `pretrained`, no fit with NME < 0.05 fell below
# 0.05 (973: ground-truth, jittered and noisy-image boxes) while 97% of the fits on
# background boxes or failed fits (NME > 0.15) did; 0.1 already rejected good fits on noisy
# images (docs/performance.md, "Fits that are not faces").
DEFAULT_MIN_FIT_SCORE = 0.05


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


def failure_detector_from_spec(fd, model_path=None):
    """A FailureDetector or None from: None or "none" (no failure detector), a
    FailureDetector, a .npz path, or "auto" (the one shipped beside the model file,
    fadenn_tf.pretrained.failure_detector_for(model_path): the shipped models carry one;
    None when there is none)."""
    if fd is None or hasattr(fd, "score"):
        return fd
    if isinstance(fd, str) and fd.lower() == "none":
        return None
    if isinstance(fd, str) and fd == "auto":
        path = failure_detector_for(model_path)
        if path is None:
            return None
        det = FailureDetector.load(path)
        det.source = str(path)
        return det
    det = FailureDetector.load(fd)
    det.source = str(fd)
    return det
