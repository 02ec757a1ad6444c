"""Landmark error metrics: NME, CED, AUC, failure rate. The ONE module behind every printed figure.

NME of one image = mean over points of the Euclidean error (pixels) / a normaliser (pixels):

- "diagonal"    sqrt(w^2 + h^2) of the tight ground-truth landmark box. The paper's (and its
                code's, "according to IJCV", Chrysos et al.) default.
- "box"         sqrt(w * h) of the same box (FAN, ICPR-2020 challenge).
- "interocular" distance between the outer eye corners 36 and 45 (300-W papers; 68 points only).

The same normaliser gives different numbers: always print its name next to a figure
(`format_summary` does).

CED(x) = fraction of images with NME <= x. AUC@t = integral of the CED over [0, t] divided by t.
The CED is a step function, so the integral is computed exactly by default:
AUC = mean(max(0, t - e)) / t. The authors' code integrates with Simpson's rule on a 1e-4 grid
(method="simpson" reproduces that; the two agree to about 1e-3).
FR@t = fraction of images with NME > t.

Non-finite errors (NaN/inf, e.g. a diverged prediction) count as failures: they are never
<= any threshold, contribute 0 to the AUC, and are left out of the mean and median NME
(`summarize` reports how many there were).
"""
import numpy as np

from fadenn_tf.data.landmarks68 import NUM_POINTS, OUTER_EYE_CORNERS

NORMALIZERS = ("diagonal", "box", "interocular")
NORMALIZER_INFO = {
    "diagonal": "diagonal sqrt(w^2+h^2) of the ground-truth landmark box (paper, IJCV)",
    "box": "sqrt(w*h) of the ground-truth landmark box (FAN, ICPR-2020)",
    "interocular": "outer eye corner distance, points 36-45 (300-W papers)",
}
DEFAULT_NORMALIZER = "diagonal"
DEFAULT_THRESHOLD = 0.08
AUC_METHODS = ("exact", "simpson")


def _check_normalizer(normalizer):
    if normalizer not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {normalizer!r}; valid: {', '.join(NORMALIZERS)}")


def normalizer_values(gt, normalizer=DEFAULT_NORMALIZER):
    """Per-image normaliser in pixels: gt (N, P, 2) or (P, 2) -> (N,) float64 (or a float)."""
    _check_normalizer(normalizer)
    g = np.asarray(gt, dtype=np.float64)
    single = g.ndim == 2
    if single:
        g = g[None]
    if g.ndim != 3 or g.shape[-1] != 2:
        raise ValueError(f"landmarks must be (N, P, 2) or (P, 2), got {np.shape(gt)}")
    if normalizer == "interocular":
        if g.shape[1] != NUM_POINTS:
            raise ValueError(f"interocular needs {NUM_POINTS} points, got {g.shape[1]}")
        a, b = OUTER_EYE_CORNERS
        d = np.linalg.norm(g[:, a] - g[:, b], axis=-1)
    else:
        size = g.max(axis=1) - g.min(axis=1)  # (N, 2): w, h of the tight box
        w, h = size[:, 0], size[:, 1]
        d = np.sqrt(w * w + h * h) if normalizer == "diagonal" else np.sqrt(w * h)
    bad = ~(np.isfinite(d) & (d > 0))
    if bad.any():
        raise ValueError(f"ground truth gives a zero or non-finite {normalizer} normaliser "
                         f"for image index(es) {np.flatnonzero(bad)[:20].tolist()}")
    return float(d[0]) if single else d


def nme(pred, gt, normalizer=DEFAULT_NORMALIZER):
    """Normalised mean error per image.

    pred, gt: (N, P, 2) or (P, 2) (x, y), same pixel coordinates (P = 68 for "interocular").
    Returns (N,) float64, or a float for a single (P, 2) pair. A NaN in pred gives NaN
    (a failure); a degenerate ground truth raises ValueError.
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} != gt shape {g.shape}")
    d = normalizer_values(g, normalizer)
    err = np.linalg.norm(p - g, axis=-1).mean(axis=-1)
    return float(err / d) if p.ndim == 2 else err / d


def _errors(errors):
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if e.size == 0:
        raise ValueError("no errors given (empty evaluation set)")
    return np.where(np.isfinite(e), e, np.inf)


def ced(errors, thresholds):
    """Cumulative error distribution: fraction of errors <= x for each x in thresholds (array)."""
    e = np.sort(_errors(errors))
    x = np.asarray(thresholds, dtype=np.float64)
    return np.searchsorted(e, x, side="right") / e.size


def _simpson(y, dx):
    """Composite Simpson's rule on an even grid; a trailing odd interval uses the trapezoid."""
    n = len(y) - 1
    m = n - (n % 2)
    s = dx / 3.0 * (y[0] + y[m] + 4.0 * y[1:m:2].sum() + 2.0 * y[2:m - 1:2].sum()) if m else 0.0
    if n % 2:
        s += 0.5 * dx * (y[-2] + y[-1])
    return s


def auc(errors, threshold=DEFAULT_THRESHOLD, step=1e-4, method="exact"):
    """Area under the CED on [0, threshold], divided by threshold (in [0, 1]; 1 = all zero error).

    method "exact": mean(max(0, threshold - e)) / threshold (the CED is a step function).
    method "simpson": Simpson's rule on the grid 0, step, ..., threshold (the original code).
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    e = _errors(errors)
    if method == "exact":
        return float(np.maximum(0.0, threshold - e).mean() / threshold)
    if method == "simpson":
        n = int(round(threshold / step))
        x = np.linspace(0.0, threshold, n + 1)
        return float(_simpson(ced(e, x), threshold / n) / threshold)
    raise ValueError(f"unknown AUC method {method!r}; valid: {', '.join(AUC_METHODS)}")


def failure_rate(errors, threshold=DEFAULT_THRESHOLD):
    """Fraction of images with NME > threshold (non-finite errors count as failures)."""
    return float((~(_errors(errors) <= threshold)).mean())


def summarize(errors, threshold=DEFAULT_THRESHOLD, normalizer=DEFAULT_NORMALIZER,
              method="exact"):
    """All figures of one evaluation as a dict.

    Keys: n, n_nonfinite, mean_nme, median_nme (over finite errors; NaN if none), auc, fr,
    threshold, normalizer, auc_method. `normalizer` only labels the numbers: it must be the
    one the errors were computed with.
    """
    _check_normalizer(normalizer)
    e = _errors(errors)
    finite = e[np.isfinite(e)]
    return {
        "n": int(e.size),
        "n_nonfinite": int(e.size - finite.size),
        "mean_nme": float(finite.mean()) if finite.size else float("nan"),
        "median_nme": float(np.median(finite)) if finite.size else float("nan"),
        "auc": auc(e, threshold, method=method),
        "fr": failure_rate(e, threshold),
        "threshold": float(threshold),
        "normalizer": normalizer,
        "auc_method": method,
    }


def format_summary(summary):
    """One line for printing, naming the normaliser and threshold next to the numbers."""
    s, t = summary, summary["threshold"]
    line = (f"NME({s['normalizer']}) mean {s['mean_nme']:.4f} median {s['median_nme']:.4f} | "
            f"AUC@{t:g} {s['auc']:.4f} | FR@{t:g} {s['fr']:.4f} | n={s['n']}")
    if s.get("n_nonfinite"):
        line += f" ({s['n_nonfinite']} non-finite counted as failures)"
    return line
