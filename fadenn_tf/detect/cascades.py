"""Classic face detectors: OpenCV's frontal and profile Haar cascades and dlib's HOG detector
(an optional extra), with the box corrections that map their boxes to the landmark-box
convention."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.detect.boxes import (_check_image, apply_box_correction, clip_boxes, empty_boxes,
                                    sort_boxes)
from fadenn_tf.errors import FadennError

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
#   python experiments/fit_detectors.py --data ../shared/data/300w-train \
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



def _gray_uint8(image):
    img = _check_image(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)



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


DLIB_EXTRA_HINT = "pip install 'fadenn_tf[dlib]' (or pip install dlib-bin)"


def dlib_available():
    """True when the `dlib` package (the optional extra: pip install 'fadenn_tf[dlib]') is
    importable."""
    return importlib.util.find_spec("dlib") is not None


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal-face detector (the optional extra: pip install
    'fadenn_tf[dlib]'; its model is built into dlib, no file needed), boxes mapped to the
    landmark-box convention.

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
            import dlib  # lazy: optional dependency dlib
        except ImportError:
            raise DetectorUnavailableError(
                f"the 'dlib' detector needs the dlib package: {DLIB_EXTRA_HINT} (detectors "
                "without it: ultraface (the default), ultraface-slim, haar, profile)") from None
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



# Chosen from the held-out table in README.md ("Landmarks on any image or video").
