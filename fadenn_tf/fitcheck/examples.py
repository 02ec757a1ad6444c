"""Examples to train and test the fitting-failure detector on, and its training.

Training data (make_training_set): positives are the ground-truth landmarks under small
similarity perturbations and point noise (NME < 0.03); negatives are the ground truth
translated, scaled, rotated, distorted point by point, combined, or moved onto background
(NME > 0.15). NME here = mean point error / diagonal of the ground-truth landmark box.
How many of each, and where good and failed fits lie: FitExamples.
"""
import math
from dataclasses import dataclass

import numpy as np

from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import iter_sample_images
from fadenn_tf.fitcheck.detector import FailureDetector
from fadenn_tf.fitcheck.features import FeatureConfig, _to_gray, extract_features
from fadenn_tf.utils.progress import progress as bar

POSITIVE_MAX_NME = 0.03


NEGATIVE_MIN_NME = 0.15


@dataclass
class FitExamples:
    """How many examples each image gives, and the NME (of the landmark-box diagonal) that
    makes a fit good or failed. pos_per_sample, neg_per_sample: perturbed good fits and
    corrupted failures of the ground truth per image (make_training_set). n_good, n_bad:
    fits of a model in boxes near / far from the ground truth per image; a model fit is good
    below max_good_nme, failed above min_bad_nme, dropped in between (make_model_fit_set)."""
    pos_per_sample: int = 2
    neg_per_sample: int = 3
    n_good: int = 1
    n_bad: int = 2
    max_good_nme: float = POSITIVE_MAX_NME
    min_bad_nme: float = NEGATIVE_MIN_NME


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
        usable = [s for s in samples if s.landmarks is not None]
        for sample, image in iter_sample_images(usable):
            yield image, np.asarray(sample.landmarks, np.float64)
        return
    for image, landmarks in samples:
        yield np.asarray(image), np.asarray(landmarks, np.float64)


def make_training_set(samples, rng, examples=None, feature_config=None, progress=False):
    """Features and labels for the failure detector.

    samples: fadenn_tf.data.sample.Sample records with 68-point landmarks (images read with
    fadenn_tf.data.datasets.iter_sample_images) or (image (H, W[, 3]) uint8, landmarks
    (68, 2)) pairs. rng: numpy Generator or seed. examples: a FitExamples (its
    pos_per_sample and neg_per_sample; default FitExamples()).
    Returns X (n, D) float32 and y (n,) int8 (1 = good fit, 0 = failure); samples without
    68-point landmarks are skipped.
    """
    rng = np.random.default_rng(rng)
    ex = examples or FitExamples()
    cfg = feature_config or FeatureConfig()
    X, y = [], []
    for image, gt in _usable_items(samples, cfg, "features", progress):
        gray = _to_gray(image)
        for _ in range(ex.pos_per_sample):
            X.append(extract_features(gray, perturb_good(gt, rng), cfg))
            y.append(1)
        for _ in range(ex.neg_per_sample):
            bad = perturb_bad(gt, rng, gray.shape)
            if bad is not None:
                X.append(extract_features(gray, bad, cfg))
                y.append(0)
    return _stacked(X, y, cfg)


def _usable_items(samples, cfg, desc, progress):
    """(image, landmarks) of the samples with cfg.n_points landmarks, with a progress bar."""
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


def make_model_fit_set(samples, predictor, rng, examples=None, feature_config=None,
                       progress=False):
    """Features of a real model's fits: `predictor` (fadenn_tf.inference.Predictor) fits the
    landmarks in examples.n_good + examples.n_bad boxes from model_fit_boxes; a fit with NME
    < examples.max_good_nme is a good fit (label 1), one with NME > examples.min_bad_nme a
    failure (0), the ones in between are dropped (examples: a FitExamples, default
    FitExamples()). These are the estimates a tracker really sees. Returns X (n, D) float32,
    y (n,) int8."""
    ex = examples or FitExamples()
    cfg = feature_config or FeatureConfig()
    rng = np.random.default_rng(rng)
    X, y = [], []
    for image, gt in _usable_items(samples, cfg, "model fits", progress):
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        boxes = model_fit_boxes(gt, rng, ex.n_good, ex.n_bad)
        h, w = img.shape[:2]
        boxes = boxes[(boxes[:, 2] > 1) & (boxes[:, 3] > 1) & (boxes[:, 0] < w - 1)
                      & (boxes[:, 1] < h - 1)]
        if not len(boxes):
            continue
        fits = predictor.predict(img, boxes=boxes)[0].faces
        gray = _to_gray(img)
        for face in fits:
            err = nme_diag(face.landmarks, gt)
            if err < ex.max_good_nme or err > ex.min_bad_nme:
                X.append(extract_features(gray, face.landmarks, cfg))
                y.append(int(err < ex.max_good_nme))
    return _stacked(X, y, cfg)


def train_failure_detector(samples, seed=0, l2=1e-2, examples=None, feature_config=None,
                           progress=False, predictor=None):
    """Train a FailureDetector (L2 regularisation `l2`) on `samples` (see make_training_set)
    with seed `seed`; with a `predictor`, the model's own fits are added
    (make_model_fit_set). examples: a FitExamples (default FitExamples(): 2 good and 3
    failed perturbations, 1 good-box and 2 far-box model fits per image, good below NME
    0.03)."""
    X, y = make_training_set(samples, np.random.default_rng(seed), examples, feature_config,
                             progress)
    if predictor is not None:
        Xm, ym = make_model_fit_set(samples, predictor, np.random.default_rng([seed, 1]),
                                    examples, feature_config, progress)
        X, y = np.concatenate([X, Xm]), np.concatenate([y, ym])
    if len(y) == 0:
        raise ValueError("train_failure_detector: no usable sample (need 68-point landmarks)")
    det = FailureDetector(feature_config, l2=l2).fit(X, y)
    det.info["seed"] = int(seed)
    return det


def evaluate_failure_detector(detector, samples, seed=1, examples=None, progress=False,
                              predictor=None):
    """Accuracy on perturbations of held-out `samples` -> dict(accuracy, good_recall
    (good fits accepted), failure_recall (failures caught), n_good, n_failure, threshold).
    With a `predictor`, the same on the model's own fits (make_model_fit_set) under the key
    "model_fits". examples: a FitExamples, as in train_failure_detector."""
    X, y = make_training_set(samples, np.random.default_rng(seed), examples,
                             detector.feature_config, progress)
    if len(y) == 0:
        raise ValueError("evaluate_failure_detector: no usable sample")
    out = _accuracy(detector, X, y)
    if predictor is not None:
        Xm, ym = make_model_fit_set(samples, predictor, np.random.default_rng([seed, 1]),
                                    examples, detector.feature_config, progress)
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
