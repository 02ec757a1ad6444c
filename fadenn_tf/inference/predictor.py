"""Landmarks on any image: the friendly prediction API (Predictor, load).

    import fadenn_tf
    predictor = fadenn_tf.load("runs/cpu")              # workdir, .keras or SavedModel
    results = predictor.predict(image)                  # (H, W, 3) uint8, RGB by default
    r = results[0]                                      # one ImageResult per image
    r.landmarks                                         # (68, 2) image pixels, or None
    r.box, r.box_source                                 # (x0, y0, x1, y1), "detector"/"given"
    r.noise_class, r.noise_name, r.noise_probs          # None for models without classifier

    predictor.predict([img_a, img_b], color="bgr")      # any sizes in one call (OpenCV BGR)
    predictor.predict(img, boxes=[x0, y0, x1, y1])      # a known face box, no detector
    predictor.predict(img, all_faces=True).faces        # every detected face, largest first
    predictor.predict_file("face.jpg")                  # read + predict one file

Coordinates: landmarks are 0-based pixel-centre (x, y) of the ORIGINAL image (the top-left
pixel's centre is (0, 0)); boxes are (x0, y0, x1, y1) pixel-edge coordinates, the tight
68-point landmark box convention the model was trained on (fadenn_tf.detect explains it and
how to adapt another detector's boxes).

How it works: the model crops each face as its metadata says (CropModel.crop_faces: the box
grown to crop_scale x, 2.0 by default, clipped, resized to the model's input side), the crops
of all images are batched through the model, and the model maps the predicted crop landmarks
back through the exact inverse of each crop (CropModel.fit_crops).

Images without a face give an ImageResult with `landmarks is None` and `faces == []`, never
an exception. The default face detector is fadenn_tf.detect.DEFAULT_DETECTOR
(`detector="default"`: UltraFace, a CNN run by LiteRT, chosen from measurements on real
photos, see the README); pass "ultraface-slim", "haar", "dlib" (the optional extra), a chain
like "haar+profile", any BoxProvider callable or a registered name instead.

Backends: the shipped names ("pretrained", "pretrained-fll") run by default on the LiteRT
copies shipped beside their .keras files (int8 weights; FADeNN-M as routed parts that run
only the chosen expert; several faces of a call in one invoke per part) without importing
TensorFlow. `backend="keras"` runs the Keras model (research, training; one crop through a
compiled [1, S, S, 3] function); `backend="litert"` a float32 TFLite copy (a .tflite path,
a routed folder, or the model converted when loading and cached).

Fits that are not faces: with a failure detector (shipped with the pretrained models) every
face gets a fit_score; below min_fit_score (fadenn_tf.fitcheck.detector.
DEFAULT_MIN_FIT_SCORE unless given) the fit goes to ImageResult.rejected with status
"rejected" instead of ImageResult.faces. With one face per image (no all_faces), a rejected
first box is followed by the detector's next boxes (inference.fallback) until one fits.
"""
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from fadenn_tf import pretrained
from fadenn_tf.data.images import read_image
from fadenn_tf.detect import get_detector
from fadenn_tf.fitcheck.detector import DEFAULT_MIN_FIT_SCORE, failure_detector_from_spec
from fadenn_tf.inference.fallback import fall_back
from fadenn_tf.inference.flip_test import FlipAveraged
from fadenn_tf.inference.litert_load import load_litert
from fadenn_tf.inference.refine import check_refine, refit
from fadenn_tf.inference.results import FaceResult, ImageResult

COLORS = ("rgb", "bgr")


@dataclass
class _Prepared:
    """An image checked, converted to RGB, with its face boxes and the model's crops."""
    image: np.ndarray
    boxes: np.ndarray          # (K, 4)
    source: str
    faces: object              # inference.crop_model.FaceCrops of the K boxes
    t_detect: float
    t_crop: float
    scores: Optional[np.ndarray] = None   # (K,) detector scores; None: given boxes, or none
    spare: Optional[tuple] = None         # one-face mode: (boxes (M, 4), scores (M,) or None)
    #                                       the detector found after the first (fallbacks)


# ----------------------------------------------------------------------------- helpers

def to_rgb_uint8(image, color="rgb"):
    """Check one image and return it as a C-contiguous (H, W, 3) uint8 RGB array.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (alpha dropped). color: "rgb" or
    "bgr", the channel order of `image`. Raises ValueError on anything else.
    """
    c = str(color).lower()
    if c not in COLORS:
        raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0-255), got dtype {img.dtype}; convert "
                         "with np.clip(x, 0, 255).astype(np.uint8)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    img = img[:, :, :3]
    if c == "bgr":
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _split_images(images):
    """-> (list of arrays, single) where single means one image was given (not a batch)."""
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images), False
        return [images], True
    if isinstance(images, (list, tuple)):
        return list(images), False
    raise TypeError(f"images must be a NumPy image, a (B, H, W, 3) array or a list of "
                    f"images, got {type(images).__name__}")


def _split_boxes(boxes, n, single):
    """Per-image box entries (None = use the detector) for n images."""
    if boxes is None:
        return [None] * n
    if single:
        return [boxes]
    if isinstance(boxes, np.ndarray) and boxes.ndim == 2 and boxes.shape == (n, 4):
        return list(boxes)
    if not isinstance(boxes, (list, tuple, np.ndarray)) or len(boxes) != n:
        raise ValueError(f"boxes: expected one entry per image ({n}), got "
                         f"{len(boxes) if hasattr(boxes, '__len__') else type(boxes).__name__}")
    return list(boxes)


def _as_boxes(entry):
    b = np.asarray(entry, np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4 or not np.isfinite(b).all():
        raise ValueError(f"a box must be 4 finite numbers (x0, y0, x1, y1), got {entry!r}")
    return b


# ---------------------------------------------------------------------------- predictor

class Predictor:
    """Landmarks for images of any size: detector (or given boxes) -> crop -> model -> image
    coordinates. Build it with `fadenn_tf.load(path)` (or `load` here).

    model: a fadenn_tf.inference.CropModel (LoadedModel, LiteRTModel, ...): it crops, runs
    and maps back (fit_crops). detector: a BoxProvider (callable RGB image -> (K, 4) boxes,
    best first), a registered detector name (fadenn_tf.detect.get_detector, built on first
    use), or None (then every call must give boxes). device: a TensorFlow device string
    ("/CPU:0", "/GPU:0") a Keras model runs on (CropModel.on_device), None for the model's
    own; one that does not exist here raises inference.devices.DeviceError naming those
    that do.
    failure_detector: a fadenn_tf.fitcheck.detector.FailureDetector scoring every
    face (FaceResult.fit_score), or None. min_fit_score: faces whose fit_score is below it
    are rejected (ImageResult.rejected); "auto" = fitcheck.detector.DEFAULT_MIN_FIT_SCORE,
    None or 0 = reject nothing. Without a failure detector nothing is rejected.
    """

    def __init__(self, model, detector="default", device=None, detector_kwargs=None,
                 failure_detector=None, min_fit_score="auto"):
        if device is not None:  # a device that does not exist is an error, not a fallback
            model = model.on_device(device)
        self.model = model
        self.size = int(model.size)
        self.device = getattr(model, "device", None)
        self.failure_detector = failure_detector
        self.min_fit_score = _check_min_fit_score(min_fit_score)
        self._detector = detector
        self._detector_kwargs = dict(detector_kwargs or {})

    @property
    def detector(self):
        """The BoxProvider (a registered name is built here, on first use)."""
        if isinstance(self._detector, str):
            try:
                self._detector = get_detector(self._detector, **self._detector_kwargs)
            except TypeError as exc:
                raise ValueError(f"detector {self._detector!r} does not take the options "
                                 f"{sorted(self._detector_kwargs)}: {exc}") from None
        return self._detector

    @property
    def has_classifier(self):
        """True when the model predicts noise classes."""
        return bool(getattr(self.model, "has_classifier", False))

    def __repr__(self):
        det = self._detector if isinstance(self._detector, str) else type(self._detector).__name__
        return (f"Predictor(model={self.model.path!r}, kind={self.model.kind}, size={self.size}, "
                f"detector={det})")

    def warm_up(self):
        """Warm the model up (CropModel.warm_up: a Keras model is traced for any batch
        size, so later timings exclude tracing); returns the seconds it took."""
        return float(self.model.warm_up())

    # -------------------------------------------------------------------------- pieces
    def boxes_for(self, image, all_faces=False):
        """Detector boxes for an RGB uint8 image: (K, 4), in the detector's order (largest
        first; UltraFace: its sure faces first); K <= 1 unless all_faces. Raises ValueError
        if this predictor has no detector."""
        b = self._detect(image)[0]
        return b if all_faces else b[:1]

    def _detect(self, image):
        """(boxes (K, 4), scores (K,) or None), every box the detector found, in its order:
        the scores are its `last_scores` after the call (UltraFace) when they match the
        boxes, else None."""
        if self._detector is None:
            raise ValueError("no face detector configured (Predictor(detector=None)): pass "
                             "boxes=")
        det = self.detector
        b = np.asarray(det(image), np.float64).reshape(-1, 4)
        scores = getattr(det, "last_scores", None)
        scores = (np.asarray(scores, np.float64).reshape(-1)
                  if scores is not None and np.size(scores) == len(b) else None)
        return b, scores

    def prepare(self, image, boxes=None, color="rgb", all_faces=False):
        """Check/convert one image, find its faces and crop them with the model's crop
        (CropModel.crop_faces; no model call).

        boxes: None (detector), (4,) or (K, 4) given boxes, or [] for 'no face'.
        Raises ValueError on a bad image or a given box with no area or outside the image.
        """
        img = to_rgb_uint8(image, color)
        t0 = time.perf_counter()
        scores = spare = None
        if boxes is None:
            (b, scores), source = self._detect(img), "detector"
            if not all_faces:  # the first box; the others are fallbacks (run)
                spare = (b[1:], None if scores is None else scores[1:])
                b, scores = b[:1], None if scores is None else scores[:1]
        else:
            b, source = _as_boxes(boxes), "given"
        t1 = time.perf_counter()
        try:
            faces = self.model.crop_faces(img, b)
        except ValueError as exc:
            raise ValueError(f"{source} {exc}") from None
        return _Prepared(img, b, source, faces, t1 - t0, time.perf_counter() - t1, scores,
                         spare)

    def run_crops(self, crops):
        """Model outputs for (N, S, S, 3) float32 crops of 0..255 pixels (one call, no
        batching): (landmarks (N, 68, 2) crop pixels, noise_probs (N, 5) or None). One crop
        of a Keras model runs through a function compiled for [1, S, S, 3] (LoadedModel)."""
        out = self.model(crops)
        probs = out["noise_probs"]
        return (np.asarray(out["landmarks"], np.float64),
                None if probs is None else np.asarray(probs, np.float64))

    def fit_box(self, image, box):
        """The model's fit_box: (landmarks (68, 2) image pixels, noise_probs (5,) or None)
        for face `box` of an RGB uint8 image; ValueError when the box lies outside the
        image."""
        return self.model.fit_box(image, box)

    def run(self, prepared, batch_size=32, min_fit_score=None, refine="auto"):
        """Batch the crops of prepared images through the model -> list of ImageResult
        (min_fit_score, refine: as in predict). In one-face mode an image whose fit was
        rejected gets the next detector box that fits (inference.fallback)."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        floor = (self.min_fit_score if min_fit_score is None
                 else _check_min_fit_score(min_fit_score))
        refine = check_refine(refine)
        fits = self.model.fit_crops([p.faces for p in prepared], int(batch_size))
        again = [i for i, p in enumerate(prepared)
                 if refine is True or (refine == "auto" and p.source == "detector")]
        if again:
            for i, fit in zip(again, refit(self.model, [prepared[i].image for i in again],
                                           [fits[i] for i in again], int(batch_size))):
                fits[i] = fit
        results = [ImageResult(image_shape=p.image.shape) for p in prepared]
        for r, p, fit in zip(results, prepared, fits):
            for k in range(len(p.boxes)):
                face = self.face(p.image, fit.landmarks[k],
                                 None if fit.noise_probs is None else fit.noise_probs[k],
                                 p.boxes[k], p.source,
                                 None if p.scores is None else p.scores[k], floor)
                (r.faces if face.status == "ok" else r.rejected).append(face)
            r.timing = {"detect": p.t_detect, "crop": p.t_crop, "model": fit.seconds,
                        "total": p.t_detect + p.t_crop + fit.seconds}
        fall_back(self, prepared, results, floor, bool(refine))
        return results

    def face(self, image, landmarks, probs, box, source, detector_score, floor):
        """A FaceResult for `landmarks` (68, 2) image pixels fitted in `box` of the RGB
        `image`: scored by the failure detector (if any), status "rejected" when the score
        is below `floor`. probs: (5,) noise probabilities or None."""
        score = None
        if self.failure_detector is not None and np.isfinite(landmarks).all():
            score = float(self.failure_detector.score(image, landmarks))
        reject = score is not None and score < floor
        return FaceResult(
            landmarks=landmarks, box=np.array(box, np.float64), box_source=source,
            noise_class=None if probs is None else int(np.argmax(probs)), noise_probs=probs,
            fit_score=score, status="rejected" if reject else "ok",
            detector_score=None if detector_score is None else float(detector_score))

    # ------------------------------------------------------------------------- the API
    def predict(self, images, boxes=None, color="rgb", batch_size=32, all_faces=False,
                min_fit_score=None, refine="auto"):
        """Landmarks for one image or many images of any sizes.

        images: one (H, W, 3) uint8 image (also (H, W) gray or (H, W, 4)), a (B, H, W, 3)
            array, or a list of images of mixed sizes.
        boxes: None -> the face detector (its first face: the largest, with UltraFace the
            largest it is sure of, or when that fit is rejected the next box that fits;
            or every face with all_faces);
            otherwise per image a box (x0, y0, x1, y1), a (K, 4) array of boxes or [] (no
            face): for one image give its entry directly, for a batch a list with one entry
            per image (None in the list = use the detector for that image).
        color: "rgb" (default) or "bgr" (e.g. straight from cv2.imread), the channel order
            of `images`.
        batch_size: crops per model call (all faces of all images are batched together).
        min_fit_score: this call's rejection floor for fit_score (None: the Predictor's,
            0: reject nothing); rejected fits go to ImageResult.rejected, not .faces.
        refine: a second pass, each face re-cropped on its first fit's landmark box
            (inference.refine), for twice the model's time: "auto" (default) for the
            faces the detector found, True for every face (given boxes too), False for
            none. It brings a fit from a detector's box close to the fit from the
            ground-truth box. FaceResult.box stays the box given or detected.
        Returns a list with one ImageResult per image (also for a single image); an image
        without a face has `landmarks is None`.
        Raises ValueError for malformed images, colours, boxes or min_fit_score.
        """
        imgs, single = _split_images(images)
        entries = _split_boxes(boxes, len(imgs), single)
        prepared = []
        for i, (img, entry) in enumerate(zip(imgs, entries)):
            try:
                prepared.append(self.prepare(img, entry, color, all_faces))
            except ValueError as exc:
                raise ValueError(f"image {i}: {exc}") from None
        return self.run(prepared, batch_size, min_fit_score, refine)

    def predict_file(self, path, boxes=None, all_faces=False, refine="auto"):
        """Read an image file (fadenn_tf.data.images.read_image; DataError naming the file if
        it is unreadable) and predict it -> one ImageResult."""
        return self.predict(read_image(path), boxes=boxes, all_faces=all_faces,
                            refine=refine)[0]


BACKENDS = ("auto", "keras", "litert", "litert-int8")


def resolve_backend(path, backend="auto", device=None):
    """The backend `load` uses: "auto" is "litert-int8" for a shipped name whose LiteRT copy
    is installed (and no TensorFlow device asked for), "keras" otherwise. Raises ValueError
    for a name outside BACKENDS."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    shipped = pretrained.is_name(path) and pretrained.litert_path(path) is not None
    return "litert-int8" if shipped and device is None else "keras"


def load(path, detector="default", device=None, backend="auto", num_threads=None,
         failure_detector="auto", flip_test=False, min_fit_score="auto", **detector_kwargs):
    """Load a model for prediction -> Predictor.

    path: a shipped name ("pretrained", "pretrained-fll"), a training workdir, a .keras
    file or an exported SavedModel (fadenn_tf.inference.load_any); with a LiteRT backend
    also a .tflite file or a routed folder.
    detector: "default" (fadenn_tf.detect.DEFAULT_DETECTOR, UltraFace), "ultraface-slim",
    "haar" (OpenCV's cascade), "dlib" (pip install 'fadenn_tf[dlib]'), a chain like
    "haar+profile", another registered name, a BoxProvider callable, or None (always pass
    boxes). device: e.g. "/CPU:0" or "/GPU:0", None for TensorFlow's
    default (keras backend only). backend: "auto" (default: "litert-int8" on the LiteRT
    files shipped with a shipped name, which imports no TensorFlow; "keras" for anything
    else), "keras" (TensorFlow: research and training), "litert" (a float32 TFLite model
    run by LiteRT: a .tflite path, or the model at `path` converted at batch 1 when
    loading and cached on disk) or "litert-int8" (int8 weights and float activations,
    dynamic_int8: ~2-3x faster on x86 CPUs with VNNI, the same NME as Keras on held-out
    faces; a shipped name uses its shipped files, other models are converted and cached).
    num_threads: LiteRT threads, None = every usable core. detector_kwargs go to the named
    detector (e.g. min_neighbors=3). failure_detector: "auto" (default: the one shipped
    beside the model file, as with pretrained / pretrained-fll: every face gets a
    fit_score), None, a FailureDetector or a .npz path. min_fit_score: faces scoring below
    it are rejected (Predictor; "auto" = fitcheck.detector.DEFAULT_MIN_FIT_SCORE, None =
    reject nothing). flip_test: average each fit with the fit of the mirrored crop
    (inference.flip_test; about 2x the model's cost). Raises fadenn_tf.errors.DataError if
    no model is found, ValueError for an unknown backend.
    """
    backend = resolve_backend(path, backend, device)
    fd_source = str(path) if pretrained.is_name(path) else None
    if backend in ("litert", "litert-int8"):
        shipped = (pretrained.litert_path(path)
                   if backend == "litert-int8" and pretrained.is_name(path) else None)
        model = load_litert(shipped or path, num_threads,
                            "dynamic_int8" if backend == "litert-int8" else "float32")
        if shipped is not None:
            model.label = str(path)
        if flip_test:
            model = FlipAveraged(model)
        return Predictor(model, detector, None, detector_kwargs,
                         _failure_detector(failure_detector, fd_source or model),
                         min_fit_score)
    from fadenn_tf.inference.model import load_any  # lazy: TensorFlow (the keras backend)
    model = load_any(path, flip_test=flip_test, device=device)
    return Predictor(model, detector, None, detector_kwargs,
                     _failure_detector(failure_detector, fd_source or model), min_fit_score)


def _failure_detector(spec, model):
    """load's failure_detector argument -> FailureDetector or None ("auto": the one shipped
    beside the model file, or with the shipped name `model`)."""
    where = model if isinstance(model, str) else getattr(model, "path", None)
    return failure_detector_from_spec(spec, where)


def _check_min_fit_score(value):
    """min_fit_score -> float in [0, 1] ("auto": the default floor; None: 0, reject
    nothing). Raises ValueError otherwise."""
    if isinstance(value, str) and value == "auto":
        return float(DEFAULT_MIN_FIT_SCORE)
    if value is None:
        return 0.0
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"min_fit_score must be a number in [0, 1] or 'auto', got "
                         f"{value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"min_fit_score must be in [0, 1], got {value}")
    return v
