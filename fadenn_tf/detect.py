"""Face boxes for images without a given box: a pluggable box-provider interface.

Box convention (the same as fadenn_tf.data.crop): a box is (x0, y0, x1, y1) float64 in
pixel-EDGE coordinates, pixel i covers [i, i + 1] and the image covers [0, W] x [0, H]. The
face box the landmark localiser expects is the tight 68-point landmark box (min/max of the
pixel-centre landmarks, + 0.5), which is what the FLL was trained on.

A box provider is any callable `provider(image_rgb_uint8) -> np.ndarray (K, 4) float64`:
boxes clipped to the image, boxes of zero area dropped, the preferred face first (largest
area first for every provider here), shape (0, 4) when there is no face.

Providers here:
- HaarFaceDetector: OpenCV's packaged frontal-face Haar cascade (needs opencv-python-headless
  4.x: OpenCV 5 has no CascadeClassifier and ships no cascade files). Its boxes are mapped to
  the landmark-box convention by HAAR_TO_LANDMARK_BOX (see there how it was measured).
- ProfileFaceDetector: OpenCV's profile-face cascade on the image and its mirror image.
- DlibHogDetector: dlib's HOG detector, when the optional dlib package is installed.
- FallbackDetector: several detectors in order (the first that finds a face answers).
- FixedBoxes: boxes given by the user (e.g. one image's entry of load_boxes_file).
- LandmarkBoxProvider: the landmark box of the previous estimate (model-free tracking).

How to plug your own detector
-----------------------------
Write a callable taking an (H, W, 3) uint8 RGB image and returning (K, 4) boxes
(x0, y0, x1, y1) in the landmark-box convention above (if your detector's boxes differ, fit a
correction with `fit_box_correction` on a few annotated images and apply it with
`apply_box_correction`), then register a factory:

    from fadenn_tf import detect
    class MyDetector:
        def __init__(self, threshold=0.5): ...
        def __call__(self, image):            # (H, W, 3) uint8 RGB
            boxes = ...                        # (K, 4) float, best first
            return detect.clip_boxes(boxes, image.shape)
    detect.register_detector("mine", MyDetector)
    provider = detect.get_detector("mine", threshold=0.7)

`get_detector("haar", **kwargs)` gives the built-in Haar one, `get_detector("default")` the
default (DEFAULT_DETECTOR), "haar+profile" a chain (the profile cascade runs when the frontal
one finds nothing).
"""
import csv
import io
import json
import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from fadenn_tf.data.crop import landmark_box  # noqa: F401  (the one convention; re-exported)

from fadenn_tf.errors import DataError, FadennError

# Detector box -> 68-point landmark box: (dcx, dcy, sx, sy). With a detector box of centre
# (cx, cy) and size (w, h), the landmark box has centre (cx + dcx * w, cy + dcy * h) and size
# (sx * w, sy * h) (apply_box_correction). The constants and default parameters below were
# fitted by experiments/fit_detectors.py on real faces: the 300-W training folders
# (afw + helen/trainset + lfpw/trainset, 2,012 images, one face each) divided by the
# project's held-out split (split_holdout(val_fraction=0.15, seed=0): 1,710 training images,
# 302 held out). Each image was scaled so its face is 64-192 px wide and pasted into a
# 640x480 canvas (a stand-in for full-resolution photos). Parameters: a grid over 60
# training images (equalisation, scale factor 1.05/1.1/1.2, detection at full width or
# shrunk to 320 px, min neighbours 2-6, min size 20/40/60 px), best detection rate within
# 30 ms on a 640x360 frame (extrapolated from loaded-machine timings), then the faster;
# corrections: fit_box_correction on 300 training images (matched boxes: haar 263, profile
# 152 (both sides, mirror-side boxes fitted in mirrored coordinates), dlib 282). Command:
#   python experiments/fit_detectors.py --data /work/shared/data/300w-train \
#       --grid-images 60 --fit-images 300
# Findings: equalisation LOWERS the rate on real faces (grid best 0.85 with vs 0.92
# without); detecting on a 320-px-wide copy of the 640-px canvases loses nothing at faces
# >= 64 px and is ~3x cheaper. The defaults generalise that without a fixed width:
# detect_width "auto" shrinks the image by min_size / the cascade's window (24 px), so no
# face of min_size or more becomes too small for the cascade; min_size 48 makes that the
# measured 2x on 640-px frames (the grid's 60 had the same rate: its canvases had no face
# below 64 px) and keeps faces of 48 px. The held-out table is in README.md ("Landmarks
# on any image or video").
HAAR_TO_LANDMARK_BOX = (0.008, 0.147, 0.841, 0.823)
HAAR_DEFAULTS = {"scale_factor": 1.1, "min_neighbors": 4, "min_size": 48, "equalize": False,
                 "detect_width": "auto"}
PROFILE_TO_LANDMARK_BOX = (-0.109, 0.159, 0.766, 0.739)
PROFILE_DEFAULTS = {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 40,
                    "equalize": False, "detect_width": "auto"}
DLIB_TO_LANDMARK_BOX = (0.013, 0.092, 0.936, 0.917)
DLIB_DEFAULTS = {"upsample": 0, "detect_width": None}

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"


class DetectorUnavailableError(FadennError, RuntimeError):
    """The face detector cannot run in this installation (e.g. OpenCV without Haar cascades)."""


@runtime_checkable
class BoxProvider(Protocol):
    """Callable: (H, W, 3) uint8 RGB image -> (K, 4) float64 boxes (x0, y0, x1, y1), edge
    coordinates, clipped to the image, best (largest) first; (0, 4) when there is no face."""

    def __call__(self, image_rgb_uint8) -> np.ndarray:
        ...


# ----------------------------------------------------------------------------- box helpers

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


def _gray_uint8(image):
    img = _check_image(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)


# ------------------------------------------------------------------------------- providers

def _load_cascade(cascade):
    """A cv2.CascadeClassifier from a file name in cv2.data.haarcascades or a path."""
    version = getattr(cv2, "__version__", "?")
    hint = "install the OpenCV 4 wheel: pip install 'opencv-python-headless>=4.10,<5'"
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorUnavailableError(
            f"OpenCV {version} has no cv2.CascadeClassifier (OpenCV 5 removed the Haar face "
            f"detector); {hint}, or pass your own detector (see fadenn_tf.detect)")
    path = Path(cascade)
    if not path.is_absolute() and not path.exists():
        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if folder is None:
            raise DetectorUnavailableError(
                f"OpenCV {version} ships no Haar cascade files (no cv2.data.haarcascades); "
                f"{hint}")
        path = Path(folder) / cascade
    if not path.is_file():
        raise DetectorUnavailableError(
            f"Haar cascade file not found: {path} (OpenCV {version}); {hint}, or give the "
            f"path of a cascade XML")
    try:
        clf = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError) as exc:  # malformed XML raises instead of loading empty
        raise DetectorUnavailableError(f"{path}: OpenCV could not load this Haar cascade "
                                       f"({str(exc).strip().splitlines()[-1]})") from None
    if clf.empty():
        raise DetectorUnavailableError(f"{path}: OpenCV could not load this Haar cascade")
    return clf


def _scaled_gray(image, equalize, detect_width, auto_factor=1.0):
    """(grayscale uint8 image for detection, factor) where factor (>= 1) maps detection
    pixels back to image pixels: the image is shrunk (area interpolation) to `detect_width`
    pixels wide when it is wider (None: never; "auto": by auto_factor), and optionally
    histogram-equalised."""
    gray = _gray_uint8(image)
    if detect_width == "auto":
        factor = max(1.0, float(auto_factor))
    elif detect_width is not None and gray.shape[1] > int(detect_width):
        factor = gray.shape[1] / float(detect_width)
    else:
        factor = 1.0
    if factor > 1.0:
        size = (max(1, int(round(gray.shape[1] / factor))),
                max(1, int(round(gray.shape[0] / factor))))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    if equalize:
        gray = cv2.equalizeHist(gray)
    return gray, factor


def _check_detect_width(detect_width):
    if detect_width is None or detect_width == "auto":
        return detect_width
    if int(detect_width) < 32:
        raise ValueError(f"detect_width must be >= 32 pixels, 'auto' or None, got "
                         f"{detect_width}")
    return int(detect_width)


def _rects_to_boxes(rects, factor=1.0):
    """OpenCV (x, y, w, h) rectangles -> (K, 4) float64 edge boxes, scaled by factor."""
    r = np.asarray(rects, np.float64).reshape(-1, 4)
    return np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1) * factor


def _finish(boxes, image, correction):
    """Correct, sort (largest first) and clip detector boxes."""
    if len(boxes) == 0:
        return empty_boxes()
    if correction is not None:
        boxes = apply_box_correction(boxes, correction)
    return clip_boxes(sort_boxes(boxes), np.shape(image))


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, boxes mapped to the 68-point landmark-box convention.

    scale_factor: image pyramid step of detectMultiScale (> 1; smaller finds more sizes,
        slower). min_neighbors: overlapping raw detections needed to keep a face (higher:
        fewer false positives, more misses). min_size: smallest face in pixels of the
        ORIGINAL image, either an int or (w, h), or a float in (0, 1) meaning that fraction
        of min(H, W).
    cascade: a file name in cv2.data.haarcascades or a path to a cascade XML.
    correction: (dcx, dcy, sx, sy) for apply_box_correction, None for raw Haar boxes.
    equalize: histogram-equalise the grayscale image first (can help very dark faces; on
        the real faces it lowers the detection rate, see HAAR_TO_LANDMARK_BOX).
    detect_width: run the cascade on the image shrunk to this width (pixels) when it is
        wider; "auto": shrunk by min_size / the cascade's window side (24 px for the
        frontal cascade), so faces of min_size still fit the window; 0 or None: full
        resolution. Boxes come back in image pixels. Cost falls about with the square of
        the shrink factor.
    Defaults: HAAR_DEFAULTS (fitted on real faces). Calling it returns (K, 4) float64 boxes,
    largest first, clipped; (0, 4) if none.
    """

    def __init__(self, scale_factor=None, min_neighbors=None, min_size=None,
                 cascade=DEFAULT_CASCADE, correction=HAAR_TO_LANDMARK_BOX, equalize=None,
                 detect_width=None):
        d = HAAR_DEFAULTS
        scale_factor = d["scale_factor"] if scale_factor is None else scale_factor
        min_neighbors = d["min_neighbors"] if min_neighbors is None else min_neighbors
        if not scale_factor > 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if int(min_neighbors) < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {min_neighbors}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = d["min_size"] if min_size is None else min_size
        self.correction = None if correction is None else tuple(float(v) for v in correction)
        self.equalize = bool(d["equalize"] if equalize is None else equalize)
        self.detect_width = _check_detect_width(
            d["detect_width"] if detect_width is None else detect_width or None)
        self._cascade = _load_cascade(cascade)

    def _min_size_px(self, hw):
        """Minimum face (w, h) in pixels of an image of shape hw."""
        m = self.min_size
        if isinstance(m, float) and 0 < m < 1:
            s = max(1, int(round(m * min(hw))))
            return s, s
        if np.ndim(m) == 0:
            return int(m), int(m)
        return int(m[0]), int(m[1])

    def _detect(self, gray, factor, original_hw):
        mw, mh = self._min_size_px(original_hw)
        min_size = (max(1, int(round(mw / factor))), max(1, int(round(mh / factor))))
        rects, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=min_size)
        if len(rects) == 0:
            return empty_boxes(), np.zeros((0,), np.int64)
        return _rects_to_boxes(rects, factor), np.asarray(neighbours, np.int64).reshape(-1)

    def raw_boxes(self, image):
        """Uncorrected Haar boxes (K, 4) edge coords (image pixels) and their neighbour
        counts (K,), in OpenCV's order."""
        gray, factor = self._gray(image)
        return self._detect(gray, factor, np.shape(image)[:2])

    def _gray(self, image):
        """(grayscale detection image, factor back to image pixels)."""
        window = min(self._cascade.getOriginalWindowSize())
        auto = min(self._min_size_px(np.shape(image)[:2])) / max(1, window)
        return _scaled_gray(image, self.equalize, self.detect_width, auto)

    def __call__(self, image):
        return _finish(self.raw_boxes(image)[0], image, self.correction)


class ProfileFaceDetector(HaarFaceDetector):
    """OpenCV's profile-face Haar cascade, run on the image and on its mirror image (the
    cascade only knows faces turned one way). Mirror-image boxes are mapped back and get the
    mirrored correction (dcx negated). Same parameters as HaarFaceDetector; its defaults and
    correction are PROFILE_DEFAULTS / PROFILE_TO_LANDMARK_BOX. Meant as a fallback when the
    frontal detector finds nothing ("haar+profile")."""

    def __init__(self, scale_factor=None, min_neighbors=None, min_size=None,
                 cascade=PROFILE_CASCADE, correction=PROFILE_TO_LANDMARK_BOX, equalize=None,
                 detect_width=None):
        d = PROFILE_DEFAULTS
        super().__init__(
            d["scale_factor"] if scale_factor is None else scale_factor,
            d["min_neighbors"] if min_neighbors is None else min_neighbors,
            d["min_size"] if min_size is None else min_size, cascade, correction,
            d["equalize"] if equalize is None else equalize,
            d["detect_width"] if detect_width is None else detect_width)

    def raw_boxes(self, image, mirrored=False):
        """Uncorrected boxes of one side: the image as is, or (mirrored=True) its mirror
        image with the boxes mapped back to image coordinates. (K, 4), (K,) neighbours."""
        gray, factor = self._gray(image)
        if not mirrored:
            return self._detect(gray, factor, np.shape(image)[:2])
        boxes, n = self._detect(np.ascontiguousarray(gray[:, ::-1]), factor,
                                np.shape(image)[:2])
        w = np.shape(image)[1]
        return np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1), n

    def __call__(self, image):
        out = []
        for mirrored in (False, True):
            boxes, _ = self.raw_boxes(image, mirrored)
            if len(boxes) and self.correction is not None:
                dcx, dcy, sx, sy = self.correction
                boxes = apply_box_correction(boxes, (-dcx if mirrored else dcx, dcy, sx, sy))
            out.append(boxes)
        return _finish(np.concatenate(out), image, None)


def dlib_available():
    """True when the optional `dlib` package (e.g. pip install dlib-bin) is importable."""
    import importlib.util
    return importlib.util.find_spec("dlib") is not None


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal-face detector (optional: pip install dlib-bin; its
    model is built into dlib, no file needed), boxes mapped to the landmark-box convention.

    upsample: times dlib doubles the image first (0: faces from ~80 px, 1: from ~40 px, about
        4x slower). detect_width: run on the image shrunk to this width when wider (None:
        full resolution). adjust_threshold: added to the SVM threshold (negative finds more
        faces and more false positives). correction: (dcx, dcy, sx, sy), default
        DLIB_TO_LANDMARK_BOX; None for raw dlib boxes. Defaults: DLIB_DEFAULTS.
    Raises DetectorUnavailableError when dlib is not installed.
    """

    def __init__(self, upsample=None, detect_width=None, adjust_threshold=0.0,
                 correction=DLIB_TO_LANDMARK_BOX):
        try:
            import dlib
        except ImportError:
            raise DetectorUnavailableError(
                "the 'dlib' detector needs the optional dlib package: pip install dlib-bin "
                f"(registered detectors without it: haar, profile, haar+profile)") from None
        d = DLIB_DEFAULTS
        self.upsample = int(d["upsample"] if upsample is None else upsample)
        if self.upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.detect_width = _check_detect_width(
            d["detect_width"] if detect_width is None else detect_width or None)
        self.adjust_threshold = float(adjust_threshold)
        self.correction = None if correction is None else tuple(float(v) for v in correction)
        self._detector = dlib.get_frontal_face_detector()

    def raw_boxes(self, image):
        """Uncorrected dlib boxes (K, 4) edge coords (image pixels) and scores (K,)."""
        gray, factor = _scaled_gray(image, False, self.detect_width)
        rects, scores, _ = self._detector.run(gray, self.upsample, self.adjust_threshold)
        if len(rects) == 0:
            return empty_boxes(), np.zeros((0,), np.float64)
        b = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects],
                     np.float64) * factor
        return b, np.asarray(scores, np.float64)

    def __call__(self, image):
        return _finish(self.raw_boxes(image)[0], image, self.correction)


class FallbackDetector:
    """Detectors tried in order: the first one that finds a face gives the boxes.

    detectors: BoxProvider callables (e.g. [HaarFaceDetector(), ProfileFaceDetector()]).
    `last_used` is the index of the detector that answered the last call (None: no face).
    """

    def __init__(self, detectors):
        self.detectors = list(detectors)
        if not self.detectors:
            raise ValueError("FallbackDetector needs at least one detector")
        self.last_used = None

    def __call__(self, image):
        self.last_used = None
        for i, det in enumerate(self.detectors):
            boxes = np.asarray(det(image), np.float64).reshape(-1, 4)
            if len(boxes):
                self.last_used = i
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


# -------------------------------------------------------------------------------- registry

_REGISTRY = {"haar": HaarFaceDetector, "profile": ProfileFaceDetector, "dlib": DlibHogDetector}


def default_detector_name():
    """The detector `get_detector("default")` builds: DEFAULT_DETECTOR when its parts can run
    here (dlib is optional), else DEFAULT_DETECTOR_WITHOUT_DLIB."""
    if "dlib" in DEFAULT_DETECTOR.split("+") and not dlib_available():
        return DEFAULT_DETECTOR_WITHOUT_DLIB
    return DEFAULT_DETECTOR


# Chosen from the held-out table in README.md ("Landmarks on any image or video").
DEFAULT_DETECTOR = "dlib+haar+profile"
DEFAULT_DETECTOR_WITHOUT_DLIB = "haar+profile"


def register_detector(name, factory, overwrite=False):
    """Register `factory(**kwargs) -> BoxProvider` under `name` for get_detector ('+' and the
    name 'default' are reserved: they chain detectors / pick the default)."""
    if not isinstance(name, str) or not name or "+" in name or name == "default":
        raise ValueError(f"detector name must be a non-empty string without '+' and not "
                         f"'default', got {name!r}")
    if not callable(factory):
        raise TypeError(f"detector factory for {name!r} is not callable")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a detector named {name!r} is already registered "
                         "(pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def available_detectors():
    """Sorted names accepted by get_detector (besides 'default' and chains 'a+b'); 'dlib' is
    listed only when dlib is installed."""
    return sorted(n for n in _REGISTRY if n != "dlib" or dlib_available())


def get_detector(name="default", **kwargs):
    """Build a detector by name -> BoxProvider.

    name: a registered name ("haar", "profile", "dlib" when installed, or your own),
    "default" (default_detector_name()), or a chain "a+b" (FallbackDetector: b runs only
    when a finds nothing; each detector of a chain gets the kwargs its factory takes, and a
    kwarg no detector takes raises TypeError), e.g. get_detector("haar", min_neighbors=3)
    or get_detector("dlib+haar", equalize=False).
    """
    if name == "default":
        name = default_detector_name()
    parts = str(name).split("+")
    for part in parts:
        if part not in _REGISTRY:
            raise ValueError(f"unknown face detector {part!r}; registered: "
                             f"{', '.join(available_detectors())} (chain them with '+', e.g. "
                             f"haar+profile; add one with register_detector)")
    if len(parts) == 1:
        return _REGISTRY[name](**kwargs)
    taken = [_accepted(_REGISTRY[p], kwargs) for p in parts]
    unused = set(kwargs) - set().union(*taken)
    if unused:
        raise TypeError(f"no detector of {name!r} takes {sorted(unused)}")
    return FallbackDetector([_REGISTRY[p](**kw) for p, kw in zip(parts, taken)])


def _accepted(factory, kwargs):
    """The kwargs that `factory`'s signature takes (all of them for **kwargs or when the
    signature cannot be read)."""
    import inspect
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


# ------------------------------------------------------------------------------ boxes file

def _parse_box(path, where, value):
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise DataError(path, f"{where}: a box must be 4 numbers [x0, y0, x1, y1], got "
                              f"{value!r}")
    try:
        b = [float(v) for v in value]
    except (TypeError, ValueError):
        raise DataError(path, f"{where}: box values must be numbers, got {value!r}") from None
    if isinstance(value[0], bool) or not all(math.isfinite(v) for v in b):
        raise DataError(path, f"{where}: box values must be finite numbers, got {value!r}")
    if not (b[2] > b[0] and b[3] > b[1]):
        raise DataError(path, f"{where}: box {b} has no area (need x1 > x0 and y1 > y0)")
    return b


def _boxes_from_json(path, text):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, "a JSON boxes file must be an object mapping image names to a "
                              "box [x0, y0, x1, y1] or a list of boxes")
    out = {}
    for name, value in data.items():
        where = f"entry {name!r}"
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            boxes = [_parse_box(path, f"{where} box {i}", v) for i, v in enumerate(value)]
        elif isinstance(value, list) and not value:
            boxes = []
        else:
            boxes = [_parse_box(path, where, value)]
        out[name] = as_boxes(boxes)
    return out


def _boxes_from_csv(path, text):
    out = {}
    rows = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and cells[0].lower() in ("image", "name", "file", "path"):
            continue  # header
        if len(cells) != 5:
            raise DataError(path, f"line {lineno}: expected 5 columns image,x0,y0,x1,y1, got "
                                  f"{len(cells)}")
        try:
            values = [float(v) for v in cells[1:]]
        except ValueError:
            raise DataError(path, f"line {lineno}: box values must be numbers, got "
                                  f"{cells[1:]}") from None
        box = _parse_box(path, f"line {lineno}", values)
        out.setdefault(cells[0], []).append(box)
    if not out:
        raise DataError(path, "no boxes found (expected lines image,x0,y0,x1,y1)")
    return {k: as_boxes(v) for k, v in out.items()}


def load_boxes_file(path):
    """Read a boxes file -> {image name: (K, 4) float64 boxes (x0, y0, x1, y1)}.

    Boxes are edge coordinates in image pixels. Formats (chosen by the extension, .json or
    .csv; other extensions are sniffed: '{' starts JSON):
    - JSON: {"img1.jpg": [x0, y0, x1, y1], "img2.jpg": [[...], [...]], "img3.jpg": []}
      (an empty list means 'no face').
    - CSV: lines `image,x0,y0,x1,y1` (optional header line starting with image/name/file/
      path; '#' comments; several lines for one image give several boxes).
    Malformed content raises DataError naming the file and the entry or line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "boxes file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read boxes file ({exc})") from None
    if not text.strip():
        raise DataError(path, "empty boxes file")
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{")):
        return _boxes_from_json(path, text)
    return _boxes_from_csv(path, text)


def lookup_boxes(boxes_by_name, image_path):
    """Boxes for `image_path` from a load_boxes_file mapping, matched by the path as given,
    then the file name, then the file stem; None when the image is not listed."""
    p = Path(image_path)
    for key in (str(image_path), p.as_posix(), p.name, p.stem):
        if key in boxes_by_name:
            return boxes_by_name[key]
    return None


# ------------------------------------------------------------------- command-line options

def _width_arg(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"--detect-width wants pixels or 'auto', got "
                                         f"{text!r}") from None


def add_detector_arguments(parser):
    """Add --detector and the detector options to an argparse parser (predict, track)."""
    g = parser.add_argument_group("face detector")
    g.add_argument("--detector", default="default",
                   help="face detector: default (" + DEFAULT_DETECTOR + "; "
                        + DEFAULT_DETECTOR_WITHOUT_DLIB + " without dlib), haar, profile, "
                        "dlib (needs pip install dlib-bin), a chain such as haar+profile "
                        "(the next runs when one finds nothing), or a registered name")
    g.add_argument("--no-equalize", dest="equalize", action="store_const", const=False,
                   default=None, help="Haar: no histogram equalisation (the default)")
    g.add_argument("--equalize", dest="equalize", action="store_const", const=True,
                   help="Haar: histogram-equalise the image first")
    g.add_argument("--scale-factor", type=float, default=None,
                   help=f"Haar pyramid step (default {HAAR_DEFAULTS['scale_factor']})")
    g.add_argument("--min-neighbors", type=int, default=None,
                   help=f"Haar neighbours needed (default {HAAR_DEFAULTS['min_neighbors']})")
    g.add_argument("--min-size", type=int, default=None,
                   help=f"Haar smallest face, pixels (default {HAAR_DEFAULTS['min_size']})")
    g.add_argument("--detect-width", type=_width_arg, default=None,
                   help="run the detector on the frame shrunk to this width in pixels; "
                        "auto = by min size / the detector's window; 0 = full resolution "
                        "(default: the detector's, auto for haar and profile)")
    g.add_argument("--upsample", type=int, default=None,
                   help=f"dlib: times the image is doubled (default {DLIB_DEFAULTS['upsample']})")
    return g


def detector_kwargs_from_args(args):
    """The detector options given on the command line (add_detector_arguments) as kwargs
    for get_detector; options left at their default are omitted."""
    names = ("equalize", "scale_factor", "min_neighbors", "min_size", "detect_width",
             "upsample")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
